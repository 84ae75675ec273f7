"""scripts/compare_samplers.py on an epoch budget: every sampler is held to the same number of training epochs."""

import optuna
import pytest

from litlab.reports.samplers import progress
from scripts.compare_samplers import main
from tests.helpers.config import TEST_OVERRIDES
from tests.helpers.sweep import FAST_TRIAL


def finished_study() -> optuna.Study:
    """Trials finishing in this order: 3 epochs (0.5), pruned after 1, 3 epochs (0.8), 3 epochs (0.9)."""
    study = optuna.create_study(direction="maximize")
    for epochs, value in [(3, 0.5), (1, None), (3, 0.8), (3, 0.9)]:
        trial = study.ask()
        for epoch in range(epochs):
            trial.report(value or 0.1, epoch)
        study.tell(trial, value, state=optuna.trial.TrialState.PRUNED if value is None else None)
    return study


def test_progress_counts_only_the_trials_that_fit_in_the_epoch_budget():
    study = finished_study()
    whole = progress(study)
    assert whole.epochs.tolist() == [3, 4, 7, 10] and whole.best.iloc[-1] == 0.9
    # 7 epochs hold the first three trials; the fourth would take the total to 10
    held = progress(study, epoch_budget=7)
    assert held.epochs.tolist() == [3, 4, 7] and held.best.iloc[-1] == 0.8
    assert held.state.tolist() == ["COMPLETE", "PRUNED", "COMPLETE"]
    # trials that finished after the sweep was stopped do not count either
    assert progress(study, counted={0, 1}).epochs.tolist() == [3, 4]


def test_a_budget_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--epochs", "0", "--out", str(tmp_path)])
    assert "the budget must be positive" in capsys.readouterr().err


@pytest.mark.slow
def test_an_epoch_budget_stops_each_sampler_at_the_same_epochs(tmp_path):
    one_epoch_trials = [*FAST_TRIAL[len(TEST_OVERRIDES) :], "trainer.max_epochs=1", "+trainer.limit_train_batches=3"]
    table = main(
        ["--epochs", "3", "--poll", "0.5", "--samplers", "random", "tpe_hyperband", "--out", str(tmp_path)]
        + ["--", *one_epoch_trials]
    )
    assert table.sampler.tolist() == ["random", "tpe_hyperband"]
    # one-epoch trials: exactly three of them fit in three epochs, whatever the machine's load
    assert table.epochs_spent.tolist() == [3, 3]
    assert (table.trials_finished + table.trials_pruned).tolist() == [3, 3]
    assert (table.best_value > 0.1).all()
    assert (tmp_path / "samplers_compare.png").stat().st_size > 10_000
