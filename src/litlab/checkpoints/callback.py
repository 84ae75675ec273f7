"""Lightning's ModelCheckpoint with a `last.ckpt` that follows every epoch."""

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


class LastEveryEpochCheckpoint(ModelCheckpoint):
    """Saves the top-k checkpoints as Lightning does, and `last.ckpt` at every epoch (with `save_last`).

    Lightning 2.6 rewrites `last.ckpt` only when a top-k checkpoint was saved at the same step, so after
    a plateau of the monitored metric it still holds an old epoch, and a resume after a crash or Ctrl-C
    quietly goes back to it. Here it is rewritten whenever the epoch saved no other checkpoint.
    """

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def _save_last_if_behind(self, trainer: Trainer) -> None:
        # Lightning's skip rule is true when this step was saved already (or in sanity checks, fast_dev_run...).
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        # With save_last="link", last.ckpt links to the newest top-k file, which is now stale: write a real
        # file instead; the next top-k save turns it back into a link.
        self._last_checkpoint_saved = ""
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
