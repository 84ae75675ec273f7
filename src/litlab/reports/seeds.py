"""Results over several seeds or folds: every test metric as mean, standard deviation and each run's value.

    python train.py -m experiment=X seed=1,2,3 hydra.sweep.dir=logs/train/multiruns/X_seeds
    python scripts/report.py logs/train/multiruns/X_seeds        # writes seeds.md beside report.md

    python train.py -m experiment=X data.folds=5 'data.fold=range(0,5)' hydra.sweep.dir=logs/train/multiruns/X_cv
    python scripts/report.py logs/train/multiruns/X_cv           # writes folds.md

Runs are grouped by the overrides that differ between them, the seed and the fold excepted (for a study over
experiments: by experiment), so the seeds and the folds of a group are pooled. A run's test metrics come from
its `results.json` (the `run_results` callback) or, without one, from the last value of each `test/*` metric
in its TensorBoard events or CSV logs; its `optimized_metric` (`val/acc_best`: for k folds, the
cross-validation score) from the last value its logs hold. The standard deviation is the sample one (n - 1),
so it estimates the spread of a new seed's (or fold's) result.
"""

import csv
import json
import shlex
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from litlab.search.worker import CALLBACK_KEY

SEED_KEY = "seed"
FOLD_KEY = "data.fold"
# The entry through which an Optuna search hands each job its trial: it names the trial, not a setting.
TRIAL_KEY = f"callbacks.{CALLBACK_KEY}"


@dataclass
class SeedRun:
    """One run of a sweep over seeds or folds: its group's name, its seed, its fold, its folder and metrics."""

    name: str
    seed: int | None
    dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    fold: int | None = None

    def label(self, seed: bool = True) -> str:
        """The run within its group: `seed 1`, `fold 0` or `seed 1, fold 0` (`seed=False`: the fold alone)."""
        parts = [f"seed {self.seed}"] if seed or self.fold is None else []
        return ", ".join(parts + ([f"fold {self.fold}"] if self.fold is not None else []))


def run_overrides(run_dir: Path) -> dict[str, str]:
    """The command-line overrides of a Hydra run folder, `key=value` into a mapping (+/~ prefixes dropped)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    # Unresolved: a search's trial entry holds `${hydra:...}`, which only a running job can resolve.
    items = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    pairs = (str(item).lstrip("+~").split("=", 1) for item in items)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def sweep_command(sweep_dir: Path) -> str | None:
    """The command that ran the sweep, from Hydra's multirun.yaml in its folder (None without one)."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return None
    hydra = OmegaConf.load(path).hydra
    overrides = [*hydra.overrides.task, *(o for o in hydra.overrides.hydra if o != "hydra.mode=MULTIRUN")]
    return shlex.join(["python", f"{hydra.job.name}.py", "-m", *overrides])


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


