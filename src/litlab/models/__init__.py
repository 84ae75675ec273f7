from litlab.models.cgan import ConditionalGAN
from litlab.models.classifier import ImageClassifier
from litlab.models.cyclegan import CycleGAN
from litlab.models.distillation import DistillationModule
from litlab.models.transfer import TransferClassifier
from litlab.models.word2vec import Word2Vec

__all__ = ["ConditionalGAN", "CycleGAN", "DistillationModule", "ImageClassifier", "TransferClassifier", "Word2Vec"]
