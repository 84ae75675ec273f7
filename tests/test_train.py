import math

import pytest
import torch
import yaml

from litlab.checkpoints.load import CheckpointError
from litlab.eval import evaluate
from litlab.train import train
from tests.helpers.config import eval_config, train_config


def test_default_experiment_learns_digits(tmp_path):
    cfg = train_config(["trainer.max_epochs=3", "logger=csv"], tmp_path)
    metrics, _ = train(cfg)
    assert metrics["test/acc"] > 0.9  # ten classes: chance is 0.1
    assert metrics["train/loss"] < 1.0


def test_train_then_eval_from_checkpoint_alone(tmp_path, mnist_root):
    cfg = train_config(
        ["experiment=mnist_mlp", f"paths.data_dir={mnist_root}", "data.download=false", "trainer.max_epochs=3"],
        tmp_path / "train",
    )
    metrics, objects = train(cfg)
    best = objects["trainer"].checkpoint_callback.best_model_path
    assert best and metrics["test/acc"] > 0.5
    # Nothing but the checkpoint: the model and the datamodule are rebuilt from what it saved.
    eval_metrics, _ = evaluate(eval_config([f"ckpt_path={best}"], tmp_path / "eval"))
    assert math.isclose(eval_metrics["test/acc"], metrics["test/acc"], abs_tol=1e-6)
    hparams = torch.load(best, weights_only=True)["hyper_parameters"]
    assert hparams["net"]["_target_"] == "litlab.models.nets.MLP"


def test_eval_refuses_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist: pass ckpt_path"):
        evaluate(eval_config([f"ckpt_path={tmp_path / 'nope.ckpt'}"], tmp_path))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch checkpoint"):
        evaluate(eval_config([f"ckpt_path={bad}"], tmp_path))


def test_tensorboard_gets_curves_confusion_matrices_and_hparams(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = train_config(["trainer.max_epochs=2"], tmp_path)
    _, objects = train(cfg)
    events = EventAccumulator(objects["trainer"].logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/acc", "val/acc", "val/f1", "val/acc_best", "test/acc"} <= set(tags["scalars"])
    assert {"val/confusion_matrix", "test/confusion_matrix"} <= set(tags["images"])
    assert len(events.Images("val/confusion_matrix")) == 2  # one per epoch, none from the sanity check
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # the HParams tab lists this run
    assert events.Scalars("model/params_trainable")[0].value == sum(
        p.numel() for p in objects["model"].parameters() if p.requires_grad
    )


def test_hparams_tab_shows_what_runs_are_compared_by(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg = train_config(["trainer.max_epochs=1", "model.optimizer.lr=0.0042", "seed=3", "data.batch_size=32"], tmp_path)
    train(cfg)
    events = EventAccumulator(str(tmp_path / "tensorboard" / "version_0"))
    events.Reload()

    def plugin_data(tag: str) -> plugin_data_pb2.HParamsPluginData:
        return plugin_data_pb2.HParamsPluginData.FromString(events.SummaryMetadata(tag).plugin_data.content)

    start = plugin_data("_hparams_/session_start_info").session_start_info
    hparams = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    assert hparams["model/optimizer/lr"] == pytest.approx(0.0042)
    assert hparams["seed"] == 3 and hparams["data/batch_size"] == 32
    assert hparams["model/_target_"] == "litlab.models.ImageClassifier"
    assert hparams["model/net/_target_"] == "litlab.models.nets.CNN" and hparams["model/net/dropout"] == 0.2
    assert hparams["model/scheduler/_target_"] == "torch.optim.lr_scheduler.CosineAnnealingLR"
    assert hparams["model/optimizer/_target_"] == "torch.optim.Adam"
    assert hparams["trainer/max_epochs"] == 1 and hparams["trainer/precision"] == "32-true"
    # Nothing but model, data, trainer epochs and precision, and seed: no callbacks, paths or worker counts.
    assert {name.split("/")[0] for name in hparams} == {"model", "data", "trainer", "seed"}
    assert {name for name in hparams if name.startswith("trainer/")} == {"trainer/max_epochs", "trainer/precision"}
    assert not {"data/data_dir", "data/num_workers", "data/pin_memory", "model/_recursive_"} & set(hparams)
    assert len(hparams) < 40
    # The logger's own record (hparams.yaml) holds the same parameters: no module or datamodule adds its
    # constructor arguments (paths, worker counts) behind train.py's back.
    logged = yaml.safe_load((tmp_path / "tensorboard" / "version_0" / "hparams.yaml").read_text())
    assert set(logged) == set(hparams)
    experiment = plugin_data("_hparams_/experiment").experiment
    metrics = [info.name.tag for info in experiment.metric_infos]
    assert metrics == ["val/acc_best", "val/loss", "val/acc", "test/loss", "test/acc"]
    assert all(events.Scalars(tag) for tag in metrics)  # each headline metric has its value in the run
