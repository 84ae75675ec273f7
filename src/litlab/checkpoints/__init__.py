"""Everything about checkpoints, in one place.

- `load`: reading a checkpoint with its trust checks (`CheckpointFile.open`, `weights_only=True`, litlab's own
  classes only) and rebuilding the module, the datamodule or the bare network from it;
- `record`: what litlab writes into every checkpoint so that it alone rebuilds the run;
- `atomic`: writing a checkpoint so that a crash or a full disk never replaces a good one;
- `callback`: Lightning's ModelCheckpoint with a `last.ckpt` that follows every epoch;
- `resume`: `ckpt_path=last`, continuing the newest run of an experiment in its own folder.
"""

from litlab.checkpoints.atomic import AtomicCheckpointIO, atomic_save
from litlab.checkpoints.callback import LastEveryEpochCheckpoint
from litlab.checkpoints.load import CheckpointError, CheckpointFile
from litlab.checkpoints.record import litlab_record
from litlab.checkpoints.resume import resolve_last_checkpoint

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointFile",
    "CheckpointError",
    "LastEveryEpochCheckpoint",
    "atomic_save",
    "litlab_record",
    "resolve_last_checkpoint",
]
