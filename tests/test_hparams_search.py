"""Optuna sweeps through Hydra's multirun: search spaces, pruning, time budget, failures, reports, storage."""

import math
import time

import optuna
import pandas as pd
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from hydra_plugins.litlab_optuna_sweeper.sweeper import trial_outcome
from litlab.search.spaces import cnn_layers
from litlab.search.trial import LiveTrial
from tests.helpers.sweep import run_sweep


def test_cnn_space_searches_widths_of_existing_layers_only():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_conv, seen_dense = set(), set()
    for _ in range(30):
        trial = study.ask()
        overrides = cnn_layers(None, trial, max_conv_layers=4, max_dense_layers=3, max_filters=64, max_units=64)
        conv, dense = overrides["model.net.conv_channels"], overrides["model.net.dense_units"]
        assert len(conv) == trial.params["conv_layers"] and 1 <= len(conv) <= 4
        assert len(dense) == trial.params["dense_layers"] and 1 <= len(dense) <= 3
        assert all(8 <= w <= 64 for w in conv + dense)
        # a width is a parameter exactly when its layer exists
        assert {k for k in trial.params if k.startswith("conv") and k != "conv_layers"} == {
            f"conv{i}_filters" for i in range(1, len(conv) + 1)
        }
        seen_conv.add(len(conv))
        seen_dense.add(len(dense))
        study.tell(trial, 0.0)
    assert seen_conv == {1, 2, 3, 4} and seen_dense == {1, 2, 3}


def job_return(status: JobStatus, value) -> JobReturn:
    ret = JobReturn(overrides=["a=1"], status=status)
    ret.return_value = value
    return ret


def test_trial_outcome_tells_complete_pruned_and_failed_apart():
    trial = optuna.create_study().ask()
    assert trial_outcome(job_return(JobStatus.COMPLETED, 0.9), LiveTrial(trial), 1) == (
        TrialState.COMPLETE,
        [0.9],
        "",
    )
    state, values, reason = trial_outcome(job_return(JobStatus.COMPLETED, math.nan), LiveTrial(trial), 1)
    assert state == TrialState.FAIL and values is None and "not finite" in reason
    state, _, reason = trial_outcome(job_return(JobStatus.FAILED, ValueError("bad layer")), LiveTrial(trial), 1)
    assert state == TrialState.FAIL and reason == "ValueError: bad layer"
    state, _, _ = trial_outcome(job_return(JobStatus.COMPLETED, None), LiveTrial(trial), 1)
    assert state == TrialState.FAIL
    pruned = LiveTrial(trial, pruned_at_epoch=1)
    assert trial_outcome(job_return(JobStatus.FAILED, optuna.TrialPruned("x")), pruned, 1)[0] == TrialState.PRUNED


def hparams_of_run(run_dir) -> dict:
    """The hyperparameters a TensorBoard run shows in its HParams tab."""
    events = EventAccumulator(str(next(run_dir.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in info.hparams.items()}


def test_sweep_prunes_fails_crashes_goes_on_and_reports(tmp_path, monkeypatch):
    # Grid over 2 learning rates x 2 activations: the bogus activation crashes, the tiny learning rate is
    # pruned by the threshold after its first epoch, the good one completes.
    run_sweep(
        [
            "hparams_search=samplers_compare",
            "hydra/sweeper/sampler=grid",
            "model.optimizer.lr=choice(0.00001,0.003)",
            "model.net.activation=choice(relu,bogus)",
            "model.net.dropout=0.0",
            "hydra.sweeper.max_failure_rate=0.5",
            "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.3}",
            "model.optimizer.name=adam",
            "trainer.max_epochs=2",
            "+trainer.limit_train_batches=10",
        ],
        tmp_path,
        monkeypatch,
    )
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 4
    by_state = trials.groupby("state")
    assert by_state.size().to_dict() == {"COMPLETE": 1, "FAIL": 2, "PRUNED": 1}
    failed = trials[trials.state == "FAIL"]
    assert (failed["params_model.net.activation"] == "bogus").all()
    assert failed.user_attrs_fail_reason.str.contains("Unknown activation 'bogus'").all()
    pruned = trials[trials.state == "PRUNED"].iloc[0]
    assert pruned["params_model.optimizer.lr"] == pytest.approx(1e-5)

    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": 1, "pruned": 1, "fail": 2}
    assert results["best_params"]["model.optimizer.lr"] == pytest.approx(0.003)
    assert results["best_value"] > 0.3
    for plot in ("optimization_history.png", "intermediate_values.png"):
        assert (tmp_path / plot).stat().st_size > 10_000

    best = results["best_trial"]
    hparams = hparams_of_run(tmp_path / str(best) / "tensorboard")
    assert hparams["optuna/trial"] == best
    assert hparams["optuna/model.optimizer.lr"] == pytest.approx(0.003)


def test_timeout_stops_an_uncapped_sweep(tmp_path, monkeypatch):
    start = time.monotonic()
    run_sweep(
        [
            "hparams_search=samplers_compare",
            "hydra/sweeper/sampler=random",
            "hydra.sweeper.n_trials=null",
            "hydra.sweeper.timeout=1",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
        ],
        tmp_path,
        monkeypatch,
    )
    trials = pd.read_csv(tmp_path / "trials.csv")
    # the first trial outlasts the 1-second budget, so no second one starts
    assert trials.state.tolist() == ["COMPLETE"]
    assert time.monotonic() - start < 300
