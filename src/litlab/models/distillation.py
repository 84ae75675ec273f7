from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from litlab.checkpoints.load import CheckpointFile
from litlab.models.base import plain
from litlab.models.classifier import ImageClassifier
from litlab.models.nets.build import build_net
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, alpha: float, tau: float
) -> tuple[Tensor, Tensor, Tensor]:
    """The distillation loss of Hinton et al., and its two parts.

        L = (1 - alpha) * CE(y, softmax(z_s)) + alpha * tau^2 * CE(softmax(z_t / tau), softmax(z_s / tau))

    tau^2 keeps the soft part's gradients on the hard part's scale as tau grows. Returns (L, CE(y, softmax(z_s)),
    tau^2 * CE(softmax(z_t / tau), softmax(z_s / tau))), each averaged over the batch.
    """
    hard = F.cross_entropy(student_logits, targets)
    soft_targets = F.softmax(teacher_logits.float() / tau, dim=1)
    soft = tau**2 * F.cross_entropy(student_logits.float() / tau, soft_targets)
    return (1 - alpha) * hard + alpha * soft, hard, soft


def load_teacher(ckpt_path: str) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a litlab classifier checkpoint, rebuilt from its saved hyperparameters, and its spec."""
    checkpoint = CheckpointFile.open(ckpt_path, "model.teacher_ckpt")
    net, spec = checkpoint.network()
    pixels = checkpoint.pixels
    if pixels is not None and hasattr(net, "set_input_pixels"):
        # Until the student's datamodule (the same data) says otherwise at setup, the teacher's own.
        net.set_input_pixels(pixels.mean, pixels.std)
    return net, spec


class DistillationModule(ImageClassifier):
    """Trains a student network on the labels and on a frozen teacher's softened predictions (`kd_loss`).

    The teacher comes from a classifier checkpoint and is a frozen submodule: eval mode always, no gradients,
    its logits computed under `torch.no_grad`. Being a submodule, it follows the student to the device and into
    its precision (a `*-true` precision converts both; under `*-mixed` both run in the same autocast).
    Its weights are saved in the student's checkpoints, so these rebuild without the teacher's file.

    Args:
        net: the student network (`_target_` mapping or module).
        teacher_ckpt: the teacher's checkpoint (from train.py). Not needed when alpha = 0 (a plain baseline).
        alpha: weight of the distillation part, in [0, 1]; 0 is plain cross-entropy training.
        tau: the softmax temperature of the distillation part, > 0.
        teacher_net: the teacher's network spec; filled in from teacher_ckpt, so leave it unset.
        Other arguments: as ImageClassifier (label smoothing does not apply to the training loss).
    """

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        teacher_ckpt: str | None = None,
        alpha: float = 0.5,
        tau: float = 4.0,
        teacher_net: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"model.alpha must be in [0, 1], got {alpha}.")
        if tau <= 0:
            raise ValueError(f"model.tau must be positive, got {tau}.")
        super().__init__(net, **kwargs)
        teacher_net = plain(teacher_net)
        teacher: nn.Module | None = None
        if teacher_net is not None:
            # Rebuilding from a student checkpoint: the teacher's weights come with the state dict.
            teacher = build_net(teacher_net, "teacher_net")
        elif teacher_ckpt:
            teacher, teacher_net = load_teacher(teacher_ckpt)
        elif alpha > 0:
            raise ValueError(
                f"Distillation with model.alpha={alpha} needs a teacher: set model.teacher_ckpt to a teacher "
                "checkpoint (experiment=kd_teacher_linear writes one), or model.alpha=0 for the baseline."
            )
        self.hparams.update(teacher_ckpt=teacher_ckpt, alpha=alpha, tau=tau, teacher_net=teacher_net)
        self.teacher = teacher
        if teacher is not None:
            teacher_classes = getattr(teacher, "num_classes", None)
            if teacher_classes != self.num_classes:
                raise ValueError(
                    f"The teacher predicts {teacher_classes} classes but the student {self.num_classes}: "
                    "distil from a teacher trained on the same data."
                )
            teacher.requires_grad_(False)
            teacher.eval()
            self.teacher_test_acc = MulticlassAccuracy(self.num_classes, average="micro")

    def train(self, mode: bool = True) -> "DistillationModule":
        super().train(mode)
        if self.teacher is not None:
            # Lightning switches the whole module to train mode every epoch: the teacher's batch norm must not.
            self.teacher.train(False)
        return self

    def teacher_logits(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.teacher(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        if self.teacher is None or self.hparams.alpha == 0:
            loss = hard = F.cross_entropy(logits, y)
            soft = None
        else:
            loss, hard, soft = kd_loss(logits, self.teacher_logits(x), y, self.hparams.alpha, self.hparams.tau)
        self.track_train_step(loss, logits.argmax(dim=1), y)
        self.log("train/loss_ce", hard, on_step=False, on_epoch=True)
        if soft is not None:
            self.log("train/loss_kd", soft, on_step=False, on_epoch=True)
        return loss

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        if self.teacher is not None:
            x, y = batch
            self.teacher_test_acc(self.teacher_logits(x).argmax(dim=1), y)
            self.log("test/teacher_acc", self.teacher_test_acc, on_step=False, on_epoch=True)
