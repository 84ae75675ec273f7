"""Tabulates a sweep of runs: `python scripts/report.py logs/train/multiruns/<date>`.

For classifier runs that wrote results.json (`callbacks=study`), writes report.md (the Markdown table, also
printed) and confusion_matrices.png into the sweep folder, and both to TensorBoard under <sweep>/report;
runs that differ only by their seed or fold share a row (mean ± standard deviation). When the sweep holds
several seeds (`python train.py -m experiment=X seed=1,2,3`), also writes seeds.md: every test metric (and
the optimized metric) as mean, standard deviation and each seed's value, for any model; for the folds of a
k-fold cross-validation (`data.folds=5 'data.fold=range(0,5)'`), the same table as folds.md. Without an
argument it reports the newest folder of logs/train/multiruns. `--results-page NAME` also writes the seed or
fold table to docs/results/NAME.md with the sweep's command, stamped with this command, the commit, the date
and the machine. A command line over `litlab.reports.study` and `litlab.reports.seeds`.
"""

import argparse
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from litlab import ROOT_DIR
from litlab.reports.seeds import find_seed_runs, has_folds, seed_table, several_seeds, sweep_command
from litlab.reports.study import write_report

PAGE_INTRO = {
    "folds": "Each row: a metric's mean and sample standard deviation over the folds, then each fold's value. "
    "`val/...` is the optimized metric on the fold held out for validation (the cross-validation score); "
    "`test/...` are the best checkpoint's scores on the test split, which every fold shares.",
    "seeds": "Each row: a metric's mean and sample standard deviation over the seeds, then each seed's value.",
}


def _stamp() -> str:
    """This command, the commit, the date and the machine (CPU model, cores, torch version)."""
    env = " ".join(f"{name}={os.environ[name]}" for name in ("OMP_NUM_THREADS",) if name in os.environ)
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT_DIR) if script.is_relative_to(ROOT_DIR) else script
    command = f"{env} python {shlex.join([str(shown), *sys.argv[1:]])}".strip()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT_DIR), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown (not a git checkout)"
    dirty = " with uncommitted changes" if git("status", "--porcelain", "--", ".", ":(exclude)docs/results") else ""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    cpu = models[0] if models else platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    date = datetime.now(timezone.utc).date().isoformat()
    return f"- Command: `{command}`\n- Commit: `{commit}`{dirty}\n- Date: {date}\n- Machine: {machine}"


def write_page(name: str, title: str, kind: str, sweep_dir: Path, table: str) -> Path:
    """docs/results/<name>.md: the sweep's command, the table, and the stamp of this report."""
    command = sweep_command(sweep_dir)
    sweep = f"The sweep: `{command}`." if command else f"The sweep in {sweep_dir}."
    body = [f"# {title}", sweep, f"## Every {kind[:-1]}", PAGE_INTRO[kind], table.strip()]
    path = ROOT_DIR / "docs" / "results" / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join([*body, "## How this page was made", _stamp()]) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", type=Path, help="the multirun folder (default: the newest one)")
    parser.add_argument("--results-page", help="also write the seed or fold table to docs/results/<this name>.md")
    parser.add_argument("--title", help="the results page's title (default: the folder's name)")
    args = parser.parse_args(argv)
    sweep_dir = args.sweep_dir
    if sweep_dir is None:
        multiruns = sorted((ROOT_DIR / "logs" / "train" / "multiruns").glob("*/"), key=lambda p: p.stat().st_mtime)
        if not multiruns:
            parser.error("no sweep folder given and logs/train/multiruns is empty: pass the sweep folder.")
        sweep_dir = multiruns[-1]
    try:
        seed_runs = find_seed_runs(sweep_dir)
        if any(sweep_dir.rglob("results.json")):
            paths = write_report(sweep_dir)
            print(paths["table"].read_text())
            for kind, path in paths.items():
                print(f"{kind}: {path}")
    except (FileNotFoundError, ValueError) as err:
        parser.exit(1, f"{err}\n")
    if several_seeds(seed_runs):
        kind = "folds" if has_folds(seed_runs) else "seeds"
        table = seed_table(seed_runs)
        (sweep_dir / f"{kind}.md").write_text(table)
        print(f"\n{table}\n{kind}: {sweep_dir / f'{kind}.md'}")
        if args.results_page:
            path = write_page(args.results_page, args.title or sweep_dir.name, kind, sweep_dir, table)
            print(f"results page: {path}")
    elif args.results_page:
        parser.exit(1, f"No group of runs under '{sweep_dir}' holds several seeds or folds: no page written.\n")


if __name__ == "__main__":
    main()
