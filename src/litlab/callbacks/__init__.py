from litlab.callbacks.dropblock import DropBlockSchedule
from litlab.callbacks.gradcam import GradCAM
from litlab.callbacks.optuna_trial import OptunaTrialCallback, trial_callbacks
from litlab.callbacks.random_state import RandomState
from litlab.callbacks.results import RunResults
from litlab.callbacks.test_curves import TestCurves

__all__ = [
    "DropBlockSchedule",
    "GradCAM",
    "OptunaTrialCallback",
    "RandomState",
    "RunResults",
    "TestCurves",
    "trial_callbacks",
]
