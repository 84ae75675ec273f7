from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from torch import Tensor, nn
from torchmetrics import MeanMetric

from litlab.models.base import LitlabModule
from litlab.models.embeddings import WordVectors
from litlab.models.optim import check_optimization, configure
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

# torch.optim's classes that take sparse gradients; its others refuse them at the first step.
SPARSE_OPTIMIZERS = (torch.optim.SGD, torch.optim.SparseAdam, torch.optim.Adagrad)
SGD: dict[str, Any] = {"_target_": "torch.optim.SGD", "lr": 0.025}


def per_pair(loss: Tensor, pairs: int) -> Tensor:
    """A batch's summed loss as its mean repeated once per pair: a MeanMetric then weighs batches by their pairs.

    Not MeanMetric's `weight`: with nan_strategy="disable" torchmetrics replaces it by ones (torchmetrics#3434),
    which made a short last batch count as much as a full one.
    """
    return (loss / pairs).expand(pairs)


class SGNSLoss(torch.autograd.Function):
    """-sum log sigma(u_context . v) - sum log sigma(-u_noise . v) over pairs, noise words shared within groups.

    `centre` holds the (groups * group, dim) centre vectors; `outputs` the same number of context vectors
    followed by (groups * negatives) noise vectors, the noise words of each group of consecutive pairs; `keep`
    (groups, group, negatives) masks the noise terms that count and `valid` (groups * group,) the pairs that
    do. Sharing makes the noise scores one batched matrix product (Ji et al. 2016) instead of many thin dot
    products that leave a CPU waiting on memory; the hand-written backward writes each gradient once.
    """

    @staticmethod
    def forward(ctx, centre: Tensor, outputs: Tensor, keep: Tensor, valid: Tensor) -> Tensor:
        groups, group, negatives = keep.shape
        n, dim = centre.shape
        context, noise = outputs[:n], outputs[n:].view(groups, negatives, dim)
        positive = torch.linalg.vecdot(centre, context)
        noise_scores = torch.bmm(centre.view(groups, group, dim), noise.transpose(1, 2))
        keep, valid = keep.to(centre.dtype), valid.to(centre.dtype)
        ctx.save_for_backward(centre, outputs, positive, noise_scores, keep, valid)
        # dot products: the masked sums in one pass over memory
        return -(
            torch.dot(F.logsigmoid(positive), valid) + torch.dot(F.logsigmoid(-noise_scores).view(-1), keep.view(-1))
        )

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        centre, outputs, positive, noise_scores, keep, valid = ctx.saved_tensors
        (n, dim), (groups, group, negatives) = centre.shape, keep.shape
        context, noise = outputs[:n], outputs[n:].view(groups, negatives, dim)
        grad_positive = (torch.sigmoid(positive) - 1).mul_(valid).mul_(grad).unsqueeze(1)
        grad_noise_scores = torch.sigmoid(noise_scores).mul_(keep).mul_(grad)
        grad_centre = torch.bmm(grad_noise_scores, noise).view(n, dim).addcmul_(grad_positive, context)
        grad_outputs = torch.empty_like(outputs)
        torch.mul(grad_positive, centre, out=grad_outputs[:n])
        torch.bmm(
            grad_noise_scores.transpose(1, 2),
            centre.view(groups, group, dim),
            out=grad_outputs[n:].view(groups, negatives, dim),
        )
        return grad_centre, grad_outputs, None, None


