"""The LightningModules, one per file: `classifier` (ImageClassifier), `transfer` (a pretrained ResNet's new head),
`distillation`, `cgan` (ConditionalGAN) and its judge `gan_eval`, `cyclegan`, `word2vec` and its `embeddings`.

`base` is what they share (LitlabModule: the checkpoint record, the pixel convention); `optim` builds their
optimizers and schedules; `nets/` holds the plain nn.Modules they are built from.
"""

from litlab.models.cgan import ConditionalGAN
from litlab.models.classifier import ImageClassifier
from litlab.models.cyclegan import CycleGAN
from litlab.models.distillation import DistillationModule
from litlab.models.transfer import TransferClassifier
from litlab.models.word2vec import Word2Vec

__all__ = ["ConditionalGAN", "CycleGAN", "DistillationModule", "ImageClassifier", "TransferClassifier", "Word2Vec"]
