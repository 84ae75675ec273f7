"""One Optuna trial across DDP ranks: a real sweep whose trials train on two processes (trainer=ddp_sim)."""

import pytest

from litlab.callbacks.optuna_trial import PRUNED_ATTR, RANKS_ATTR
from tests.helpers.sweep import start_sweep, trials_by_state
from tests.integration.test_sweep_workers import PRUNED_SEARCH


@pytest.mark.slow
def test_a_trial_on_two_ddp_processes_is_one_trial_pruned_on_both(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    log = tmp_path / "sweep.log"
    sweep = start_sweep(
        [
            *PRUNED_SEARCH,  # lr 1e-5 is pruned after its first epoch, 3e-3 completes both
            "hydra/sweeper/sampler=grid",
            f"hydra.sweeper.storage={storage}",
            "trainer=ddp_sim",
            "trainer.devices=2",
            "logger=csv",
        ],
        tmp_path / "sweep",
        log,
    )
    assert sweep.wait(timeout=900) == 0, log.read_text()[-3000:]
    trials = trials_by_state(storage, "samplers_compare")
    assert {state: len(t) for state, t in trials.items()} == {"COMPLETE": 1, "PRUNED": 1}  # one trial per job
    for trial in trials["COMPLETE"] + trials["PRUNED"]:
        # each rank trained the model built with the trial's parameters
        assert trial.system_attrs[RANKS_ATTR] == [trial.params, trial.params]
    (pruned,) = trials["PRUNED"]
    assert pruned.params["model.optimizer.lr"] == pytest.approx(1e-5)
    # reported by rank 0 alone, once per epoch, and both ranks stopped after the first
    assert list(pruned.intermediate_values) == [0]
    assert pruned.system_attrs[PRUNED_ATTR] == "Trial was pruned at epoch 0."
    assert list(trials["COMPLETE"][0].intermediate_values) == [0, 1]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == ["0", "1"]
