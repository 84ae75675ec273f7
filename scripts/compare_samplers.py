"""Runs one search with several samplers on an equal time budget and compares how fast each finds a good model.

Every sampler gets the same search (configs/hparams_search/samplers_compare.yaml unless --search names
another), the same time budget and its own study in one SQLite file. The script writes, into --out:
  samplers_compare.png  best value so far against wall time and against epochs spent
  samplers_compare.csv  per sampler: best value, trials finished, pruned and failed, epochs spent
and each sampler's own sweep folder (with optimization_results.yaml, trials.csv and plots).

    python scripts/compare_samplers.py --budget 300
    python scripts/compare_samplers.py --budget 600 --samplers random tpe tpe_hyperband -- trainer.max_epochs=10
Arguments after `--` are passed on to every `train.py` run. The comparison itself is `litlab.reports.samplers`.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd

from litlab.reports.samplers import plot, progress, summarize

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
