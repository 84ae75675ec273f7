from litlab.models.nets.cnn import CNN
from litlab.models.nets.mlp import MLP
from litlab.models.nets.resnet import ResNet

__all__ = ["CNN", "MLP", "ResNet"]
