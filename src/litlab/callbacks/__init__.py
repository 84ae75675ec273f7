from litlab.callbacks.optuna_trial import OptunaTrialCallback, trial_callbacks

__all__ = ["OptunaTrialCallback", "trial_callbacks"]
