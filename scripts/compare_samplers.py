"""Runs one search with several samplers on an equal time budget and compares how fast each finds a good model.

Every sampler gets the same search (configs/hparams_search/samplers_compare.yaml unless --search names
another), the same time budget and its own study in one SQLite file. The script writes, into --out:
  samplers_compare.png  best value so far against wall time and against epochs spent
  samplers_compare.csv  per sampler: best value, trials finished, pruned and failed, epochs spent
and each sampler's own sweep folder (with optimization_results.yaml, trials.csv and plots).

    python scripts/compare_samplers.py --budget 300
    python scripts/compare_samplers.py --budget 600 --samplers random tpe tpe_hyperband -- trainer.max_epochs=10
Arguments after `--` are passed on to every `train.py` run.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# name -> the overrides that select it; the pruned variant reuses TPE and adds Hyperband over the epochs.
SAMPLERS: dict[str, list[str]] = {
    "grid": ["hydra/sweeper/sampler=grid", "hydra.sweeper.sampler.seed=0"],
    "random": ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0"],
    "tpe": ["hydra/sweeper/sampler=tpe", "hydra.sweeper.sampler.seed=0", "hydra.sweeper.sampler.n_startup_trials=5"],
    "cmaes": ["hydra/sweeper/sampler=cmaes", "hydra.sweeper.sampler.seed=0"],
    "tpe_hyperband": [
        "hydra/sweeper/sampler=tpe",
        "hydra.sweeper.sampler.seed=0",
        "hydra.sweeper.sampler.n_startup_trials=5",
        "hydra.sweeper.pruner={_target_:optuna.pruners.HyperbandPruner,min_resource:1,"
        "max_resource:${trainer.max_epochs},reduction_factor:3}",
    ],
}


def run_search(name: str, args: argparse.Namespace, storage: str, extra: list[str]) -> None:
    """One sweep with one sampler, as a separate `train.py -m` process."""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"hparams_search={args.search}",
        *SAMPLERS[name],
        f"hydra.sweeper.timeout={args.budget}",
        "hydra.sweeper.n_trials=null",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={args.out / name}",
        "extras.print_config=false",
        "callbacks.rich_progress_bar=null",
        *extra,
    ]
    print(f"[{name}] {args.budget} s budget", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    with open(args.out / f"{name}.log", "w") as log_file:
        subprocess.run(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=True)


def progress(study: optuna.Study) -> pd.DataFrame:
    """Per finished trial, in order of finishing: seconds since the study began, epochs spent, best so far."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete]
    if not trials:
        return pd.DataFrame(columns=["seconds", "epochs", "best", "state"])
    trials.sort(key=lambda t: t.datetime_complete)
    start = min(t.datetime_start for t in trials)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows, best, epochs = [], None, 0
    for trial in trials:
        # every validation epoch reports one intermediate value, pruned trials included
        epochs += len(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            better = best is None or (trial.value > best if maximize else trial.value < best)
            best = trial.value if better else best
        seconds = (trial.datetime_complete - start).total_seconds()
        rows.append({"seconds": seconds, "epochs": epochs, "best": best, "state": trial.state.name})
    return pd.DataFrame(rows)


def summarize(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per sampler: best value, trial counts and epochs spent."""
    rows = []
    for name, curve in curves.items():
        states = curve["state"].value_counts() if len(curve) else pd.Series(dtype=int)
        rows.append(
            {
                "sampler": name,
                "best_value": curve["best"].dropna().iloc[-1] if curve["best"].notna().any() else None,
                "trials_finished": int(states.get("COMPLETE", 0)),
                "trials_pruned": int(states.get("PRUNED", 0)),
                "trials_failed": int(states.get("FAIL", 0)),
                "epochs_spent": int(curve["epochs"].iloc[-1]) if len(curve) else 0,
            }
        )
    return pd.DataFrame(rows)


def plot(curves: dict[str, pd.DataFrame], path: Path, metric: str) -> None:
    """Best value so far against wall time (left) and against epochs spent (right), one line per sampler."""
    fig, (by_time, by_epochs) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for name, curve in curves.items():
        curve = curve.dropna(subset=["best"])
        by_time.step(curve["seconds"], curve["best"], where="post", label=name, marker=".")
        by_epochs.step(curve["epochs"], curve["best"], where="post", label=name, marker=".")
    by_time.set_xlabel("wall time (s)")
    by_epochs.set_xlabel("epochs spent (all trials, pruned ones included)")
    by_time.set_ylabel(f"best {metric} so far")
    for ax in (by_time, by_epochs):
        ax.grid(alpha=0.3)
    by_epochs.legend()
    fig.suptitle("Samplers on an equal time budget")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=300, help="seconds of search per sampler")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    parser.add_argument("--search", default="samplers_compare", help="the hparams_search config to run")
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "samplers_compare", help="output folder")
    parser.add_argument("--metric", default="val/acc_best", help="the optimised metric's name, for the plot")
    args = parser.parse_args(own)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{args.out / 'studies.db'}"

    for name in args.samplers:
        run_search(name, args, storage, extra)
    curves = {name: progress(optuna.load_study(study_name=name, storage=storage)) for name in args.samplers}
    table = summarize(curves)
    table.to_csv(args.out / "samplers_compare.csv", index=False)
    plot(curves, args.out / "samplers_compare.png", args.metric)
    print(table.to_string(index=False))
    print(f"Plot and table written to {args.out}")
    return table


if __name__ == "__main__":
    main()
