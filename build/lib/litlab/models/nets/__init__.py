from litlab.models.nets.cnn import CNN
from litlab.models.nets.mlp import MLP

__all__ = ["CNN", "MLP"]
