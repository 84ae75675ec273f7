"""A report of the runs of a sweep: a Markdown table of their test metrics and their confusion matrices.

Every run that wrote a `results.json` (the `run_results` callback, part of `callbacks=study`) is one row;
its name comes from the overrides that differ between the runs (for a study, the experiment). Runs that
differ only by their seed share a row: each metric as mean ± sample standard deviation over the seeds, and
one confusion matrix summed over them. The folds of a k-fold cross-validation (`data.fold`) are pooled the same way.
"""

import json
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.classification import MulticlassConfusionMatrix

from litlab.reports.seeds import (
    FOLD_KEY,
    SEED_KEY,
    TRIAL_KEY,
    format_mean_std,
    mean_std,
    replicates,
    run_names,
    run_overrides,
)

COLUMNS = (
    ("model", None),
    ("parameters", None),
    ("test loss", "test/loss"),
    ("accuracy", "test/acc"),
    ("precision (macro)", "test/precision"),
    ("recall (macro)", "test/recall"),
    ("F1 (macro)", "test/f1"),
    ("epochs", None),
    ("train time", None),
)


def _job_order(run_dir: Path) -> tuple[int, str]:
    return (int(run_dir.name), "") if run_dir.name.isdigit() else (1 << 30, str(run_dir))


def load_runs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The results of every run under `sweep_dir`, in job order, each with a `name` (seed and fold left out),
    `seed`, `fold`, `dir`."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"Sweep folder '{sweep_dir}' does not exist: pass a logs/train/multiruns/<date> folder."
        )
    run_dirs = sorted((path.parent for path in sweep_dir.rglob("results.json")), key=_job_order)
    if not run_dirs:
        raise FileNotFoundError(
            f"No run under '{sweep_dir}' wrote a results.json: train with callbacks=study (the study experiments "
            "do) or add callbacks.run_results, and let the runs reach testing."
        )
    names = run_names([run_overrides(run_dir) for run_dir in run_dirs], ignore=[SEED_KEY, FOLD_KEY, TRIAL_KEY])
    runs = []
    for run_dir, name in zip(run_dirs, names, strict=True):
        results = json.loads((run_dir / "results.json").read_text())
        config_path = run_dir / ".hydra" / "config.yaml"
        config = OmegaConf.load(config_path) if config_path.is_file() else OmegaConf.create()
        class_names = OmegaConf.select(config, "model.class_names")
        runs.append(
            {
                **results,
                "name": name or str(run_dir.relative_to(sweep_dir)),
                "seed": config.get(SEED_KEY),
                "fold": OmegaConf.select(config, FOLD_KEY),
                "dir": run_dir,
                "class_names": list(class_names) if class_names else None,
            }
        )
    return runs


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _groups(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run["name"], []).append(run)
    return groups


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """One row per run (or per group of seeds): name, trainable parameters, test loss, accuracy, macro precision,
    recall, F1, epochs, time; over several seeds, mean ± standard deviation and the mean time."""
    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, group in _groups(runs).items():
        label = name if len(group) == 1 else f"{name} ({replicates([(run['seed'], run['fold']) for run in group])})"
        cells = [label, " / ".join(dict.fromkeys(f"{run['params_trainable']:,}" for run in group))]
        for _, key in COLUMNS[2:7]:
            values = [run["metrics"][key] for run in group if key in run.get("metrics", {})]
            cells.append(format_mean_std(values) if values else "-")
        epochs = [str(run["epochs"]) for run in group if run.get("epochs") is not None]
        seconds = [run["fit_seconds"] for run in group if run.get("fit_seconds") is not None]
        cells += [" / ".join(dict.fromkeys(epochs)) or "-", _duration(mean_std(seconds)[0] if seconds else None)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def confusion_matrices_figure(runs: list[dict[str, Any]]) -> Figure:
    """The test confusion matrices of the runs side by side (torchmetrics' plot), titled by run name; the runs
    of a group of seeds share one, summed over them."""
    groups = _groups([run for run in runs if run.get("confusion_matrix")])
    if not groups:
        raise ValueError("No run saved a test confusion matrix: the report needs classifier runs that were tested.")
    n = len(groups)
    size = len(next(iter(groups.values()))[0]["confusion_matrix"])
    side = min(3.0 + 0.3 * size, 9.0)
    fig = Figure(figsize=(side * n, side + 0.6), dpi=100)
    for ax, (name, group) in zip(fig.subplots(1, n, squeeze=False).flat, groups.items(), strict=True):
        matrix = sum(torch.tensor(run["confusion_matrix"]) for run in group)
        MulticlassConfusionMatrix(len(matrix)).plot(
            val=matrix, ax=ax, add_text=len(matrix) <= 20, labels=group[0]["class_names"]
        )
        accuracies = [run["metrics"]["test/acc"] for run in group if "test/acc" in run.get("metrics", {})]
        title = name if len(group) == 1 else f"{name}, {replicates([(r['seed'], r['fold']) for r in group])} summed"
        ax.set_title(title + (f"\naccuracy {format_mean_std(accuracies)}" if accuracies else ""), fontsize=10)
    fig.tight_layout()
    return fig


def write_report(sweep_dir: str | Path) -> dict[str, Path]:
    """Writes report.md and confusion_matrices.png into the sweep folder, and both to TensorBoard (report/)."""
    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir)
    table = markdown_table(runs)
    figure = confusion_matrices_figure(runs)
    paths = {"table": sweep_dir / "report.md", "figure": sweep_dir / "confusion_matrices.png"}
    paths["table"].write_text(table)
    figure.savefig(paths["figure"])
    paths["tensorboard"] = sweep_dir / "report"
    with SummaryWriter(str(paths["tensorboard"])) as writer:
        writer.add_text("report/table", table)
        writer.add_figure("report/confusion_matrices", figure)
    return paths
