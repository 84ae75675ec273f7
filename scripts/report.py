"""Tabulates a sweep of runs: `python scripts/report.py logs/train/multiruns/<date> [--results-page NAME]`.

For classifier runs that wrote results.json (`callbacks=study`), writes report.md (the Markdown table, also
printed) and confusion_matrices.png into the sweep folder, and both to TensorBoard under <sweep>/report;
runs that differ only by their seed or fold share a row (mean ± standard deviation). When the sweep holds
several seeds (`python train.py -m experiment=X seed=1,2,3`), also writes seeds.md: every test metric (and
the optimized metric) as mean, standard deviation and each seed's value, for any model; for the folds of a
k-fold cross-validation (`data.folds=5 'data.fold=range(0,5)'`), the same table as folds.md. Runs of other
models without several seeds get the same table of their test metrics, printed. An Optuna sweep's
optimization_results.yaml is summarised too. With `--results-page NAME` the tables also go to
docs/results/NAME.md with the sweep's command, stamped with the command, commit and machine. Without a folder
it reports the newest one of logs/train/multiruns. A command line over `litlab.reports.study`,
`litlab.reports.seeds` and `litlab.reports.sweep`.
"""

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from litlab import ROOT_DIR
from litlab.reports.results_page import write_results_page
from litlab.reports.seeds import find_seed_runs, has_folds, seed_table, several_seeds, sweep_command
from litlab.reports.study import write_report

FOLDS_NOTE = (
    "Each row: a metric's mean and sample standard deviation over the folds, then each fold's value. `val/...` is "
    "the optimized metric on the fold held out for validation (the cross-validation score); `test/...` are the "
    "best checkpoint's scores on the test split, which every fold shares."
)


def run_commands(sweep_dir: Path, run_dirs: list[Path]) -> str:
    """Each run's folder and the command line that made it, from what Hydra saved in the folder."""
    lines = []
    for run_dir in run_dirs:
        hydra_config = (
            OmegaConf.load(run_dir / ".hydra" / "hydra.yaml") if (run_dir / ".hydra" / "hydra.yaml").is_file() else {}
        )
        entry = OmegaConf.select(hydra_config, "hydra.job.name", default="train")
        # Unresolved: a search's trial entry holds `${hydra:...}`, which only a running job can resolve.
        overrides = (
            OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"), resolve=False)
            if (run_dir / ".hydra" / "overrides.yaml").is_file()
            else []
        )
        command = " ".join(["python", f"{entry}.py", *map(str, overrides)])
        lines.append(f"- `{run_dir.relative_to(sweep_dir).as_posix() or '.'}`: `{command}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", nargs="?", type=Path, help="the multirun folder (default: the newest one)")
    parser.add_argument("--results-page", help="also write the tables to docs/results/<this name>.md")
    parser.add_argument("--title", help="the results page's title (default: the folder's name)")
    args = parser.parse_args(argv)
    sweep_dir = args.sweep_dir
    if sweep_dir is None:
        multiruns = sorted((ROOT_DIR / "logs" / "train" / "multiruns").glob("*/"), key=lambda p: p.stat().st_mtime)
        if not multiruns:
            parser.error("no sweep folder given and logs/train/multiruns is empty: pass the sweep folder.")
        sweep_dir = multiruns[-1]
    sections = []
    optuna_results = sweep_dir / "optimization_results.yaml"
    if optuna_results.is_file():
        from litlab.reports.sweep import results_markdown

        summary = results_markdown(OmegaConf.to_container(OmegaConf.load(optuna_results)))
        print(summary)
        sections.append(f"## The Optuna study\n\n{summary}")
    try:
        seed_runs = find_seed_runs(sweep_dir)
        if any(sweep_dir.rglob("results.json")):
            paths = write_report(sweep_dir)
            table = paths["table"].read_text()
            print(table)
            for kind, path in paths.items():
                print(f"{kind}: {path}")
            sections.append(f"## Test metrics of each model\n\n{table}")
    except (FileNotFoundError, ValueError) as err:
        if not sections:
            parser.exit(1, f"{err}\n")
        seed_runs = []
    if several_seeds(seed_runs):
        kind = "folds" if has_folds(seed_runs) else "seeds"
        table = seed_table(seed_runs)
        (sweep_dir / f"{kind}.md").write_text(table)
        print(f"\n{table}\n{kind}: {sweep_dir / f'{kind}.md'}")
        note = f"{FOLDS_NOTE}\n\n" if kind == "folds" else ""
        sections.append(f"## Every {kind[:-1]}\n\n{note}{table}")
    elif seed_runs and not sections:
        # runs of any model, one seed each (e.g. the GAN experiments side by side): their test metrics
        table = seed_table(seed_runs)
        print(table)
        sections.append(f"## Test metrics of each run\n\n{table}")
    if args.results_page:
        command = sweep_command(sweep_dir)
        if command:
            sections.insert(0, f"## The sweep\n\n`{command}`")
        if seed_runs:
            sections.append(f"## The runs\n\n{run_commands(sweep_dir, sorted(run.dir for run in seed_runs))}")
        path = write_results_page(
            args.results_page, args.title or sweep_dir.name, "\n\n".join(section.strip() for section in sections)
        )
        print(f"results page: {path.relative_to(ROOT_DIR)}")


if __name__ == "__main__":
    main()
