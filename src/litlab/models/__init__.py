from litlab.models.classifier import ImageClassifier
from litlab.models.word2vec import Word2Vec

__all__ = ["ImageClassifier", "Word2Vec"]
