"""The distillation assignment's results in one table: teachers, students with KD, students without.

Each run is read from what train.py leaves in its output folder: the composed config (.hydra/config.yaml)
and the logged metrics (TensorBoard events, or a CSV logger's metrics.csv). Runs of the same kind and
network with different seeds (`seed=1,2,3`) share a row: mean ± sample standard deviation over the seeds.
"""

import csv
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab.reports.seeds import format_mean_std, mean_std

METRICS = ("test/acc", "val/acc_best", "test/teacher_acc")
ROLE_ORDER = ("teacher", "student, KD", "student, no teacher")


def read_run(run_dir: Path) -> dict[str, Any]:
    """One run's config (plain dict) and last logged value of every scalar metric."""
    config = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"), resolve=False)
    metrics: dict[str, float] = {}
    for events in sorted(run_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            metrics[tag] = accumulator.Scalars(tag)[-1].value
    for table in sorted(run_dir.rglob("metrics.csv")):
        with open(table, newline="") as file:
            for row in csv.DictReader(file):
                metrics.update({key: float(value) for key, value in row.items() if value not in ("", None)})
    return {"dir": run_dir, "config": config, "metrics": metrics}


def role_and_network(config: dict[str, Any]) -> tuple[str, str]:
    """The run's role in the assignment and its network, from its config."""
    model = config.get("model", {})
    target = str(model.get("_target_", ""))
    net = model.get("net", {}) or {}
    arch = str(net.get("arch") or str(net.get("_target_", "?")).rsplit(".", 1)[-1])
    if target.endswith("TransferClassifier"):
        kind = "linear probe" if model.get("mode") == "linear" else "fine-tuned"
        source = f"from {net['weights']}" if net.get("weights") else "from scratch: no pretrained weights"
        return f"teacher, {kind} ({source})", arch
    if target.endswith("DistillationModule"):
        alpha, tau = float(model.get("alpha", 0)), float(model.get("tau", 0))
        if alpha > 0:
            return f"student, KD (alpha={alpha:.2f}, tau={tau:.1f})", arch
        return "student, no teacher (alpha=0)", arch
    return target.rsplit(".", 1)[-1] or "?", arch


def find_runs(folders: list[Path]) -> list[Path]:
    """Every run folder (one holding .hydra/config.yaml) under the folders, searched recursively."""
    return sorted({config.parent.parent for folder in folders for config in folder.rglob(".hydra/config.yaml")})


def merge_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per kind and network: its metrics as lists over the runs (the seeds), its folders in `dirs`."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = merged.setdefault(
            (row["role"], row["arch"]),
            {"role": row["role"], "arch": row["arch"], "dirs": [], **{m: [] for m in METRICS}},
        )
        entry["dirs"].append(row["dir"])
        for metric in METRICS:
            if row[metric] is not None:
                entry[metric].append(row[metric])
    for entry in merged.values():
        if len(entry["dirs"]) > 1:
            entry["role"] += f" [{len(entry['dirs'])} seeds]"
    return list(merged.values())


def report(folders: list[Path], best: bool = False) -> str:
    """The Markdown table: teachers first, then students with KD, then students without, best first.

    `best` keeps the best run of each kind by `val/acc_best`, so a sweep collapses to its winning trial.
    """
    rows = []
    for run_dir in find_runs(folders):
        run = read_run(run_dir)
        role, arch = role_and_network(run["config"])
        rows.append({"role": role, "arch": arch, "dir": run_dir, **{m: run["metrics"].get(m) for m in METRICS}})
    if not rows:
        raise FileNotFoundError(
            f"No runs under {', '.join(map(str, folders))}: point at folders holding train.py outputs."
        )
    rows = merge_seeds(rows)

    def order(row: dict[str, Any]) -> tuple[int, float]:
        group = next((i for i, prefix in enumerate(ROLE_ORDER) if row["role"].startswith(prefix)), len(ROLE_ORDER))
        return group, -(mean_std(row["val/acc_best"])[0] if row["val/acc_best"] else 0.0)

    rows.sort(key=order)
    if best:
        kinds: dict[str, dict[str, Any]] = {}
        for row in rows:
            kinds.setdefault(row["role"].split(" (alpha")[0], row)
        rows = list(kinds.values())
    lines = [
        "| role | net | test acc | best val acc | teacher test acc | run |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row["role"],
            row["arch"],
            *(format_mean_std(row[m]) if row[m] else "" for m in METRICS),
            ", ".join(map(str, row["dirs"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
