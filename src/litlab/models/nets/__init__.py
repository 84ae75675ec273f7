from litlab.models.nets.cnn import CNN
from litlab.models.nets.gan import ConditionalDiscriminator, ConditionalGenerator, PatchDiscriminator, ResnetGenerator
from litlab.models.nets.mlp import MLP

__all__ = ["CNN", "MLP", "ConditionalDiscriminator", "ConditionalGenerator", "PatchDiscriminator", "ResnetGenerator"]
