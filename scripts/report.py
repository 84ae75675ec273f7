"""Tabulates a sweep of classifier runs: `python scripts/report.py logs/train/multiruns/<date>`.

Writes report.md (the Markdown table, also printed) and confusion_matrices.png into the sweep folder, and
both to TensorBoard under <sweep>/report. Without an argument it reports the newest folder of
logs/train/multiruns. A command line over `litlab.reports.study`.
"""

import argparse
from pathlib import Path

from litlab import ROOT_DIR
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
        paths = write_report(sweep_dir)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(1, f"{err}\n")
    print(paths["table"].read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
