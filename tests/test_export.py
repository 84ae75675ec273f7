"""export.py: the classifier's network with its normalisation, as ONNX (run with onnxruntime) and torch.export."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from litlab.checkpoints.load import CheckpointError, CheckpointFile
from litlab.data import DigitsDataModule
from litlab.export import ATOL, RTOL, StandardisedClassifier, export, export_onnx, export_pt2, run_exported
from litlab.models.nets.build import build_net
from tests.helpers.checkpoints import run_entry_point
from tests.helpers.config import export_config


@pytest.fixture(scope="module")
def digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits' test split as uint8 images, and the same standardised as in training."""
    data = DigitsDataModule()
    data.setup()
    images = data.data_test.images[:37]
    return images, data.normalize(images)


def pytorch_logits(ckpt, standardised: torch.Tensor) -> np.ndarray:
    model = CheckpointFile.open(ckpt).module().eval()
    with torch.no_grad():
        return model(standardised).numpy()


def test_onnx_export_matches_pytorch_on_any_batch_size(tmp_path, classifier_ckpt, digits_batch):
    result, _ = export(export_config([f"ckpt_path={classifier_ckpt}", "format=onnx"], tmp_path))
    path = result["path"]
    # one self-contained file (external_data=False) and its description
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["model.json", "model.onnx"]
    images, standardised = digits_batch
    expected = pytorch_logits(classifier_ckpt, standardised)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"] and [o.name for o in session.get_outputs()] == [
        "logits"
    ]
    pixels = (images.float() / 255).numpy()  # the exported model standardises by itself
    for batch in (slice(0, 1), slice(0, 37), slice(5, 12)):
        got = session.run(None, {"images": pixels[batch]})[0]
        np.testing.assert_allclose(got, expected[batch], rtol=RTOL, atol=ATOL)
    description = json.loads(next(p.value for p in onnx.load(str(path)).metadata_props if p.key == "litlab"))
    assert description["class_names"] == [str(i) for i in range(10)]
    assert description["input"]["shape"] == ["batch", 1, 8, 8] and description["input"]["mean"] == [0.3054]
    assert json.loads((tmp_path / "model.json").read_text()) == description


def test_torchscript_request_writes_torch_export_pt2(tmp_path, classifier_ckpt, digits_batch, caplog):
    result, _ = export(export_config([f"ckpt_path={classifier_ckpt}", "format=torchscript"], tmp_path))
    assert result["path"].name == "model.pt2"
    assert "TorchScript is deprecated" in caplog.text
    images, standardised = digits_batch
    extra = {"litlab.json": ""}
    program = torch.export.load(str(result["path"]), extra_files=extra)
    assert json.loads(extra["litlab.json"])["output"]["name"] == "logits"
    with torch.no_grad():
        got = program.module()(images[:9].float() / 255).numpy()
    np.testing.assert_allclose(got, pytorch_logits(classifier_ckpt, standardised[:9]), rtol=RTOL, atol=ATOL)


def test_export_refuses_what_it_cannot_export(tmp_path, word2vec_ckpt, classifier_ckpt):
    with pytest.raises(CheckpointError, match="holds no network spec .*it is a Word2Vec, not an image classifier"):
        export(export_config([f"ckpt_path={word2vec_ckpt}"], tmp_path))
    with pytest.raises(ValueError, match="Unknown format=tflite: choose onnx or pt2"):
        export(export_config([f"ckpt_path={classifier_ckpt}", "format=tflite"], tmp_path))


@pytest.mark.slow  # a whole process, mostly imports; the predict.py command runs in the fast suite
def test_export_command_runs_from_a_lone_checkpoint(tmp_path, classifier_ckpt):
    overrides = [f"ckpt_path={classifier_ckpt}", f"hydra.run.dir={tmp_path / 'run'}", "extras.print_config=false"]
    run = run_entry_point("export.py", overrides, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "run" / "model.onnx").is_file()
    assert "matches PyTorch within rtol=0.001, atol=1e-05" in run.stdout + run.stderr


NETWORKS = {
    "mlp": {"_target_": "litlab.models.nets.MLP", "in_channels": 1, "image_size": 28, "hidden_sizes": [64, 32]},
    "cnn_dropblock_factorized": {
        "_target_": "litlab.models.nets.CNN",
        "in_channels": 3,
        "image_size": 32,
        "conv_channels": [8, 16],
        "dropblock": 0.1,
        "factorize": True,
    },
    "resnet18": {"_target_": "litlab.models.nets.ResNet", "arch": "resnet18", "in_channels": 3, "image_size": 32},
}


@pytest.mark.parametrize("name", ["mlp", "cnn_dropblock_factorized", pytest.param("resnet18", marks=pytest.mark.slow)])
def test_every_network_kind_exports_in_eval_mode(tmp_path, name):
    spec = NETWORKS[name]
    channels, size = spec["in_channels"], spec["image_size"]
    model = StandardisedClassifier(build_net(spec), [0.5] * channels, [0.25] * channels).eval()
    example, batch = torch.rand(2, channels, size, size), torch.rand(3, channels, size, size)
    with torch.no_grad():
        expected = model(batch).numpy()
        for suffix, write in (("onnx", export_onnx), ("pt2", export_pt2)):
            path = write(model, example, tmp_path / f"{name}.{suffix}", {})
            # dropout, DropBlock and batch norm as in evaluation: the same output twice, and PyTorch's
            np.testing.assert_allclose(run_exported(path, batch), expected, rtol=RTOL, atol=ATOL)
            np.testing.assert_array_equal(run_exported(path, batch), run_exported(path, batch))
