"""One way to load a checkpoint: every caller refuses a bad one with the same clear sentence, naming its own option."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from litlab.eval import evaluate
from litlab.export import export
from litlab.models import DistillationModule
from litlab.models.gan_eval import load_judge
from litlab.predict import predict
from litlab.utils.checkpoint import HINTS, Checkpoint, CheckpointError
from tests.helpers.config import eval_config, export_config, predict_config

STUDENT = {"_target_": "litlab.models.nets.CNN", "in_channels": 1, "image_size": 8, "conv_channels": [4]}


class WritesAFile:
    """Unpickling this runs code: it creates the file named by `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def callers(tmp_path: Path) -> dict[str, tuple[str, Callable[[Path], object]]]:
    """Each place that loads a checkpoint: the option a user sets, and a call that loads `path` through it."""
    return {
        "eval": ("ckpt_path", lambda path: evaluate(eval_config([f"ckpt_path={path}"], tmp_path / "eval"))),
        "predict": (
            "ckpt_path",
            lambda path: predict(predict_config([f"ckpt_path={path}", f"inputs={tmp_path}"], tmp_path / "predict")),
        ),
        "export": ("ckpt_path", lambda path: export(export_config([f"ckpt_path={path}"], tmp_path / "export"))),
        "gan judge": ("model.classifier_ckpt", lambda path: load_judge(path)),
        "kd teacher": ("model.teacher_ckpt", lambda path: DistillationModule(STUDENT, teacher_ckpt=str(path))),
    }


@pytest.fixture
def bad_checkpoints(tmp_path, classifier_ckpt) -> dict[str, tuple[Path, str]]:
    """Bad checkpoints and what the sentence about each must say."""
    content = torch.load(classifier_ckpt, weights_only=True)
    content["litlab"]["module"] = content["litlab"]["datamodule"] = "os.system"
    content["hyper_parameters"]["net"]["_target_"] = "os.system"
    foreign = tmp_path / "foreign.ckpt"
    torch.save(content, foreign)
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(Path(classifier_ckpt).read_bytes()[:5000])  # a copy cut short
    pickled = tmp_path / "pickled.ckpt"
    torch.save({**content, "extra": WritesAFile(tmp_path / "code_ran")}, pickled)
    return {
        "non-litlab class": (foreign, "'os.system'"),
        "corrupt file": (corrupt, "is corrupt or not a PyTorch checkpoint"),
        "missing file": (tmp_path / "missing.ckpt", "does not exist"),
        "pickled code": (pickled, "holds pickled Python objects besides tensors and plain values"),
    }


@pytest.mark.parametrize("caller", ["eval", "predict", "export", "gan judge", "kd teacher"])
def test_every_caller_refuses_bad_checkpoints_in_one_sentence(tmp_path, bad_checkpoints, caller):
    option, load = callers(tmp_path)[caller]
    for case, (path, problem) in bad_checkpoints.items():
        with pytest.raises(CheckpointError) as raised:
            load(path)
        message = str(raised.value)
        assert message.startswith(f"Checkpoint {option}='{path}' "), (case, message)
        assert problem in message, (case, message)
        assert "\n" not in message and message.endswith(f": {HINTS[option]}."), (case, message)  # what to pass
    assert not (tmp_path / "code_ran").exists()  # weights_only=True: the pickled code never ran


def test_the_record_holds_what_predicting_needs_as_plain_values(classifier_ckpt, word2vec_ckpt, cyclegan_ckpt):
    classifier = Checkpoint.open(classifier_ckpt)
    assert classifier.data == {
        "channels": 1,
        "image_size": [8, 8],
        "mean": [0.3054],
        "std": [0.376],
        "class_names": [str(i) for i in range(10)],
    }
    assert Checkpoint.open(word2vec_ckpt).data["lowercase"] is True
    assert Checkpoint.open(cyclegan_ckpt).data == {"image_size": [28, 28], "mean": [0.5], "std": [0.5]}
    net, spec = classifier.network()
    assert spec["_target_"] == "litlab.models.nets.CNN" and not net.training
    module = classifier.module()
    assert all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), module.net.state_dict().values(), strict=True)
    )


def test_a_litlab_name_that_is_not_a_lightning_module_is_refused(tmp_path, classifier_ckpt):
    content = torch.load(classifier_ckpt, weights_only=True)
    content["litlab"]["module"] = "litlab.utils.checkpoint.Checkpoint"
    path = tmp_path / "odd.ckpt"
    torch.save(content, path)
    with pytest.raises(
        CheckpointError, match="names litlab.utils.checkpoint.Checkpoint, which is not a LightningModule"
    ):
        Checkpoint.open(path).module()
    os.remove(path)
