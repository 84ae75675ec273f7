"""What a run shows in TensorBoard's HParams tab (litlab.utils.hparams): the hyperparameters runs are compared by,
what a callback adds to them, and the tab's columns as TensorBoard reads them back from the event file."""

from types import SimpleNamespace

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import OmegaConf

from litlab.utils.hparams import comparable_hparams, log_hyperparameters

CFG = OmegaConf.create(
    {
        "model": {
            "_target_": "litlab.models.classifier.Classifier",
            "net": {"_target_": "litlab.models.nets.MLP", "dropout": 0.1},
            "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.01},
            "compile": True,
            "class_names": ["zero", "one"],
            "grid_images": 8,
            "samples_per_class": 4,
            "projector_words": 100,
        },
        "data": {"_target_": "litlab.data.Digits", "batch_size": 32, "data_dir": "/data", "num_workers": 4},
        "trainer": {"max_epochs": 3, "precision": "32-true", "accelerator": "cpu"},
        "seed": 7,
        "optimized_metric": "val/f1",
        "paths": {"output_dir": "/runs/1"},
    }
)

COMPARED = {
    "model/_target_": "litlab.models.classifier.Classifier",
    "model/net/_target_": "litlab.models.nets.MLP",
    "model/net/dropout": 0.1,
    "model/optimizer/_target_": "torch.optim.Adam",
    "model/optimizer/_partial_": True,  # skipped in the model's own keys only
    "model/optimizer/lr": 0.01,
    "data/_target_": "litlab.data.Digits",
    "data/batch_size": 32,
    "trainer/max_epochs": 3,
    "trainer/precision": "32-true",
    "seed": 7,
}


def test_runs_are_compared_by_model_data_epochs_precision_and_seed_not_by_where_or_how_fast():
    assert comparable_hparams(CFG) == COMPARED
    assert comparable_hparams(CFG, {"optuna/lr": 0.02}) == {**COMPARED, "optuna/lr": 0.02}


class Recorder:
    """A logger that keeps what it was given."""

    def __init__(self) -> None:
        self.logged = []

    def log_hyperparams(self, params) -> None:
        self.logged.append(params)


class Trial:
    """A callback that knows what sets its run apart, as the sweep's trial callback does."""

    def comparable_hparams(self):
        return {"optuna/trial": 4, "optuna/model.optimizer.lr": 0.02}, ("val/f1", "val/loss")


def hparams_tab(log_dir) -> tuple[list[tuple[str, bool]], list[str]]:
    """The HParams experiment written to the event file: its parameters in order, each with whether it is marked
    as differing between runs, and its metrics."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(log_dir))
    events.Reload()
    content = events.SummaryMetadata("_hparams_/experiment").plugin_data.content
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    return [(info.name, info.differs) for info in experiment.hparam_infos], [
        m.name.tag for m in experiment.metric_infos
    ]


def test_the_hparams_tab_leads_with_what_a_callback_sets_apart_and_names_the_metrics(tmp_path):
    tensorboard = TensorBoardLogger(tmp_path, name="", version="", default_hp_metric=False)
    recorder = Recorder()
    trainer = SimpleNamespace(logger=tensorboard, loggers=[tensorboard, recorder])
    log_hyperparameters({"cfg": CFG, "trainer": trainer, "callbacks": [object(), Trial()]})
    tensorboard.experiment.flush()
    searched = {"optuna/trial": 4, "optuna/model.optimizer.lr": 0.02}
    assert recorder.logged == [{**COMPARED, **searched}]
    columns, metrics = hparams_tab(tmp_path)
    assert columns[:2] == [("optuna/trial", True), ("optuna/model.optimizer.lr", True)]
    assert sorted(columns[2:]) == sorted((name, False) for name in COMPARED)
    # the run's optimized metric, the headline ones, then the callback's (each once)
    assert metrics == ["val/f1", "val/loss", "val/acc", "test/loss", "test/acc"]


def test_hyperparameters_are_logged_by_rank_zero_alone(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    log_hyperparameters({"cfg": CFG, "trainer": SimpleNamespace(logger=recorder, loggers=[recorder])})
    assert recorder.logged == []
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    log_hyperparameters({"cfg": CFG, "trainer": SimpleNamespace(logger=recorder, loggers=[recorder])})
    assert recorder.logged == [COMPARED]


def test_a_run_without_a_logger_is_told_its_hyperparameters_are_not_logged(caplog):
    with caplog.at_level("WARNING"):
        log_hyperparameters({"cfg": CFG, "trainer": SimpleNamespace(logger=None, loggers=[])})
    assert "No logger is configured: hyperparameters are not logged." in caplog.text


@pytest.mark.parametrize("leading", [[], ["seed"]])
def test_without_a_sweep_the_tab_marks_nothing_as_searched_but_what_it_is_told(tmp_path, leading):
    from litlab.utils.hparams import write_hparams_summary

    tensorboard = TensorBoardLogger(tmp_path, name="", version="", default_hp_metric=False)
    write_hparams_summary(tensorboard, COMPARED, ["val/acc"], leading)
    tensorboard.experiment.flush()
    columns, metrics = hparams_tab(tmp_path)
    assert columns[: len(leading)] == [(name, True) for name in leading]
    assert sorted(columns[len(leading) :]) == sorted((name, False) for name in COMPARED if name not in leading)
    assert metrics == ["val/acc"]
