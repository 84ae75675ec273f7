"""The targets that configs may instantiate (Hydra 1.4's execution whitelist).

The list lives in trusted code, never in a config, so that a config (or the hyperparameters inside a
downloaded checkpoint) cannot authorise its own code.
"""

EXECUTION_WHITELIST: tuple[str, ...] = (
    "litlab.*",
    "lightning.pytorch.*",
    "torch.optim.*",
    "torchvision.*",
    "torchmetrics.*",
    "optuna.*",
    "optuna_integration.*",
)

# Networks named inside a LightningModule's hyperparameters: narrower, since checkpoints travel.
NET_WHITELIST: tuple[str, ...] = ("litlab.models.nets.*", "torchvision.models.*")
