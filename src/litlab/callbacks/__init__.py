"""Lightning callbacks that litlab's configs add to a run (configs/callbacks/).

The callbacks that need a heavy optional stack are imported from their own modules only when a config names
them, so that a plain run does not pay for it: `litlab.callbacks.gradcam.GradCAM` (captum) and
`litlab.callbacks.optuna_trial.OptunaTrialCallback` (Optuna; added to each trial by the sweeper).
The checkpoint callback lives with the rest of checkpointing, in `litlab.checkpoints`.
"""

from litlab.callbacks.divergence import DivergenceGuard
from litlab.callbacks.dropblock import DropBlockSchedule
from litlab.callbacks.ema import EMAWeights
from litlab.callbacks.random_state import RandomState
from litlab.callbacks.results import RunResults
from litlab.callbacks.test_curves import TestCurves

__all__ = ["DivergenceGuard", "DropBlockSchedule", "EMAWeights", "RandomState", "RunResults", "TestCurves"]
