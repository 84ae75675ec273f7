"""A report of the runs of a sweep: a Markdown table of their test metrics and their confusion matrices.

Every run that wrote a `results.json` (the `run_results` callback, part of `callbacks=study`) is one row;
its name comes from the overrides that differ between the runs (for a study, the experiment).
"""

import json
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.classification import MulticlassConfusionMatrix

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


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    pairs = (str(item).lstrip("+~").split("=", 1) for item in OmegaConf.load(path))
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def load_runs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The results of every run under `sweep_dir`, in job order, each with a `name` and its `dir`."""
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
    overrides = [_overrides(run_dir) for run_dir in run_dirs]
    varying = [
        key for key in dict.fromkeys(k for o in overrides for k in o) if len({o.get(key) for o in overrides}) > 1
    ]
    runs = []
    for run_dir, override in zip(run_dirs, overrides, strict=True):
        results = json.loads((run_dir / "results.json").read_text())
        parts = [override[key] if key == "experiment" else f"{key}={override.get(key)}" for key in varying]
        config_path = run_dir / ".hydra" / "config.yaml"
        config = OmegaConf.load(config_path) if config_path.is_file() else OmegaConf.create()
        class_names = OmegaConf.select(config, "model.class_names")
        runs.append(
            {
                **results,
                "name": ", ".join(parts) or str(run_dir.relative_to(sweep_dir)),
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


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """One row per run: name, trainable parameters, test loss, accuracy, macro precision, recall, F1, epochs, time."""
    lines = ["| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for run in runs:
        metrics = run.get("metrics", {})
        cells = [run["name"], f"{run['params_trainable']:,}"]
        cells += [f"{metrics[key]:.4f}" if key in metrics else "-" for _, key in COLUMNS[2:7]]
        cells += [str(run["epochs"]) if run.get("epochs") is not None else "-", _duration(run.get("fit_seconds"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def confusion_matrices_figure(runs: list[dict[str, Any]]) -> Figure:
    """The test confusion matrices of the runs side by side (torchmetrics' plot), titled by run name."""
    runs = [run for run in runs if run.get("confusion_matrix")]
    if not runs:
        raise ValueError("No run saved a test confusion matrix: the report needs classifier runs that were tested.")
    n = len(runs)
    size = len(runs[0]["confusion_matrix"])
    side = min(3.0 + 0.3 * size, 9.0)
    fig = Figure(figsize=(side * n, side + 0.6), dpi=100)
    for ax, run in zip(fig.subplots(1, n, squeeze=False).flat, runs, strict=True):
        matrix = torch.tensor(run["confusion_matrix"])
        MulticlassConfusionMatrix(len(matrix)).plot(
            val=matrix, ax=ax, add_text=len(matrix) <= 20, labels=run["class_names"]
        )
        accuracy = run.get("metrics", {}).get("test/acc")
        ax.set_title(run["name"] + (f"\naccuracy {accuracy:.4f}" if accuracy is not None else ""), fontsize=10)
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
