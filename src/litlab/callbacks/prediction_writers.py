"""Writers for `trainer.predict`: each batch goes to disk as it comes, so memory stays flat on large inputs.

Both write with `write_interval="batch"` (Lightning's "epoch" would keep every prediction in memory) and run
with `trainer.predict(..., return_predictions=False)`. Batches are dicts with "index" (the input's number),
"ok" (false for an input that could not be read) and "error" (the sentence saying why).
"""

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor
from torchvision.io import write_png

from litlab.data.inputs import image_suffixes
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)


class _BatchWriter(BasePredictionWriter):
    """Counts written and skipped inputs, and says once per bad input why it was skipped."""

    def __init__(self, names: Sequence[str]):
        super().__init__(write_interval="batch")
        self.names = names
        self.written = 0
        self.skipped: list[str] = []

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Tensor,
        batch_indices: Sequence[int] | None,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        ok = batch["ok"].bool().cpu()
        for good, error in zip(ok.tolist(), batch["error"], strict=True):
            if not good:
                log.warning(error)
                self.skipped.append(error)
        self.write(batch["index"].cpu()[ok].tolist(), prediction.detach()[ok.to(prediction.device)])

    def write(self, indices: list[int], outputs: Tensor) -> None:
        """Writes the outputs of the readable inputs `indices` (their numbers in `names`)."""
        raise NotImplementedError


class ClassPredictionWriter(_BatchWriter):
    """Writes predictions.csv: input, predicted class, its probability, and the top k classes with theirs.

    The outputs are class probabilities (N, classes). The first `show` rows are kept for the
    summary table.
    """

    def __init__(
        self, path: str | Path, names: Sequence[str], class_names: Sequence[str], top_k: int = 3, show: int = 20
    ):
        super().__init__(names)
        self.path, self.class_names = Path(path), list(class_names)
        self.top_k, self.show = max(1, min(top_k, len(class_names))), show
        self.rows: list[tuple[str, str, float, str]] = []
        self._file = None
        self._csv = None

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["input", "class", "probability", f"top_{self.top_k}"])

    def write(self, indices: list[int], outputs: Tensor) -> None:
        probs, classes = outputs.float().cpu().topk(self.top_k, dim=1)
        for index, p, c in zip(indices, probs.tolist(), classes.tolist(), strict=True):
            top = "; ".join(f"{self.class_names[k]} ({q:.4f})" for k, q in zip(c, p, strict=True))
            row = (self.names[index], self.class_names[c[0]], round(p[0], 6), top)
            self._csv.writerow(row)
            if len(self.rows) < self.show:
                self.rows.append(row)
            self.written += 1
        self._file.flush()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def to_uint8(images: Tensor) -> Tensor:
    """Generated images in [-1, 1] (Tanh) as uint8 pixels."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class ImageFileWriter(_BatchWriter):
    """Writes each generated image of a batch as a PNG file, `folder/<name>` with the suffix `.png`.

    The outputs are images (N, C, H, W) in [-1, 1].
    """

    def __init__(self, folder: str | Path, names: Sequence[str]):
        super().__init__(names)
        self.folder = Path(folder)
        self.suffixes = image_suffixes()
        self.paths: list[Path] = []

    def write(self, indices: list[int], outputs: Tensor) -> None:
        for index, image in zip(indices, to_uint8(outputs), strict=True):
            name = Path(self.names[index])
            # photo.jpg -> photo.png; a tensor file's images (batch.pt[3]) keep their whole name
            path = self.folder / (name.with_suffix(".png") if name.suffix.lower() in self.suffixes else f"{name}.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(image, str(path))
            self.paths.append(path)
            self.written += 1
