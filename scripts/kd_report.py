"""The distillation assignment's results in one table: teachers, students with KD, students without.

    python scripts/kd_report.py logs/kd_mnist              # every run (or multirun trial) under the folders
    python scripts/kd_report.py logs/train/runs logs/train/multiruns --best --out kd_report.md
    python scripts/kd_report.py logs/kd_mnist --results-page distillation-mnist   # docs/results/, stamped

A command line over `litlab.reports.distillation`.
"""

import argparse
from pathlib import Path

from litlab import ROOT_DIR
from litlab.reports.distillation import report
from litlab.reports.results_page import write_results_page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="run or multirun folders (searched recursively)")
    parser.add_argument("--best", action="store_true", help="keep the best run of each kind (by val/acc_best)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--results-page", help="also write the table to docs/results/<this name>.md")
    args = parser.parse_args(argv)
    try:
        table = report(args.folders, best=args.best)
    except FileNotFoundError as err:
        parser.exit(1, f"{err}\n")
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    if args.results_page:
        kept = "the best run of each kind by val/acc_best" if args.best else "every run, seeds merged"
        intro = f"Teachers, students distilled from a teacher and students without one ({kept})."
        path = write_results_page(args.results_page, "Knowledge distillation", f"{intro}\n\n{table}")
        print(f"results page: {path.relative_to(ROOT_DIR)}")


if __name__ == "__main__":
    main()
