from litlab.models.classifier import ImageClassifier
from litlab.models.distillation import DistillationModule
from litlab.models.transfer import TransferClassifier

__all__ = ["DistillationModule", "ImageClassifier", "TransferClassifier"]
