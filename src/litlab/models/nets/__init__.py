"""Plain nn.Modules the LightningModules are built from, each with explicit constructor arguments."""

from litlab.models.nets.build import build_net
from litlab.models.nets.cnn import CNN
from litlab.models.nets.gan import ConditionalDiscriminator, ConditionalGenerator, PatchDiscriminator, ResnetGenerator
from litlab.models.nets.mlp import MLP
from litlab.models.nets.resnet import ResNet

__all__ = [
    "CNN",
    "MLP",
    "ConditionalDiscriminator",
    "ConditionalGenerator",
    "PatchDiscriminator",
    "ResNet",
    "ResnetGenerator",
    "build_net",
]
