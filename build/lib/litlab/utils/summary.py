from pathlib import Path
from typing import Any

from lightning import Trainer
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table


@rank_zero_only
def print_run_summary(metric_dict: dict[str, Any], trainer: Trainer, cfg: DictConfig) -> None:
    """Prints the final metrics and where the run's logs and best checkpoint went."""
    console = Console(soft_wrap=True)  # paths must stay whole to be copied
    table = Table(title=f"{cfg.get('task_name', 'run')}: final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in sorted(metric_dict):
        value = metric_dict[name]
        value = float(value.item() if hasattr(value, "item") else value)
        table.add_row(name, f"{value:.4f}" if abs(value) < 1e4 else f"{value:.0f}")
    console.print(table)
    for logger in trainer.loggers:
        if logger.log_dir:
            kind = type(logger).__name__.removesuffix("Logger")
            console.print(f"{kind} logs: {Path(logger.log_dir).resolve()}")
            if kind == "TensorBoard":
                console.print(f"  view them with: tensorboard --logdir {Path(logger.save_dir).resolve()}")
    if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path:
        console.print(f"Best checkpoint: {Path(trainer.checkpoint_callback.best_model_path).resolve()}")
    console.print(f"Output dir: {Path(cfg.paths.output_dir).resolve()}")
