from litlab.models.cgan import ConditionalGAN
from litlab.models.classifier import ImageClassifier
from litlab.models.cyclegan import CycleGAN
from litlab.models.word2vec import Word2Vec

__all__ = ["ConditionalGAN", "CycleGAN", "ImageClassifier", "Word2Vec"]
