"""Trials per minute of one fixed Optuna search with 1 and with 2 asynchronous workers.

The search (hparams_search=mnist_cnn by default: TPE with a fixed seed, no pruner, small trials) runs --repeats
times per worker count, each as its own `train.py -m` command with `hydra/launcher=joblib` and its own study.
The first run samples its trials; every later run gets the same parameters queued in its study (Optuna's
enqueue_trial), so all runs train the same networks. The machine's threads are split between the workers
(`hydra.sweeper.threads_per_worker`), so every run gets the same CPU. Printed last, as name=value lines: each
count's trials per minute (finished trials over the command's wall time, start-up included) and mean duration
of a trial, medians over the runs (taken in alternating order), their ratio, and the machine's load average before and
after (other jobs on a shared machine skew every figure).

    python scripts/benchmark_sweep.py                       # 12 trials on the MNIST subset, 1 vs 2 workers
    python scripts/benchmark_sweep.py --threads-per-worker 1  # every worker one thread (1 core vs 2)
    python scripts/benchmark_sweep.py --workers 1 4 --threads 4 --trials 20 -- trainer=gpu   # sharing one GPU
Arguments after `--` are passed on to every `train.py` run. The table also goes to docs/results/sweep-workers.md
(`--results-page`), stamped with the command, commit and machine.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from litlab.reports.results_page import markdown_table, write_results_page

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-subset"

# Small trials: one short epoch each, so that the search's cost is dominated by trials, not by one long one.
TRIAL = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=30",
    "+trainer.limit_val_batches=10",
    "test=false",
    "extras.print_config=false",
    "extras.enforce_tags=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_checkpoint=null",
    "callbacks.model_summary=null",
    "+trainer.enable_progress_bar=false",
]
# mnist_cnn's space, with narrower layers (up to 32 filters and 64 units) to keep a CPU run within minutes.
SMALL_MNIST = [
    "hydra.sweeper.custom_search_space_kwargs.max_filters=32",
    "hydra.sweeper.custom_search_space_kwargs.max_units=64",
]


def run(workers: int, name: str, args: argparse.Namespace, extra: list[str], replay: list[dict] | None) -> dict:
    """One sweep with `workers` workers (running the `replay` parameters when given); returns its figures."""
    storage = f"sqlite:///{args.out / 'studies.db'}"
    if replay:
        queued = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        for params in replay:
            queued.enqueue_trial(params)
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"hparams_search={args.search}",
        "hydra/launcher=joblib",
        f"hydra.sweeper.n_jobs={workers}",
        f"hydra.sweeper.threads_per_worker={args.threads_per_worker or max(1, args.threads // workers)}",
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra.sweeper.timeout=null",
        "hydra.sweeper.pruner=null",
        f"hydra.sweeper.sampler.seed={args.seed}",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={args.out / name}",
        *([f"paths.data_dir={args.data}", "data.download=false", *SMALL_MNIST] if args.search == "mnist_cnn" else []),
        *TRIAL,
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    print(f"[{name}] {args.trials} trials", flush=True)
    start = time.monotonic()
    with open(args.out / f"{name}.log", "w") as log_file:
        subprocess.run(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=True)
    seconds = time.monotonic() - start
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {
        "seconds": seconds,
        "finished": len(trials),
        "per_minute": 60 * len(trials) / seconds,
        "mean_trial_s": sum(t.duration.total_seconds() for t in trials) / max(1, len(trials)),
        "params": [t.params for t in sorted(trials, key=lambda t: t.number)],
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--trials", type=int, default=12, help="trials per run")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads shared by workers")
    parser.add_argument(
        "--threads-per-worker", type=int, default=None, help="torch threads of every worker (default: --threads split)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each worker count (medians are printed)")
    parser.add_argument("--search", default="mnist_cnn", help="the hparams_search config")
    parser.add_argument("--seed", type=int, default=1234, help="the sampler's seed")
    parser.add_argument("--data", type=Path, default=DATA, help="the MNIST folder (paths.data_dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "benchmark_sweep", help="output folder")
    parser.add_argument("--results-page", default="sweep-workers", help="the page of docs/results/ ('' for none)")
    args = parser.parse_args(own)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "studies.db").unlink(missing_ok=True)

    load_before = os.getloadavg()[0]
    # Runs alternate (1 2, then 2 1, ...), so that a change in the machine's load weighs on every count alike.
    runs: dict[int, list[dict]] = {workers: [] for workers in args.workers}
    replay = None
    for repeat in range(args.repeats):
        for workers in args.workers if repeat % 2 == 0 else args.workers[::-1]:
            result = run(workers, f"workers_{workers}_run{repeat}", args, extra, replay)
            replay = replay or result["params"]
            runs[workers].append(result)
            print(f"{workers} worker(s): {result['finished']} trials in {result['seconds']:.0f} s", flush=True)
    figures: dict[str, float] = {}
    for workers, results in runs.items():
        figures[f"workers_{workers}_trials_per_min"] = round(statistics.median(r["per_minute"] for r in results), 2)
        figures[f"workers_{workers}_mean_trial_s"] = round(statistics.median(r["mean_trial_s"] for r in results), 1)
    first, last = args.workers[0], args.workers[-1]
    figures[f"speedup_{last}_vs_{first}"] = round(
        figures[f"workers_{last}_trials_per_min"] / figures[f"workers_{first}_trials_per_min"], 2
    )
    figures["load_average_1min_before"] = round(load_before, 2)
    figures["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    figures["cpu_cores"] = os.cpu_count() or 1
    for name, value in figures.items():
        print(f"{name}={value}")
    if args.results_page:
        rows = [
            [
                workers,
                args.threads_per_worker or max(1, args.threads // workers),
                ", ".join(f"{r['seconds']:.0f} s" for r in runs[workers]),
                figures[f"workers_{workers}_trials_per_min"],
                f"{figures[f'workers_{workers}_mean_trial_s']} s",
            ]
            for workers in args.workers
        ]
        header = ["workers", "torch threads each", "wall time of each run", "trials per minute", "mean trial"]
        body = "\n\n".join(
            [
                f"`hparams_search={args.search}`, {args.trials} trials per run (sampler seed {args.seed}, no pruner, "
                f"the same parameters in every run), {args.repeats} runs per worker count in alternating order, "
                "`hydra/launcher=joblib`. Trials per minute and the mean trial duration are medians over the runs; "
                "trials per minute count the command's whole wall time, start-up included.",
                markdown_table(header, rows),
                f"- `speedup_{last}_vs_{first}` = {figures[f'speedup_{last}_vs_{first}']}\n"
                f"- load average (1 min) before: {figures['load_average_1min_before']}; "
                f"after: {figures['load_average_1min_after']}",
            ]
        )
        path = write_results_page(args.results_page, "Sweep workers: trials per minute", body)
        print(f"results page: {path.relative_to(ROOT)}")
    return figures


if __name__ == "__main__":
    main()
