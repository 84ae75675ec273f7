"""litlab's Optuna sweeper: hydra-optuna-sweeper plus pruning, a time budget, FAIL on NaN and sweep reports."""
