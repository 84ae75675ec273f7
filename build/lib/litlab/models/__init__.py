from litlab.models.classifier import ImageClassifier

__all__ = ["ImageClassifier"]
