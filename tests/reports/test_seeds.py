"""Several seeds: `python train.py -m ... seed=1,2` then scripts/report.py's seed table."""

import csv
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from litlab import ROOT_DIR
from litlab.reports.seeds import (
    SeedRun,
    find_seed_runs,
    format_mean_std,
    run_metrics,
    run_overrides,
    seed_table,
    several_seeds,
    sweep_command,
)
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


def test_seed_sweep_reports_mean_deviation_and_each_seed(tmp_path, monkeypatch, capsys):
    GlobalHydra.instance().clear()
    overrides = [*TEST_OVERRIDES, "logger=csv", "trainer.max_epochs=1", "callbacks.model_summary=null"]
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", *overrides, "seed=1,2,3", f"hydra.sweep.dir={tmp_path}"])
    run_entry("train.py")
    GlobalHydra.instance().clear()

    accuracies = {}
    for job in range(3):
        with open(tmp_path / str(job) / "csv" / "version_0" / "metrics.csv") as file:
            accuracies[job + 1] = next(float(r["test/acc"]) for r in csv.DictReader(file) if r.get("test/acc"))
    assert len(set(accuracies.values())) > 1  # the seed reached the runs

    report_script.main([str(tmp_path)])
    table = (tmp_path / "seeds.md").read_text()
    assert table in capsys.readouterr().out
    row = _row(table, tmp_path.name, "test/acc")  # one group: only the seed varies
    mean, std, *seeds = (float(cell) for cell in row[2:])
    assert seeds == pytest.approx([accuracies[s] for s in (1, 2, 3)], abs=5e-5)
    assert mean == pytest.approx(statistics.fmean(accuracies.values()), abs=5e-5)
    assert std == pytest.approx(statistics.stdev(accuracies.values()), abs=5e-5)
    assert {"test/loss", "test/f1", "test/precision", "test/recall"} <= {
        line.split("|")[2].strip() for line in table.splitlines()[2:]
    }


def _fake_study_run(run_dir: Path, experiment: str, seed: int, acc: float) -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save([f"experiment={experiment}", f"seed={seed}"], run_dir / ".hydra" / "overrides.yaml")
    OmegaConf.save({"seed": seed, "model": {"class_names": None}}, run_dir / ".hydra" / "config.yaml")
    results = {
        "metrics": {"test/acc": acc, "test/loss": 1 - acc},
        "params_trainable": 100,
        "epochs": 5,
        "fit_seconds": 60.0 * seed,
        "confusion_matrix": [[seed, 0], [0, seed]],
    }
    (run_dir / "results.json").write_text(json.dumps(results))


def test_study_report_merges_the_seeds_of_each_experiment(tmp_path):
    values = {"mlp": (0.90, 0.92, 0.97), "cnn": (0.98, 0.99, 0.99)}
    job = 0
    for seed in (1, 2, 3):
        for experiment, accs in values.items():
            _fake_study_run(tmp_path / str(job), experiment, seed, accs[seed - 1])
            job += 1
    runs = load_runs(tmp_path)
    assert [run["name"] for run in runs][:2] == ["mlp", "cnn"]
    table = markdown_table(runs)
    assert len(table.splitlines()) == 4  # header, rule, one row per experiment
    mlp = _row(table, "mlp (3 seeds)")
    assert mlp[3] == f"{statistics.fmean(values['mlp']):.4f} ± {statistics.stdev(values['mlp']):.4f}"
    assert mlp[8] == "2 min 00 s"  # the mean training time
    seeds = seed_table(find_seed_runs(tmp_path))
    assert _row(seeds, "cnn", "test/acc")[4:] == ["0.9800", "0.9900", "0.9900"]


def write_run(run_dir: Path, seed: int | None, fold: int | None, acc: float) -> None:
    """A finished run's folder as Hydra and the run_results callback leave it."""
    (run_dir / ".hydra").mkdir(parents=True)
    overrides = [f"seed={seed}", "data.folds=2", f"data.fold={fold}"]
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    config = {"seed": seed, "data": {"folds": 2, "fold": fold}, "optimized_metric": "val/acc_best"}
    OmegaConf.save(OmegaConf.create(config), run_dir / ".hydra" / "config.yaml")
    (run_dir / "results.json").write_text(json.dumps({"metrics": {"test/acc": acc}}))


