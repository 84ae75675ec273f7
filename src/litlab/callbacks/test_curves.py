import torch
import torch.nn.functional as F
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import move_data_to_device
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy


class TestCurves(Callback):
    """Evaluates a classifier on the test split after every validation, for curves of test loss and accuracy.

    Logged as `test_epoch/loss` and `test_epoch/acc`, beside the per-epoch `train/` and `val/` curves, so
    TensorBoard shows how the test error evolves during training. They are for looking at only: checkpoints
    and early stopping still choose on `val/`, and the `test/` metrics still come from the best checkpoint.
    Costs one pass over the test split per epoch, which is why it is off by default.

    The module's forward must return logits; the batch goes through the datamodule's
    `on_after_batch_transfer` (normalisation) as in the real test loop.
    """

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        if trainer.sanity_checking or datamodule is None:
            return
        loss, acc = MeanMetric().to(pl_module.device), None
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            for batch in datamodule.test_dataloader():
                images, labels = datamodule.on_after_batch_transfer(move_data_to_device(batch, pl_module.device), 0)
                logits = pl_module(images)
                if acc is None:
                    acc = MulticlassAccuracy(logits.shape[1], average="micro").to(pl_module.device)
                loss.update(F.cross_entropy(logits, labels), weight=len(labels))
                acc.update(logits.argmax(dim=1), labels)
        pl_module.train(was_training)
        pl_module.log("test_epoch/loss", loss.compute(), on_epoch=True)
        pl_module.log("test_epoch/acc", acc.compute(), on_epoch=True)
