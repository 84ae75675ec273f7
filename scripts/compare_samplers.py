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
Arguments after `--` are passed on to every `train.py` run. The comparison itself is `litlab.reports.samplers`.
With `--results-page NAME` the table and the plot also go to docs/results/NAME.md (and NAME.png beside it),
stamped with the command, commit and machine.
"""

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd

from litlab.reports.results_page import markdown_table, page_path, write_results_page
from litlab.reports.samplers import epochs_spent, finished_trials, plot, progress, summarize

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
    parser.add_argument("--results-page", help="also write the table and plot to docs/results/<this name>.md")
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
    if args.results_page:
        write_page(args, table, extra)
    return table


def write_page(args: argparse.Namespace, table: pd.DataFrame, extra: list[str]) -> None:
    """The table and the plot as a results page (the plot beside it, NAME.png)."""
    picture = page_path(args.results_page).with_suffix(".png")
    picture.parent.mkdir(parents=True, exist_ok=True)
    picture.write_bytes((args.out / "samplers_compare.png").read_bytes())
    budget = f"{args.epochs} training epochs" if args.epochs else f"{args.budget:g} s of wall time"
    header = ["sampler", f"best {args.metric}", "complete", "pruned", "failed", "epochs spent", "wall time"]
    rows = [
        [r.sampler, "-" if pd.isna(r.best_value) else f"{r.best_value:.4f}", r.trials_finished, r.trials_pruned,
         r.trials_failed, r.epochs_spent, f"{r.wall_s} s"]
        for r in table.itertuples()
    ]  # fmt: skip
    body = "\n\n".join(
        [
            f"`hparams_search={args.search}` with each sampler in its own study, on a budget of {budget} per "
            f"sampler{'; every train.py run got ' + ' '.join(f'`{a}`' for a in extra) if extra else ''}.",
            markdown_table(header, rows),
            f"![best {args.metric} so far against wall time and epochs]({picture.name})",
        ]
    )
    path = write_results_page(args.results_page, "Samplers compared on one search", body)
    print(f"results page: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
