from litlab.callbacks.checkpoint import ModelCheckpoint
from litlab.callbacks.divergence import DivergenceGuard
from litlab.callbacks.dropblock import DropBlockSchedule
from litlab.callbacks.ema import EMAWeightAveraging
from litlab.callbacks.gradcam import GradCAM
from litlab.callbacks.optuna_trial import OptunaTrialCallback
from litlab.callbacks.random_state import RandomState
from litlab.callbacks.results import RunResults
from litlab.callbacks.test_curves import TestCurves

__all__ = [
    "DivergenceGuard",
    "DropBlockSchedule",
    "EMAWeightAveraging",
    "GradCAM",
    "ModelCheckpoint",
    "OptunaTrialCallback",
    "RandomState",
    "RunResults",
    "TestCurves",
]
