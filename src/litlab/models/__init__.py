from litlab.models.cgan import ConditionalGAN
from litlab.models.classifier import ImageClassifier
from litlab.models.cyclegan import CycleGAN

__all__ = ["ConditionalGAN", "CycleGAN", "ImageClassifier"]
