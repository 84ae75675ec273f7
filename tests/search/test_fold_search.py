"""A search that scores each trial by the mean over k folds: `hydra.sweeper.folds=K`."""

import importlib.util
import statistics

import pandas as pd
import pytest
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.litlab_optuna_sweeper.sweeper import LitlabOptunaSweeper
from litlab import ROOT_DIR
from litlab.reports.seeds import logged_metrics
from litlab.search.worker import fold_outcome
from tests.helpers.sweep import run_sweep

spec = importlib.util.spec_from_file_location("report_script", ROOT_DIR / "scripts" / "report.py")
report_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report_script)


def _val_acc_best(run_dir) -> float:
    return logged_metrics(run_dir, lambda name: name == "val/acc_best")["val/acc_best"]


def test_each_trial_is_the_mean_of_its_folds_and_the_pruner_watches_the_first(tmp_path, monkeypatch, capsys):
    # Grid over two learning rates: 1e-6 leaves the seeded network at chance and the threshold prunes it in
    # its first fold; 3e-3 learns, and both its folds run.
    run_sweep(
        [
            "hparams_search=samplers_compare",
            "hydra/sweeper/sampler=grid",
            "model.optimizer.lr=choice(0.000001,0.003)",
            "model/optimizer=adam",
            "model.net.dropout=0.0",
            "hydra.sweeper.folds=2",
            "hydra.sweeper.timeout=null",
            "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.3}",
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=5",
        ],
        tmp_path,
        monkeypatch,
    )
    trials = pd.read_csv(tmp_path / "trials.csv").set_index("params_model.optimizer.lr")
    pruned, complete = trials.loc[1e-6], trials.loc[3e-3]
    assert (pruned.state, complete.state) == ("PRUNED", "COMPLETE")
    assert sorted(p.name for p in (tmp_path / str(pruned.number)).iterdir()) == ["fold_0"]

    folds = [tmp_path / str(complete.number) / f"fold_{fold}" for fold in range(2)]
    values = [_val_acc_best(folder) for folder in folds]
    assert complete.value == pytest.approx(statistics.fmean(values))
    assert [v[0] for v in eval(complete.user_attrs_fold_values)] == pytest.approx(values)
    for fold, folder in enumerate(folds):
        config = OmegaConf.load(folder / ".hydra" / "config.yaml")
        assert (config.data.folds, config.data.fold) == (2, fold)
        # only the first fold reports to the trial (its run carries the trial callback)
        assert ("optuna_trial" in config.callbacks) == (fold == 0)

    # report.py pools each trial's folds: its row's mean is the trial's value.
    report_script.main([str(tmp_path)])
    table = (tmp_path / "folds.md").read_text()
    row = next(line for line in table.splitlines() if "model.optimizer.lr=0.003" in line and "val/acc_best" in line)
    assert float(row.split("|")[3]) == pytest.approx(complete.value, abs=5e-5)


def test_fold_outcome_is_the_mean_or_the_first_fold_that_did_not_complete():
    done = TrialState.COMPLETE
    assert fold_outcome([(done, [0.5, 2.0], ""), (done, [0.7, 4.0], "")]) == (done, [pytest.approx(0.6), 3.0], "")
    pruned = fold_outcome([(TrialState.PRUNED, None, "Trial was pruned at epoch 0.")])
    assert pruned == (TrialState.PRUNED, None, "fold 0: Trial was pruned at epoch 0.")
    failed = fold_outcome([(done, [0.5], ""), (TrialState.FAIL, None, "ValueError: bad")])
    assert failed == (TrialState.FAIL, None, "fold 1: ValueError: bad")


@pytest.mark.parametrize("folds", [1, 0, True, 2.5])
def test_sweeper_refuses_fewer_than_two_folds(folds):
    settings = {
        "sampler": None,
        "direction": "maximize",
        "storage": None,
        "study_name": "unit",
        "n_trials": 4,
        "n_jobs": 1,
        "max_failure_rate": 0.0,
        "custom_search_space": None,
        "params": None,
    }
    with pytest.raises(CompactHydraException, match=rf"hydra\.sweeper\.folds must be null or 2 or more, got {folds}\."):
        LitlabOptunaSweeper(**settings, folds=folds)
