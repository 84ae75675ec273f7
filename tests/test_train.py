import math

import pytest
import torch

from litlab.eval import evaluate
from litlab.train import train
from litlab.utils.checkpoint import CheckpointError
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
    assert events.Scalars("model/params_trainable")[0].value == sum(
        p.numel() for p in objects["model"].parameters() if p.requires_grad
    )
