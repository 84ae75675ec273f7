"""Results over several seeds: every test metric as mean, standard deviation and each seed's value.

    python train.py -m experiment=X seed=1,2,3 hydra.sweep.dir=logs/train/multiruns/X_seeds
    python scripts/report.py logs/train/multiruns/X_seeds        # writes seeds.md beside report.md

Runs are grouped by the overrides that differ between them, the seed excepted (for a study over
experiments: by experiment). A run's test metrics come from its `results.json` (the `run_results`
callback) or, without one, from the last value of each `test/*` metric in its TensorBoard events or CSV logs.
The standard deviation is the sample one (n - 1), so it estimates the spread of a new seed's result.
"""

import csv
import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

SEED_KEY = "seed"


@dataclass
class SeedRun:
    """One run of a multi-seed sweep: its group's name, its seed, its folder and test metrics."""

    name: str
    seed: int | None
    dir: Path
    metrics: dict[str, float] = field(default_factory=dict)


def run_overrides(run_dir: Path) -> dict[str, str]:
    """The command-line overrides of a Hydra run folder, `key=value` into a mapping (+/~ prefixes dropped)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    pairs = (str(item).lstrip("+~").split("=", 1) for item in OmegaConf.load(path))
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def run_names(overrides: list[dict[str, str]], ignore: Iterable[str] = ()) -> list[str]:
    """A name per run from the overrides that differ between the runs (the experiment's bare name); a run without
    any of them (one on the config's defaults) is named `defaults`, unless no run has any."""
    ignore = set(ignore)
    varying = [
        key
        for key in dict.fromkeys(k for o in overrides for k in o)
        if key not in ignore and len({o.get(key) for o in overrides}) > 1
    ]
    names = [
        ", ".join(o[key] if key == "experiment" else f"{key}={o[key]}" for key in varying if key in o)
        for o in overrides
    ]
    return [name or ("defaults" if any(names) else "") for name in names]


def test_metrics(run_dir: Path) -> dict[str, float]:
    """The run's final test metrics: from results.json, else from its TensorBoard events or CSV logs."""
    results = run_dir / "results.json"
    if results.is_file():
        return {k: float(v) for k, v in json.loads(results.read_text()).get("metrics", {}).items()}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics: dict[str, float] = {}
    for folder in sorted({path.parent for path in run_dir.rglob("events.out.tfevents.*")}):
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            if tag.startswith("test/"):
                metrics[tag] = events.Scalars(tag)[-1].value
    for table in sorted(run_dir.rglob("metrics.csv")):
        with open(table, newline="") as file:
            for row in csv.DictReader(file):
                metrics.update({k: float(v) for k, v in row.items() if k.startswith("test/") and v not in ("", None)})
    return metrics


def find_seed_runs(sweep_dir: str | Path) -> list[SeedRun]:
    """Every run under `sweep_dir` that was tested, named by its group, in group then seed order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"Sweep folder '{sweep_dir}' does not exist: pass a logs/train/multiruns/<...> folder.")
    run_dirs = sorted(path.parent.parent for path in sweep_dir.rglob(".hydra/config.yaml"))
    tested = [(run_dir, test_metrics(run_dir)) for run_dir in run_dirs]
    tested = [(run_dir, metrics) for run_dir, metrics in tested if metrics]
    if not tested:
        raise FileNotFoundError(
            f"No run under '{sweep_dir}' logged test metrics: let the runs reach testing (test=true)."
        )
    overrides = [run_overrides(run_dir) for run_dir, _ in tested]
    names = run_names(overrides, ignore=[SEED_KEY])
    runs = [
        # When only the seed varies, every run is in one group, named after the experiment (or the sweep).
        SeedRun(
            name or override.get("experiment") or sweep_dir.name,
            OmegaConf.load(run_dir / ".hydra" / "config.yaml").get(SEED_KEY),
            run_dir,
            metrics,
        )
        for (run_dir, metrics), override, name in zip(tested, overrides, names, strict=True)
    ]
    order = list(dict.fromkeys(run.name for run in runs))
    return sorted(runs, key=lambda run: (order.index(run.name), run.seed is None, run.seed or 0))


def mean_std(values: Iterable[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    values = list(values)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def format_mean_std(values: Iterable[float], digits: int = 4) -> str:
    """`mean ± std` over seeds (just the value for one)."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def group_runs(runs: list[SeedRun]) -> dict[str, list[SeedRun]]:
    """The runs of each group, in order."""
    groups: dict[str, list[SeedRun]] = {}
    for run in runs:
        groups.setdefault(run.name, []).append(run)
    return groups


def seed_table(runs: list[SeedRun], digits: int = 4) -> str:
    """A Markdown table: per group and test metric, the mean, the standard deviation and each seed's value."""
    groups = group_runs(runs)
    seeds = list(dict.fromkeys(run.seed for run in runs))
    lines = [
        "| run | metric | mean | std | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
        "|" + "---|" * (4 + len(seeds)),
    ]
    for name, group in groups.items():
        metrics = list(dict.fromkeys(metric for run in group for metric in sorted(run.metrics)))
        by_seed = {run.seed: run for run in group}
        for metric in metrics:
            values = [run.metrics[metric] for run in group if metric in run.metrics]
            mean, std = mean_std(values)
            cells = [name, metric, f"{mean:.{digits}f}", "-" if std is None else f"{std:.{digits}f}"]
            cells += [
                f"{by_seed[seed].metrics[metric]:.{digits}f}"
                if seed in by_seed and metric in by_seed[seed].metrics
                else "-"
                for seed in seeds
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def several_seeds(runs: list[SeedRun]) -> bool:
    """Whether some group of the sweep holds more than one seed."""
    return any(len(group) > 1 for group in group_runs(runs).values())