def test_runs_are_ordered_by_seed_then_fold_seed_zero_first(tmp_path):
    # the folders' names (Hydra's job numbers) run the other way
    for number, (seed, fold) in enumerate([(1, 0), (1, 1), (0, 1), (0, 0)]):
        write_run(tmp_path / str(number), seed, fold, acc=0.5 + number / 10)
    runs = find_seed_runs(tmp_path)
    assert [(run.seed, run.fold) for run in runs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [run.label() for run in runs[:2]] == ["seed 0, fold 0", "seed 0, fold 1"]  # both, unless told otherwise
    assert runs[0].label(seed=False) == "fold 0"


def test_a_run_without_a_seed_comes_after_the_seeded_ones(tmp_path):
    write_run(tmp_path / "0", seed=None, fold=0, acc=0.5)
    write_run(tmp_path / "1", seed=7, fold=0, acc=0.6)
    assert [run.seed for run in find_seed_runs(tmp_path)] == [7, None]


def test_the_seed_tables_separator_has_a_cell_per_column(tmp_path):
    for number, seed in enumerate([1, 2, 3]):
        write_run(tmp_path / str(number), seed, fold=0, acc=0.5 + seed / 10)
    header, separator = seed_table(find_seed_runs(tmp_path)).splitlines()[:2]
    assert header.count("|") == separator.count("|") == 4 + 3 + 1  # run, metric, mean, std, a column per seed


def test_overrides_without_a_value_are_left_out_of_a_runs_overrides(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(["~logger", "+tags=[a]", "seed=3"]), tmp_path / ".hydra" / "overrides.yaml")
    assert run_overrides(tmp_path) == {"tags": "[a]", "seed": "3"}


def test_several_seeds_means_a_group_of_more_than_one_run():
    one_each = [SeedRun("a", 1, Path("a")), SeedRun("b", 1, Path("b"))]
    assert not several_seeds(one_each)
    assert several_seeds([*one_each, SeedRun("a", 2, Path("a2"))])


def test_a_run_without_a_fold_comes_after_the_folds_of_its_seed(tmp_path):
    write_run(tmp_path / "0", seed=1, fold=None, acc=0.5)
    write_run(tmp_path / "1", seed=1, fold=0, acc=0.6)
    assert [run.fold for run in find_seed_runs(tmp_path)] == [0, None]


def test_a_tested_run_adds_its_optimized_metric_and_no_other_logged_one(tmp_path):
    write_run(tmp_path, seed=1, fold=0, acc=0.5)  # results.json holds the test metrics
    with open(tmp_path / "metrics.csv", "w", newline="") as file:
        csv.writer(file).writerows([["epoch", "val/acc_best", "val/loss", "test/acc"], [0, 0.75, 0.3, 0.1]])
    assert run_metrics(tmp_path, "val/acc_best") == {"test/acc": 0.5, "val/acc_best": 0.75}


def test_the_sweeps_command_keeps_every_hydra_override_but_the_multirun_mode(tmp_path):
    multirun = {
        "hydra": {
            "job": {"name": "train"},
            "overrides": {
                "task": ["seed=1,2"],
                "hydra": ["hydra.mode=MULTIRUN", "hydra.job.chdir=false", "hydra.sweep.dir=logs/x"],
            },
        }
    }
    OmegaConf.save(OmegaConf.create(multirun), tmp_path / "multirun.yaml")
    assert sweep_command(tmp_path) == "python train.py -m seed=1,2 hydra.job.chdir=false hydra.sweep.dir=logs/x"


def test_an_override_whose_value_holds_an_equals_sign_keeps_it(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(["hydra.run.dir=logs/a=b"]), tmp_path / ".hydra" / "overrides.yaml")
    assert run_overrides(tmp_path) == {"hydra.run.dir": "logs/a=b"}


def test_two_values_have_a_standard_deviation_and_one_has_none():
    assert format_mean_std([1.0, 3.0]) == "2.0000 ± 1.4142"
    assert format_mean_std([2.0]) == "2.0000"
