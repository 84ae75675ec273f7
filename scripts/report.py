"""Tabulates a sweep of runs: `python scripts/report.py logs/train/multiruns/<date>`.

For classifier runs that wrote results.json (`callbacks=study`), writes report.md (the Markdown table, also
printed) and confusion_matrices.png into the sweep folder, and both to TensorBoard under <sweep>/report;
runs that differ only by their seed or fold share a row (mean ± standard deviation). When the sweep holds
several seeds (`python train.py -m experiment=X seed=1,2,3`), also writes seeds.md: every test metric (and
the optimized metric) as mean, standard deviation and each seed's value, for any model; for the folds of a
k-fold cross-validation (`data.folds=5 'data.fold=range(0,5)'`), the same table as folds.md. Without an
argument it reports the newest folder of logs/train/multiruns. A command line over `litlab.reports.study`
and `litlab.reports.seeds`.
"""

import argparse
from pathlib import Path

from litlab import ROOT_DIR
from litlab.reports.seeds import find_seed_runs, has_folds, seed_table, several_seeds
from litlab.reports.study import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", type=Path, help="the multirun folder (default: the newest one)")
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


if __name__ == "__main__":
    main()