def logged_metrics(run_dir: Path, keep: Callable[[str], bool]) -> dict[str, float]:
    """The last value of each metric `keep` accepts, from the run's TensorBoard events and CSV logs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics: dict[str, float] = {}
    for folder in sorted({path.parent for path in run_dir.rglob("events.out.tfevents.*")}):
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            if keep(tag):
                metrics[tag] = events.Scalars(tag)[-1].value
    for table in sorted(run_dir.rglob("metrics.csv")):
        with open(table, newline="") as file:
            for row in csv.DictReader(file):
                metrics.update({k: float(v) for k, v in row.items() if keep(k) and v not in ("", None)})
    return metrics


def run_metrics(run_dir: Path, optimized_metric: str | None = None) -> dict[str, float]:
    """The run's final test metrics (from results.json, else from its TensorBoard events or CSV logs) and the
    last logged value of its `optimized_metric`, what a sweeper was given (for a search, which tests no run,
    all there is)."""
    results = run_dir / "results.json"
    metrics = {}
    if results.is_file():
        metrics = {k: float(v) for k, v in json.loads(results.read_text()).get("metrics", {}).items()}
    logged_tests = not results.is_file()

    def wanted(name: str) -> bool:
        return name not in metrics and (name == optimized_metric or (logged_tests and name.startswith("test/")))

    return {**metrics, **logged_metrics(run_dir, wanted)}


def find_seed_runs(sweep_dir: str | Path) -> list[SeedRun]:
    """Every run under `sweep_dir` that was tested or logged its optimized metric, named by its group, in group,
    seed then fold order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"Sweep folder '{sweep_dir}' does not exist: pass a logs/train/multiruns/<...> folder.")
    run_dirs = sorted(path.parent.parent for path in sweep_dir.rglob(".hydra/config.yaml"))
    configs = {run_dir: OmegaConf.load(run_dir / ".hydra" / "config.yaml") for run_dir in run_dirs}
    tested = [(run_dir, run_metrics(run_dir, configs[run_dir].get("optimized_metric"))) for run_dir in run_dirs]
    tested = [(run_dir, metrics) for run_dir, metrics in tested if metrics]
    if not tested:
        raise FileNotFoundError(
            f"No run under '{sweep_dir}' logged test metrics or its optimized_metric: let the runs reach testing "
            "(test=true)."
        )
    overrides = [run_overrides(run_dir) for run_dir, _ in tested]
    names = run_names(overrides, ignore=[SEED_KEY, FOLD_KEY, TRIAL_KEY])
    runs = [
        # When only the seed or the fold varies, every run is in one group, named after the experiment (or the sweep).
        SeedRun(
            name or override.get("experiment") or sweep_dir.name,
            configs[run_dir].get(SEED_KEY),
            run_dir,
            metrics,
            OmegaConf.select(configs[run_dir], FOLD_KEY),
        )
        for (run_dir, metrics), override, name in zip(tested, overrides, names, strict=True)
    ]
    order = list(dict.fromkeys(run.name for run in runs))
    return sorted(
        runs, key=lambda run: (order.index(run.name), run.seed is None, run.seed or 0, run.fold is None, run.fold or 0)
    )


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
    """A Markdown table: per group and metric, the mean, the standard deviation and each seed's (fold's) value."""
    groups = group_runs(runs)
    # Folds under one seed are named by their fold alone.
    seeded = len({run.seed for run in runs}) > 1
    labels = list(dict.fromkeys(run.label(seeded) for run in runs))
    lines = [
        "| run | metric | mean | std | " + " | ".join(labels) + " |",
        "|" + "---|" * (4 + len(labels)),
    ]
    for name, group in groups.items():
        # The optimized metric (validation) first, then the test metrics, by name.
        metrics = sorted({metric for run in group for metric in run.metrics}, key=lambda m: (m.startswith("test/"), m))
        by_label = {run.label(seeded): run for run in group}
        for metric in metrics:
            values = [run.metrics[metric] for run in group if metric in run.metrics]
            mean, std = mean_std(values)
            cells = [name, metric, f"{mean:.{digits}f}", "-" if std is None else f"{std:.{digits}f}"]
            cells += [
                f"{by_label[label].metrics[metric]:.{digits}f}"
                if label in by_label and metric in by_label[label].metrics
                else "-"
                for label in labels
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def several_seeds(runs: list[SeedRun]) -> bool:
    """Whether some group of the sweep holds more than one run (several seeds or folds)."""
    return any(len(group) > 1 for group in group_runs(runs).values())


def has_folds(runs: list[SeedRun]) -> bool:
    """Whether the runs are folds of a k-fold cross-validation (`data.folds`)."""
    return any(run.fold is not None for run in runs)


def replicates(seeds_and_folds: list[tuple[int | None, int | None]]) -> str:
    """What a group of runs pools, from their (seed, fold) pairs: `3 seeds`, `5 folds` or `2 seeds x 5 folds`."""
    seeds = {seed for seed, _ in seeds_and_folds}
    folds = {fold for _, fold in seeds_and_folds if fold is not None}
    if not folds:
        return f"{len(seeds_and_folds)} seeds"
    return f"{len(folds)} folds" if len(seeds) == 1 else f"{len(seeds)} seeds x {len(folds)} folds"
