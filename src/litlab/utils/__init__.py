"""Small helpers of the task functions (train, evaluate, predict, export), in lightning-hydra-template's shape.

- `utils`: `extras` (warnings, tags, the printed config) and `task_context` (the execution whitelist around a
  task), `get_metric_value` (what a sweeper optimises);
- `instantiators`: callbacks, loggers and the Trainer from the config;
- `hparams`: what a run logs as its hyperparameters (TensorBoard's HParams tab);
- `rich_utils`: the printed config tree, tags; `summary`: the table at the end of a run;
- `errors`: one sentence on the terminal for a failed run; `pylogger`: the rank-aware Python logger.

Import each from its module (`from litlab.utils.pylogger import RankedLogger`): the package imports nothing,
so that `--help` and TAB completion do not pay for Lightning.
"""