class Word2Vec(LitlabModule):
    """Skip-gram with negative sampling (Mikolov et al. 2013), as word2vec.c trains it.

    Each (centre, context) pair raises the score of the context's output vector against the centre's input
    vector and lowers the scores of `negatives` words drawn from the unigram distribution raised to
    `ns_exponent`. Input vectors start uniform in +-0.5/dim, output vectors at zero. Both tables have sparse
    gradients, so a step touches only the rows of its batch; the loss is summed over pairs, so that a batch
    makes the same updates as word2vec.c's one-pair-at-a-time SGD. The learning rate decays linearly with
    the words consumed, from `lr` to `lr * min_lr_ratio` at the end of the last epoch.

    The vocabulary comes from the datamodule (`setup`) or from a checkpoint, and is saved in checkpoints.

    Args:
        embedding_dim: size of the word vectors.
        negatives: negative samples per pair.
        ns_exponent: exponent of the unigram counts in the noise distribution.
        negatives_group: this many pairs share their noise words (1: every pair draws its own, as in
            word2vec.c; 32 to 64 is several times faster on a CPU, each pair still seeing `negatives` words drawn
            from the noise distribution).
        optimizer: a `_target_` mapping of an optimizer class that takes sparse gradients (torch.optim.SGD,
            SparseAdam or Adagrad, or a third-party one); default SGD at 0.025, word2vec.c's rate.
        min_lr_ratio: the rate decays linearly with the words seen, to lr * min_lr_ratio at the end.
        analogy_path: a questions-words file; its accuracy is logged at test time (skipped when absent).
        similarity_path: a WordSim-353 style file; its Spearman correlation is logged at validation and test.
        analogy_restrict: answers to analogies are searched among this many most frequent words.
        projector_words: the most frequent words sent to TensorBoard's Projector at the end of training.
        vectors_file: name of the word2vec text file written in the run folder at the end of training
            (null: none).
    """

    def __init__(
        self,
        embedding_dim: int = 100,
        negatives: int = 5,
        ns_exponent: float = 0.75,
        negatives_group: int = 1,
        optimizer: Mapping[str, Any] | None = None,
        min_lr_ratio: float = 1e-4,
        analogy_path: str | None = None,
        similarity_path: str | None = None,
        analogy_restrict: int = 30_000,
        projector_words: int = 5000,
        vectors_file: str | None = "word_vectors.txt",
    ):
        super().__init__()
        optimizer, _ = check_optimization(optimizer, default=SGD)
        cls = get_class(optimizer["_target_"])
        if cls.__module__.startswith("torch.optim.") and not issubclass(cls, SPARSE_OPTIMIZERS):
            raise ValueError(
                f"{optimizer['_target_']} takes no sparse gradients, which word2vec's embedding tables have "
                "(model.optimizer._target_): use torch.optim.SGD, SparseAdam or Adagrad."
            )
        if min(embedding_dim, negatives, negatives_group) < 1:
            raise ValueError(
                "model.embedding_dim, model.negatives and model.negatives_group must be positive, got "
                f"{embedding_dim}, {negatives}, {negatives_group}."
            )
        self.save_settings(
            embedding_dim=embedding_dim,
            negatives=negatives,
            ns_exponent=ns_exponent,
            negatives_group=negatives_group,
            optimizer=optimizer,
            min_lr_ratio=min_lr_ratio,
            analogy_path=analogy_path,
            similarity_path=similarity_path,
            analogy_restrict=analogy_restrict,
            projector_words=projector_words,
            vectors_file=vectors_file,
        )
        self.words: list[str] | None = None
        # NaN must show in the losses (the default drops it with a warning): divergence has to be seen.
        self.train_loss, self.val_loss, self.test_loss = (MeanMetric(nan_strategy="disable") for _ in range(3))

    def build(self, words: list[str], counts: Tensor) -> None:
        """Creates the embedding tables for a vocabulary (most frequent first) and its noise distribution."""
        dim = self.hparams.embedding_dim
        self.words = list(words)
        self.register_buffer("counts", counts.detach().clone().long())
        noise = counts.double() ** self.hparams.ns_exponent
        self.register_buffer("noise_cdf", (noise.cumsum(0) / noise.sum()).float(), persistent=False)
        self.input_embeddings = nn.Embedding(len(words), dim, sparse=True)
        self.output_embeddings = nn.Embedding(len(words), dim, sparse=True)
        nn.init.uniform_(self.input_embeddings.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.output_embeddings.weight)

    def setup(self, stage: str) -> None:
        vocab = getattr(getattr(self.trainer, "datamodule", None), "vocab", None)
        if vocab is None:
            if self.words is None:
                raise ValueError("Word2Vec needs a vocabulary: train it with a TextCorpusDataModule (data=corpus).")
            return
        if self.words is None:
            self.build(vocab.words, vocab.counts)
        elif self.words != vocab.words:
            raise ValueError(
                f"The model's vocabulary ({len(self.words)} words) is not the corpus' ({len(vocab)} words): "
                "use the corpus and data.min_count the model was trained with."
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["word2vec_words"] = self.words

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before loading the state dict: the tables must exist, with the saved size.
        if self.words is None:
            self.build(checkpoint["word2vec_words"], checkpoint["state_dict"]["counts"])

    def sample_negatives(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> Tensor:
        """Word ids drawn from the unigram distribution raised to `ns_exponent` (inverse CDF)."""
        uniform = torch.rand(shape, generator=generator, device=self.noise_cdf.device)
        return torch.searchsorted(self.noise_cdf, uniform, right=True).clamp_(max=len(self.noise_cdf) - 1)

    def forward(self, centres: Tensor, contexts: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The negative-sampling loss summed over the pairs."""
        n, group = len(centres), self.hparams.negatives_group
        groups = -(-n // group)
        negatives = self.sample_negatives((groups, self.hparams.negatives), generator)
        # The batch is padded to whole groups with word 0; `valid` and `keep` zero the padding's terms.
        pad = groups * group - n
        valid = torch.arange(groups * group, device=centres.device) < n
        padded_contexts = F.pad(contexts, (0, pad))
        # A noise word that is the true context is no noise: word2vec.c skips it.
        keep = (padded_contexts.view(groups, group, 1) != negatives.unsqueeze(1)) & valid.view(groups, group, 1)
        # One lookup for contexts and noise words: one sparse gradient for the output table, not two to merge.
        outputs = self.output_embeddings(torch.cat([padded_contexts, negatives.view(-1)]))
        # In float32 even under trainer=gpu's bf16-mixed: scores and the many small updates need the precision.
        with torch.autocast(centres.device.type, enabled=False):
            return SGNSLoss.apply(self.input_embeddings(F.pad(centres, (0, pad))), outputs, keep, valid)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        centres, contexts, progress = batch
        optimizer = self.trainer.optimizers[0]
        done = (self.current_epoch + float(progress)) / max(self.trainer.max_epochs or 1, 1)
        lr = optimizer.defaults["lr"] * max(self.hparams.min_lr_ratio, 1.0 - done)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = self(centres, contexts)
        self.train_loss.update(per_pair(loss.detach(), len(centres)))
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        if not torch.isfinite(self.train_loss.compute()):
            # A batch sums the updates of every pair, so a word repeated in it many times moves by as many steps.
            raise FloatingPointError(
                "word2vec diverged (train/loss is not finite): lower data.batch_size or model.optimizer.lr."
            )

    def on_validation_epoch_start(self) -> None:
        # The same noise words every validation, so that val/loss moves with the model alone.
        self.eval_generator = torch.Generator(device=self.device).manual_seed(0)

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        centres, contexts, _ = batch
        self.val_loss.update(per_pair(self(centres, contexts, self.eval_generator), len(centres)))

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss.compute(), prog_bar=True)
        self.val_loss.reset()
        if self.hparams.similarity_path and Path(self.hparams.similarity_path).is_file():
            self.log(
                "val/similarity_spearman",
                self.word_vectors().similarity_spearman(self.hparams.similarity_path).spearman,
            )

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        centres, contexts, _ = batch
        self.test_loss.update(per_pair(self(centres, contexts, self.eval_generator), len(centres)))

    def on_test_epoch_end(self) -> None:
        self.log("test/loss", self.test_loss.compute())
        self.test_loss.reset()
        vectors = self.word_vectors()
        analogy, similarity = self.hparams.analogy_path, self.hparams.similarity_path
        if analogy and Path(analogy).is_file():
            result = vectors.analogy_accuracy(analogy, self.hparams.analogy_restrict)
            log.info(f"Analogies: {result.correct}/{result.total} right, {result.skipped} out of vocabulary.")
            self.log("test/analogy_acc", result.accuracy)
        elif analogy:
            log.info(f"No analogy file at {analogy}: analogy accuracy skipped (set model.analogy_path).")
        if similarity and Path(similarity).is_file():
            result = vectors.similarity_spearman(similarity)
            log.info(f"Word similarity: {result.pairs} pairs scored, {result.skipped} out of vocabulary.")
            self.log("test/similarity_spearman", result.spearman)
        elif similarity:
            log.info(
                f"No word-similarity file at {similarity}: Spearman correlation skipped (set model.similarity_path)."
            )

    def on_fit_end(self) -> None:
        if not self.trainer.is_global_zero:
            return
        vectors = self.word_vectors()
        if self.hparams.vectors_file:
            path = vectors.save_word2vec(Path(self.trainer.default_root_dir) / self.hparams.vectors_file)
            log.info(f"Word vectors saved in the word2vec text format: {path}")
        n = self.hparams.projector_words
        for logger in self.loggers:
            experiment = getattr(logger, "experiment", None)
            if n and hasattr(experiment, "add_embedding"):
                experiment.add_embedding(
                    vectors.vectors[:n], metadata=vectors.words[:n], tag="word2vec", global_step=self.global_step
                )

    def word_vectors(self) -> WordVectors:
        """The input vectors (word2vec's embeddings) with their words."""
        if self.words is None:
            raise ValueError("The model has no vocabulary yet: train it or load it from a checkpoint.")
        return WordVectors(self.words, self.input_embeddings.weight)

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words nearest to `word` by cosine similarity of their vectors."""
        return self.word_vectors().most_similar(word, k)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The rate is set every step by training_step (word2vec's linear decay), not by a scheduler.
        return configure(self.parameters(), self.hparams.optimizer)["optimizer"]
