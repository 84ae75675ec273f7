from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from litlab.figures import confusion_matrix_figure, log_figure
from litlab.models.base import LitlabModule, plain
from litlab.models.nets.build import build_net
from litlab.models.optim import check_optimization, configure

# Training steps whose loss and predictions are collected before the training metrics see them at once.
TRAIN_METRIC_CHUNK = 64


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Accuracy (over all samples) and macro-averaged precision, recall and F1."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        },
        prefix=prefix,
    )


class ImageClassifier(LitlabModule):
    """Trains any image classification network with cross-entropy.

    Args:
        net: the network, as an nn.Module or as a `_target_` mapping (the form configs use, which lets a
            checkpoint alone rebuild the model). It must expose `num_classes`.
        optimizer: a `_target_` mapping of an optimizer class and its arguments (default Adam at 1e-3); see
            `litlab.models.optim` for litlab's own keys.
        scheduler: a `_target_` mapping of a learning-rate scheduler class, Lightning's interval, monitor and
            frequency, and an optional linear warm-up; None (or no `_target_`) keeps the rate constant.
        label_smoothing: label smoothing of the cross-entropy.
        compile: compile the network with `torch.compile` (worth it on a GPU, slow to start on a CPU).
        class_names: labels for the confusion matrix's axes.
    """

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        label_smoothing: float = 0.0,
        compile: bool = False,
        class_names: list[str] | None = None,
    ):
        super().__init__()
        optimizer, scheduler = check_optimization(optimizer, scheduler)
        self.save_settings(
            net=net,
            optimizer=optimizer,
            scheduler=scheduler,
            label_smoothing=label_smoothing,
            compile=compile,
            class_names=class_names,
        )
        self.net = build_net(plain(net))
        num_classes = getattr(self.net, "num_classes", None)
        if not isinstance(num_classes, int):
            raise ValueError(f"The network {type(self.net).__name__} must expose an integer `num_classes` attribute.")
        self.num_classes = num_classes
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        # A diverged run must show NaN in train/loss, not a mean of the finite steps with a warning.
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self._train_outputs: list[tuple[Tensor, Tensor, Tensor]] = []
        self.val_metrics = classification_metrics(num_classes, "val/")
        self.test_metrics = classification_metrics(num_classes, "test/")
        self.val_confmat = MulticlassConfusionMatrix(num_classes)
        self.test_confmat = MulticlassConfusionMatrix(num_classes)
        self.val_acc_best = MaxMetric()
        self._resumed_acc_best: float | None = None

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        data_shape = getattr(datamodule, "dims", None)
        net_shape = getattr(self.net, "input_shape", None)
        if data_shape is not None and net_shape is not None and tuple(data_shape) != tuple(net_shape):
            raise ValueError(
                f"The network expects inputs of shape {tuple(net_shape)} but the data gives {tuple(data_shape)}: "
                "set model.net.in_channels and model.net.image_size to match, or pick an experiment= for this data."
            )
        data_classes = getattr(datamodule, "num_classes", None)
        if isinstance(data_classes, int) and data_classes != self.num_classes:
            raise ValueError(
                f"The network predicts {self.num_classes} classes but the data has {data_classes}: "
                "set model.net.num_classes to match."
            )
        self.share_pixels()
        if self.hparams.compile and stage == "fit":
            self.net = torch.compile(self.net)

    def model_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        return loss, logits.argmax(dim=1), y

    def on_train_start(self) -> None:
        super().on_train_start()
        # A fresh best value: the sanity check's validation must not count; a resumed run carries its best on.
        self.val_acc_best.reset()
        if self._resumed_acc_best is not None:
            self.val_acc_best.update(torch.tensor(self._resumed_acc_best))
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        self.log("model/params_trainable", float(trainable), rank_zero_only=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # torchmetrics keep their states out of the state_dict, so the best value travels beside it.
        checkpoint["val_acc_best"] = self.val_acc_best.max_value.item()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._resumed_acc_best = checkpoint.get("val_acc_best")

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, preds, targets = self.model_step(batch)
        self.track_train_step(loss, preds, targets)
        return loss

    def track_train_step(self, loss: Tensor, preds: Tensor, targets: Tensor) -> None:
        """Counts a training step in train/loss (mean of the steps' losses) and train/acc.

        The tensors are kept and fed to the metrics TRAIN_METRIC_CHUNK steps at a time: one torchmetrics
        update costs about 25 us whatever its size, a small network's whole step is about 1 ms, and the
        metrics come out the same (accuracy counts add up; the loss mean weighs every step alike).
        """
        self._train_outputs.append((loss.detach(), preds, targets))
        if len(self._train_outputs) >= TRAIN_METRIC_CHUNK:
            self._update_train_metrics()

    def _update_train_metrics(self) -> None:
        if not self._train_outputs:
            return
        losses, preds, targets = zip(*self._train_outputs, strict=True)
        self._train_outputs.clear()
        self.train_loss.update(torch.stack(losses))
        self.train_acc.update(torch.cat(preds), torch.cat(targets))

    def on_train_epoch_start(self) -> None:
        self._train_outputs.clear()

    def on_train_epoch_end(self) -> None:
        # The training metrics are logged once per epoch: logging a metric object every step costs Lightning a
        # state copy, and metric forward() a per-batch value, together more than a small network's whole step.
        self._update_train_metrics()
        self.log("train/loss", self.train_loss.compute(), prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_acc.compute(), prog_bar=True, sync_dist=True)
        self.train_loss.reset()
        self.train_acc.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, targets = self.model_step(batch)
        self.val_loss.update(loss, weight=len(targets))  # a short last batch weighs what it holds
        self.val_metrics.update(preds, targets)
        self.val_confmat.update(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_metrics.compute()
        self.log_dict(metrics, sync_dist=True, prog_bar=False)
        self.val_metrics.reset()
        self.val_acc_best(metrics["val/acc"])
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)
        self._log_confusion_matrix(self.val_confmat, "val/confusion_matrix")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, targets = self.model_step(batch)
        self.test_loss.update(loss, weight=len(targets))  # a short last batch weighs what it holds
        self.test_metrics.update(preds, targets)
        self.test_confmat.update(preds, targets)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Class probabilities (N, classes) of `batch["images"]`, standardised as the training data were."""
        return self(batch["images"]).softmax(dim=1)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_metrics.reset()
        self._log_confusion_matrix(self.test_confmat, "test/confusion_matrix")

    def _log_confusion_matrix(self, confmat: MulticlassConfusionMatrix, tag: str) -> None:
        matrix = confmat.compute()
        confmat.reset()
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or not self.loggers:
            return
        title = f"{tag}, epoch {self.current_epoch}"
        log_figure(
            self.loggers, tag, confusion_matrix_figure(matrix, title, self.hparams.class_names), self.current_epoch
        )

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        return configure(params, self.hparams.optimizer, self.hparams.scheduler, self.trainer)
