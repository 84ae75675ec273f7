"""k-fold cross-validation end to end: `python train.py -m data.folds=3 'data.fold=range(0,3)'`, then report.py."""

import csv
import importlib.util
import json
import statistics
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from litlab import ROOT_DIR
from litlab.reports import results_page
from litlab.reports.results_page import read_stamp
from litlab.reports.seeds import find_seed_runs, replicates, seed_table
from litlab.reports.study import load_runs, markdown_table
from tests.helpers.config import TEST_OVERRIDES, run_entry

spec = importlib.util.spec_from_file_location("report_script", ROOT_DIR / "scripts" / "report.py")
report_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report_script)


def _row(table: str, *cells: str) -> list[str]:
    for line in table.splitlines():
        parts = [part.strip() for part in line.strip("|").split("|")]
        if parts[: len(cells)] == list(cells):
            return parts
    raise AssertionError(f"no row {cells} in\n{table}")


def _last(metrics_csv, name: str) -> float:
    with open(metrics_csv) as file:
        return [float(row[name]) for row in csv.DictReader(file) if row.get(name)][-1]


def test_fold_sweep_reports_mean_and_deviation_over_folds(tmp_path, monkeypatch, capsys):
    GlobalHydra.instance().clear()
    overrides = [
        *TEST_OVERRIDES,
        "logger=csv",
        "trainer.max_epochs=1",
        "callbacks.model_summary=null",
        "data.folds=3",
        "data.fold=range(0,3)",
        f"hydra.sweep.dir={tmp_path}",
    ]
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *overrides])
    run_entry("train.py")
    GlobalHydra.instance().clear()

    files = [tmp_path / str(job) / "csv" / "version_0" / "metrics.csv" for job in range(3)]
    test_acc = [_last(f, "test/acc") for f in files]
    val_best = [_last(f, "val/acc_best") for f in files]
    assert len(set(val_best)) > 1  # each fold validated on other images

    repo = tmp_path / "repo"  # the results page goes to repo/docs/results, not into this checkout's docs
    monkeypatch.setattr(report_script, "ROOT_DIR", repo)
    monkeypatch.setattr(results_page, "RESULTS_DIR", repo / "docs" / "results")
    args = [str(tmp_path), "--results-page", "kfold", "--title", "Three folds"]
    monkeypatch.setattr(sys, "argv", [str(ROOT_DIR / "scripts" / "report.py"), *args])
    report_script.main(args)
    out = capsys.readouterr().out
    table = (tmp_path / "folds.md").read_text()
    assert table in out and f"folds: {tmp_path / 'folds.md'}" in out
    assert not (tmp_path / "seeds.md").exists()
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    assert header[4:] == ["fold 0", "fold 1", "fold 2"]
    for metric, values in (("test/acc", test_acc), ("val/acc_best", val_best)):
        row = _row(table, tmp_path.name, metric)  # one group: the folds are pooled, not told apart
        mean, std, *each = (float(cell) for cell in row[2:])
        assert each == pytest.approx(values, abs=5e-5)
        assert mean == pytest.approx(statistics.fmean(values), abs=5e-5)
        assert std == pytest.approx(statistics.stdev(values), abs=5e-5)
    # the cross-validation score (the optimized metric) comes first
    assert table.splitlines()[2].split("|")[2].strip() == "val/acc_best"
    assert replicates([(run.seed, run.fold) for run in find_seed_runs(tmp_path)]) == "3 folds"

    # The page for docs/results: the sweep's own command, the table, and what made the page.
    page = (repo / "docs" / "results" / "kfold.md").read_text()
    assert "results page: docs/results/kfold.md" in out
    assert page.startswith("# Three folds\n") and "## Every fold\n" in page
    sweep = page.split("## The sweep", 1)[1].split("##", 1)[0]
    assert "python train.py -m " in sweep and "data.folds=3 'data.fold=range(0,3)'" in sweep
    assert f"hydra.sweep.dir={tmp_path}" in sweep and "hydra.mode" not in sweep
    assert table.strip() in page
    stamp = read_stamp(repo / "docs" / "results" / "kfold.md")
    assert stamp.command.endswith(f"python scripts/report.py {tmp_path} --results-page kfold --title 'Three folds'")


def test_folds_and_seeds_of_a_group_are_pooled():
    assert replicates([(1, None), (2, None)]) == "2 seeds"
    assert replicates([(1, 0), (1, 1), (1, 2)]) == "3 folds"
    assert replicates([(1, 0), (1, 1), (2, 0), (2, 1)]) == "2 seeds x 2 folds"


def _fake_run(run_dir, seed: int, fold: int, lr: str, acc: float) -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    overrides = [f"seed={seed}", f"data.fold={fold}", "data.folds=2", f"model.optimizer.lr={lr}"]
    OmegaConf.save(overrides, run_dir / ".hydra" / "overrides.yaml")
    config = {"seed": seed, "data": {"folds": 2, "fold": fold}, "model": {"class_names": None}}
    OmegaConf.save(config, run_dir / ".hydra" / "config.yaml")
    results = {"metrics": {"test/acc": acc}, "params_trainable": 10, "confusion_matrix": [[1, 0], [0, 1]]}
    (run_dir / "results.json").write_text(json.dumps(results))


def test_seeds_times_folds_pool_into_one_row_per_setting(tmp_path):
    accs = {}
    job = 0
    for lr in ("0.1", "0.01"):
        for seed in (1, 2):
            for fold in (0, 1):
                accs[lr, seed, fold] = 0.5 + job / 100
                _fake_run(tmp_path / str(job), seed, fold, lr, accs[lr, seed, fold])
                job += 1
    table = seed_table(find_seed_runs(tmp_path))
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    assert header[4:] == ["seed 1, fold 0", "seed 1, fold 1", "seed 2, fold 0", "seed 2, fold 1"]
    for lr in ("0.1", "0.01"):
        values = [accs[lr, seed, fold] for seed in (1, 2) for fold in (0, 1)]
        row = _row(table, f"model.optimizer.lr={lr}", "test/acc")
        assert row[2:4] == [f"{statistics.fmean(values):.4f}", f"{statistics.stdev(values):.4f}"]
        assert row[4:] == [f"{v:.4f}" for v in values]
    study = markdown_table(load_runs(tmp_path))
    values = [accs["0.1", seed, fold] for seed in (1, 2) for fold in (0, 1)]
    row = _row(study, "model.optimizer.lr=0.1 (2 seeds x 2 folds)")
    assert row[3] == f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
