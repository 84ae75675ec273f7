"""One Optuna trial across DDP ranks (litlab.callbacks.optuna_trial), rank by rank in one process."""

from types import SimpleNamespace

import optuna
import pytest
import torch
from omegaconf import OmegaConf
from optuna.distributions import FloatDistribution

from litlab.callbacks import optuna_trial
from litlab.callbacks.optuna_trial import PRUNED_ATTR, RANKS_ATTR, OptunaTrialCallback, pruned_by_ranks, spawn_ranks


class Ranks:
    """Two ranks' trainers whose `broadcast` hands every rank what rank 0 sent, as DDP's does."""

    def __init__(self, metric: float, epoch: int = 0):
        self.sent = []
        self.trainers = [self._trainer(rank, metric) for rank in range(2)]
        self.module = SimpleNamespace(current_epoch=epoch, hparams={"optimizer": {"lr": 0.01}})

    def _trainer(self, rank: int, metric: float) -> SimpleNamespace:
        def broadcast(value):
            if rank == 0:
                self.sent.append(value)
            return self.sent[-1]

        return SimpleNamespace(
            world_size=2,
            is_global_zero=rank == 0,
            sanity_checking=False,
            should_stop=False,
            callback_metrics={"val/acc": torch.tensor(metric)},
            strategy=SimpleNamespace(broadcast=broadcast),
            datamodule=None,
        )


