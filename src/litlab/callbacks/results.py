import json
import time
from pathlib import Path

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only
from torchmetrics.classification import MulticlassConfusionMatrix


class RunResults(Callback):
    """Writes what a run measured to a JSON file, for `scripts/report.py` to tabulate a sweep from.

    The file holds the final `test/` metrics (and any other scalar metrics), the trainable parameters, the
    epochs trained and the wall-clock training time, both measured here, and the test confusion matrix when
    the module keeps one as `test_confmat` (as `ImageClassifier` does). It is written when testing ends,
    so it describes the checkpoint that was tested.

    Args:
        path: the JSON file to write (the configs put it in the run's output folder).
    """

    def __init__(self, path: str):
        self.path = Path(path)
        self.fit_seconds: float | None = None
        self.epochs: int | None = None
        self.confusion_matrix: list[list[int]] | None = None
        self._start = 0.0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.fit_seconds = time.perf_counter() - self._start
        self.epochs = trainer.current_epoch

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Callbacks run before the module's own hook, which resets the matrix after logging it.
        confmat = getattr(pl_module, "test_confmat", None)
        if isinstance(confmat, MulticlassConfusionMatrix) and confmat.update_called:
            self.confusion_matrix = confmat.compute().cpu().tolist()

    @rank_zero_only
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = {
            name: float(value)
            for name, value in sorted(trainer.callback_metrics.items())
            if getattr(value, "numel", lambda: 1)() == 1
        }
        results = {
            "metrics": metrics,
            "params_trainable": sum(p.numel() for p in pl_module.parameters() if p.requires_grad),
            "epochs": self.epochs,
            "fit_seconds": self.fit_seconds,
            "confusion_matrix": self.confusion_matrix,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(results, indent=2))
