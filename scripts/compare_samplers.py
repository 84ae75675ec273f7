"""Runs one search with several samplers on an equal budget and compares how fast each finds a good model.

Every sampler gets the same search (configs/hparams_search/samplers_compare.yaml unless --search names
another), the same budget and its own study in one SQLite file. The budget is either wall-clock seconds
(--budget: no new trial once spent) or training epochs (--epochs: the sweep is stopped once its finished
trials have spent that many epochs, pruned ones included, and only the trials that fit in the budget count).
Epochs do not depend on what else the machine is running, so on a shared machine prefer --epochs.
The script writes, into --out:
  samplers_compare.png  best value so far against wall time and against epochs spent
  samplers_compare.csv  per sampler: best value, trials finished, pruned and failed, epochs spent, wall time
and each sampler's own sweep folder (with optimization_results.yaml, trials.csv and plots).

    python scripts/compare_samplers.py --budget 300
    python scripts/compare_samplers.py --epochs 80 -- trainer.max_epochs=4
    python scripts/compare_samplers.py --budget 600 --samplers random tpe tpe_hyperband -- trainer.max_epochs=10
Arguments after `--` are passed on to every `train.py` run.
"""

import argparse
import os
import signal
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


def epochs_spent(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Training epochs the trials ran: each validation epoch reports one intermediate value, pruned trials too."""
    return sum(len(trial.intermediate_values) for trial in trials)


def finished_trials(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's finished trials, or none while the sweep has not created the study yet."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return []
    return [trial for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()]


def stop(process: subprocess.Popen, grace: float = 120) -> None:
    """Ctrl-C to the sweep's process group (the sweep closes its running trial and writes its reports)."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_search(name: str, args: argparse.Namespace, storage: str, extra: list[str]) -> set[int] | None:
    """One sweep with one sampler, as a separate `train.py -m` process.

    With an epoch budget, returns the numbers of the trials finished when the budget was reached (the sweep
    is then stopped); with a time budget the sweep stops itself and every trial counts (None).
    """
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"hparams_search={args.search}",
        *SAMPLERS[name],
        f"hydra.sweeper.timeout={'null' if args.epochs else args.budget}",
        "hydra.sweeper.n_trials=null",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={args.out / name}",
        "extras.print_config=false",
        "callbacks.rich_progress_bar=null",
        *extra,
    ]
    print(f"[{name}] budget: {f'{args.epochs} epochs' if args.epochs else f'{args.budget} s'}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    with open(args.out / f"{name}.log", "w") as log_file:
        # its own process group, so that stopping it reaches any worker it starts
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while True:
                try:
                    returncode = process.wait(timeout=args.poll)
                except subprocess.TimeoutExpired:
                    pass
                else:
                    if returncode != 0:
                        raise subprocess.CalledProcessError(returncode, command)
                    return None  # a time budget spent, or a grid exhausted
                if args.epochs:
                    finished = finished_trials(storage, name)
                    if epochs_spent(finished) >= args.epochs:
                        stop(process)
                        return {trial.number for trial in finished}
        except BaseException:
            if process.poll() is None:
                stop(process)
            raise


def progress(study: optuna.Study, counted: set[int] | None = None, epoch_budget: int | None = None) -> pd.DataFrame:
    """Per finished trial, in order of finishing: seconds since the study began, epochs spent, best so far.

    Only the trials in `counted` (None: all) count, and only as long as their epochs fit in `epoch_budget`.
    """
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.datetime_complete and (counted is None or t.number in counted)
    ]
    if not trials:
        return pd.DataFrame(columns=["seconds", "epochs", "best", "state"])
    trials.sort(key=lambda t: t.datetime_complete)
    start = min(t.datetime_start for t in trials)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    rows, best, epochs = [], None, 0
    for trial in trials:
        epochs += len(trial.intermediate_values)
        if epoch_budget is not None and epochs > epoch_budget:
            break
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
                "wall_s": round(float(curve["seconds"].iloc[-1])) if len(curve) else 0,
            }
        )
    return pd.DataFrame(rows)


def plot(curves: dict[str, pd.DataFrame], path: Path, metric: str, budget: str) -> None:
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
    fig.suptitle(f"Samplers on an equal budget of {budget}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=float, help="seconds of search per sampler (default 300)")
    budget.add_argument("--epochs", type=int, help="training epochs per sampler, pruned trials' included")
    parser.add_argument("--poll", type=float, default=5, help="seconds between looks at the epochs spent")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    parser.add_argument("--search", default="samplers_compare", help="the hparams_search config to run")
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "samplers_compare", help="output folder")
    parser.add_argument("--metric", default="val/acc_best", help="the optimised metric's name, for the plot")
    args = parser.parse_args(own)
    if args.epochs is None and args.budget is None:
        args.budget = 300
    if (args.epochs is not None and args.epochs < 1) or (args.budget is not None and args.budget <= 0):
        parser.error("the budget must be positive: --epochs N (N >= 1) or --budget SECONDS (> 0)")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{args.out / 'studies.db'}"

    counted = {name: run_search(name, args, storage, extra) for name in args.samplers}
    curves = {
        name: progress(optuna.load_study(study_name=name, storage=storage), counted[name], args.epochs)
        for name in args.samplers
    }
    table = summarize(curves)
    table.to_csv(args.out / "samplers_compare.csv", index=False)
    plot(
        curves,
        args.out / "samplers_compare.png",
        args.metric,
        f"{args.epochs} epochs" if args.epochs else f"{args.budget:g} s",
    )
    print(table.to_string(index=False))
    print(f"Plot and table written to {args.out}")
    return table


if __name__ == "__main__":
    main()