@pytest.fixture
def trial_callbacks():
    """The trial's callback as each of two ranks holds it (a copy per process), on one study."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="ddp", storage=storage, direction="maximize")
    trial = study.ask({"model.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)})
    pruner = optuna.pruners.ThresholdPruner(lower=0.5)
    callbacks = [OptunaTrialCallback("ddp", trial.number, "val/acc", storage=storage, pruner=pruner) for _ in range(2)]
    return study, trial, callbacks


def start(callbacks, ranks: Ranks, monkeypatch, seen_by_rank) -> None:
    def all_gather_object(out, obj):
        out[:] = seen_by_rank(obj)

    monkeypatch.setattr(optuna_trial.dist, "all_gather_object", all_gather_object)
    for callback, trainer in zip(callbacks, ranks.trainers, strict=True):
        callback.on_fit_start(trainer, ranks.module)


def test_rank_zero_alone_reports_and_every_rank_stops_when_pruned(trial_callbacks, monkeypatch):
    study, trial, callbacks = trial_callbacks
    going_on = Ranks(metric=0.75, epoch=0)
    # each rank's values arrive unpickled: equal, never the same object
    start(callbacks, going_on, monkeypatch, lambda seen: [seen, dict(seen)])
    for callback, trainer in zip(callbacks, going_on.trainers, strict=True):
        callback.on_validation_end(trainer, going_on.module)
    assert not any(t.should_stop for t in going_on.trainers)
    low = Ranks(metric=0.25, epoch=1)
    for callback, trainer in zip(callbacks, low.trainers, strict=True):
        callback.on_validation_end(trainer, low.module)  # no exception: the ranks stop together
    assert all(t.should_stop for t in low.trainers)
    frozen = study.trials[trial.number]
    assert frozen.intermediate_values == {0: 0.75, 1: 0.25}  # one report per epoch, from rank 0
    assert pruned_by_ranks(study._storage, trial._trial_id) == "Trial was pruned at epoch 1."
    # what each rank's model was built with, looked up in its hyperparameters
    assert frozen.system_attrs[RANKS_ATTR] == [{"model.optimizer.lr": 0.01}, {"model.optimizer.lr": 0.01}]


def test_ranks_that_train_with_different_parameters_are_refused(trial_callbacks, monkeypatch):
    study, trial, callbacks = trial_callbacks
    ranks = Ranks(metric=0.75)
    ranks.module.hparams = {"optimizer": {"lr": trial.params["model.optimizer.lr"]}}
    refused = r"The 2 DDP ranks of trial 0 train with different parameters .*trainer\.strategy=ddp_spawn"
    with pytest.raises(RuntimeError, match=refused):
        start(callbacks, ranks, monkeypatch, lambda seen: [seen, {"model.optimizer.lr": 0.5}])
    assert study.trials[0].system_attrs[RANKS_ATTR][0] == {"model.optimizer.lr": trial.params["model.optimizer.lr"]}


def test_a_single_process_trial_is_not_marked(trial_callbacks):
    study, trial, callbacks = trial_callbacks
    ranks = Ranks(metric=0.25)
    trainer = ranks.trainers[0]
    trainer.world_size = 1
    callbacks[0].on_fit_start(trainer, ranks.module)
    with pytest.raises(optuna.TrialPruned):
        callbacks[0].on_validation_end(trainer, ranks.module)
    assert pruned_by_ranks(study._storage, trial._trial_id) is None and PRUNED_ATTR not in study.trials[0].system_attrs


@pytest.mark.parametrize(
    "strategy, spawned",
    [
        ("ddp", "ddp_spawn"),
        ("ddp_find_unused_parameters_true", "ddp_spawn_find_unused_parameters_true"),
        ("ddp_spawn", "ddp_spawn"),
        ("auto", "auto"),
        (
            {"_target_": "lightning.pytorch.strategies.DDPStrategy"},
            {"_target_": "lightning.pytorch.strategies.DDPStrategy"},
        ),
    ],
)
def test_a_trial_hands_its_ranks_its_model_through_the_spawn_launcher(strategy, spawned):
    config = OmegaConf.create({"trainer": {"strategy": strategy, "devices": 2}})
    spawn_ranks(config)
    assert OmegaConf.to_container(config.trainer)["strategy"] == spawned


class WriteSpy:
    """A storage that records the trial attributes written through it, and passes everything on."""

    def __init__(self, storage):
        self._storage, self.written = storage, []

    def set_trial_system_attr(self, trial_id, key, value):
        self.written.append(key)
        self._storage.set_trial_system_attr(trial_id, key, value)

    def __getattr__(self, name):
        return getattr(self._storage, name)


def test_rank_zero_alone_writes_to_the_study(trial_callbacks, monkeypatch):
    study, trial, callbacks = trial_callbacks
    spies = [WriteSpy(callback.trial.storage) for callback in callbacks]
    for callback, spy in zip(callbacks, spies, strict=True):
        monkeypatch.setattr(callback.trial, "storage", spy)
    low = Ranks(metric=0.25, epoch=0)
    start(callbacks, low, monkeypatch, lambda seen: [seen, dict(seen)])
    for callback, trainer in zip(callbacks, low.trainers, strict=True):
        callback.on_validation_end(trainer, low.module)
    assert all(t.should_stop for t in low.trainers)
    assert spies[0].written == [RANKS_ATTR, PRUNED_ATTR] and spies[1].written == []


@pytest.mark.parametrize("sanity_checking, metric", [(True, "val/acc"), (False, "val/other")])
def test_ranks_report_nothing_while_sanity_checking_or_without_the_metric(
    trial_callbacks, monkeypatch, sanity_checking, metric
):
    study, trial, callbacks = trial_callbacks
    ranks = Ranks(metric=0.25)
    start(callbacks, ranks, monkeypatch, lambda seen: [seen, dict(seen)])
    for callback, trainer in zip(callbacks, ranks.trainers, strict=True):
        trainer.sanity_checking = sanity_checking
        trainer.callback_metrics = {metric: torch.tensor(0.25)}
        callback.on_validation_end(trainer, ranks.module)
    assert study.trials[trial.number].intermediate_values == {} and not any(t.should_stop for t in ranks.trainers)
    assert ranks.sent == []  # no rank waited for a broadcast


def test_a_parameter_missing_from_a_parts_hyperparameters_is_none():
    sources = {"model": {"optimizer": {"lr": 0.01}, "net": None}, "data": None}
    assert optuna_trial._lookup(sources, "model.optimizer.lr") == 0.01
    assert optuna_trial._lookup(sources, "model.optimizer.momentum") is None  # a key it lacks
    assert optuna_trial._lookup(sources, "model.net.width") is None  # a part that is no mapping
    assert optuna_trial._lookup(sources, "data.batch_size") is None  # a datamodule without hyperparameters
