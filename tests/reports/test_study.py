"""The MLP-versus-CNN study: parameter matching, DropBlock, factorized kernels, per-epoch test curves, report."""

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning import Callback, Trainer
from matplotlib.image import imread
from torch import nn
from torchvision.ops import DropBlock2d

from litlab import ROOT_DIR
from litlab.callbacks import DropBlockSchedule
from litlab.data import MNISTDataModule
from litlab.models import ImageClassifier
from litlab.models.base import plain
from litlab.models.nets import CNN
from litlab.models.nets.build import build_net
from litlab.reports.study import load_runs
from litlab.train import train
from tests.helpers.config import train_config

STUDY = ("mlp", "cnn_matched", "cnn_dropblock", "cnn_factorized")


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def experiment_nets(dataset: str, tmp_path: Path) -> dict[str, nn.Module]:
    """The four study networks, built from the experiment configs exactly as a run builds them."""
    nets = {}
    for name in STUDY:
        cfg = train_config([f"experiment={dataset}_{name}"], tmp_path)
        nets[name] = build_net(plain(cfg.model.net))
    return nets


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_study_nets_are_parameter_matched(dataset, tmp_path):
    nets = experiment_nets(dataset, tmp_path)
    mlp, cnn = count(nets["mlp"]), count(nets["cnn_matched"])
    assert 0.9 * mlp <= cnn <= mlp, f"CNN {cnn:,} against MLP {mlp:,} parameters"
    assert count(nets["cnn_dropblock"]) == cnn  # DropBlock has no parameters: only the regulariser differs
    assert count(nets["cnn_factorized"]) < cnn
    assert any(isinstance(m, DropBlock2d) for m in nets["cnn_dropblock"].modules())
    assert not any(isinstance(m, nn.Dropout2d) for m in nets["cnn_dropblock"].modules())
    channels, size = nets["mlp"].input_shape[0], nets["mlp"].input_shape[1]
    x = torch.randn(4, channels, size, size)
    shapes = {name: tuple(net.eval()(x).shape) for name, net in nets.items()}
    assert set(shapes.values()) == {(4, 10)}
    # DropBlock2d refuses an even block size, which it would get on a small map if the net did not adapt it.
    assert nets["cnn_dropblock"].train()(x).shape == (4, 10)


def test_factorized_cnn_replaces_every_square_kernel_and_keeps_shapes():
    matched = CNN(3, 32, 10, conv_channels=(8, 16, 16), kernel_size=[5, 3, 1], dense_units=(32,))
    factorized = CNN(3, 32, 10, conv_channels=(8, 16, 16), kernel_size=[5, 3, 1], dense_units=(32,), factorize=True)
    kernels = [m.kernel_size for m in factorized.modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [(5, 1), (1, 5), (3, 1), (1, 3), (1, 1)]
    assert count(factorized) < count(matched)
    x = torch.randn(2, 3, 32, 32)
    assert factorized.features(x).shape == matched.features(x).shape == (2, 16, 4, 4)


def test_dropblock_is_active_in_training_and_off_in_evaluation():
    torch.manual_seed(0)
    # No batch norm: its running statistics would differ after the two nets' different training passes.
    net = CNN(1, 28, 10, conv_channels=(8, 8), batch_norm=False, dropblock=0.3, dropblock_size=5, dense_units=())
    without = copy.deepcopy(net)
    for block in without.modules():
        if isinstance(block, DropBlock2d):
            block.p = 0.0
    x = torch.randn(16, 1, 28, 28)
    dropped = net.train().features(x)
    # Whole blocks are zeroed in training (ReLU alone leaves few exact zeros in a 5x5 window)...
    extra_zeros = (dropped == 0).float().mean() - (without.train().features(x) == 0).float().mean()
    assert extra_zeros > 0.1
    assert not torch.equal(net.features(x), dropped)
    # ... and in evaluation the network computes what it computes without DropBlock.
    assert torch.equal(net.eval()(x), without.eval()(x))


def dropblock_probabilities(model: nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, DropBlock2d)]


@pytest.mark.parametrize(
    ("ramp_fraction", "steps", "expected"),
    [
        # The default ramps over the whole run: p = target * step / steps.
        (None, 4, [0.0, 0.05, 0.1, 0.15, 0.2, 0.2]),
        (0.5, 8, [0.0, 0.05, 0.1, 0.15, 0.2, 0.2]),
        # A ramp shorter than two steps still ends at the target: p = target * step / (0.5 * 3).
        (0.5, 3, [0.0, 0.2 / 1.5, 0.2, 0.2, 0.2, 0.2]),
    ],
)
def test_dropblock_schedule_raises_p_linearly_then_restores_the_target(ramp_fraction, steps, expected):
    net = CNN(1, 28, 10, conv_channels=(8, 16), dropblock=0.2, dense_units=(32,))
    model = ImageClassifier(net)
    schedule = DropBlockSchedule() if ramp_fraction is None else DropBlockSchedule(ramp_fraction=ramp_fraction)
    schedule.on_fit_start(None, model)
    seen = []
    for step in range(len(expected)):
        trainer = SimpleNamespace(estimated_stepping_batches=steps, global_step=step)
        schedule.on_train_batch_start(trainer, model, None, step)
        seen.append(dropblock_probabilities(model))
    assert seen == [[pytest.approx(p)] * 2 for p in expected]
    schedule.on_train_batch_start(SimpleNamespace(estimated_stepping_batches=steps, global_step=1), model, None, 1)
    schedule.on_fit_end(None, model)
    assert dropblock_probabilities(model) == [0.2, 0.2]


@pytest.mark.parametrize("ramp_fraction", [0.0, -0.5, 1.5])
def test_dropblock_schedule_refuses_a_ramp_outside_0_1(ramp_fraction):
    with pytest.raises(ValueError, match="ramp_fraction must be in"):
        DropBlockSchedule(ramp_fraction=ramp_fraction)


def test_dropblock_schedule_in_a_run_logs_the_scale_once_per_epoch(mnist_root):
    class Record(Callback):
        def __init__(self):
            self.p = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.p.append(dropblock_probabilities(pl_module)[0])

    net = CNN(1, 28, 10, conv_channels=(8, 16), dropblock=0.2, dense_units=(32,))
    model = ImageClassifier(net)
    record = Record()
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=64)
    trainer = Trainer(
        max_epochs=2, limit_train_batches=4, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, callbacks=[DropBlockSchedule(), record], enable_model_summary=False,
        limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    # The schedule runs before the batch, so each training step sees its own p; the last one falls short of
    # the target by one step, and the target is back once training ends.
    assert record.p == pytest.approx([0.2 * step / 8 for step in range(8)])
    assert dropblock_probabilities(model) == [0.2, 0.2]
    # One value per epoch under the documented name: the mean of the epoch's steps.
    assert trainer.logged_metrics["train/dropblock_scale"] == pytest.approx(sum(range(4, 8)) / 4 / 8)


def test_study_run_logs_test_curves_and_writes_results(tmp_path, mnist_root):
    cfg = train_config(
        [
            "experiment=mnist_cnn_dropblock",
            f"paths.data_dir={mnist_root}",
            "data.download=false",
            "trainer.max_epochs=2",
            "logger=csv",
        ],
        tmp_path,
    )
    started = time.perf_counter()
    metrics, objects = train(cfg)
    run_seconds = time.perf_counter() - started
    assert metrics["test/acc"] > 0.5  # ten classes: chance is 0.1
    metrics_csv = next(tmp_path.glob("csv/**/metrics.csv")).read_text().splitlines()
    header = metrics_csv[0].split(",")
    test_curve = [row.split(",")[header.index("test_epoch/acc")] for row in metrics_csv[1:]]
    assert len([value for value in test_curve if value]) == 2  # one point per epoch
    results = json.loads((tmp_path / "results.json").read_text())
    # fit's own wall time: a part of the whole run's, which also sets up, tests and writes the results
    assert results["epochs"] == 2 and 0 < results["fit_seconds"] < run_seconds
    assert results["params_trainable"] == count(objects["model"].net)
    assert results["metrics"]["test/acc"] == pytest.approx(float(metrics["test/acc"]))
    matrix = torch.tensor(results["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == len(objects["datamodule"].data_test)
    assert matrix.trace() / matrix.sum() == pytest.approx(results["metrics"]["test/acc"], abs=1e-6)


def test_multirun_study_then_report(tmp_path, mnist_root):
    sweep = tmp_path / "sweep"
    command = [
        sys.executable, "train.py", "-m", "experiment=mnist_mlp,mnist_cnn_factorized",
        f"paths.data_dir={mnist_root}", "++data.download=false", "trainer.max_epochs=1", "trainer.accelerator=cpu",
        "callbacks.rich_progress_bar=null", "extras.print_config=false", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT_DIR, check=True, capture_output=True, timeout=600)
    report = subprocess.run(
        [sys.executable, "scripts/report.py", str(sweep)], cwd=ROOT_DIR, check=True, capture_output=True, text=True
    )
    table = (sweep / "report.md").read_text()
    assert table in report.stdout
    header, rule, *rows = table.strip().splitlines()
    assert header.split(" | ")[1:3] == ["parameters", "test loss"] and len(rows) == 2
    for row, job, name in zip(rows, ("0", "1"), ("mnist_mlp", "mnist_cnn_factorized"), strict=True):
        results = json.loads((sweep / job / "results.json").read_text())
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[0] == name
        assert cells[1] == f"{results['params_trainable']:,}"
        assert float(cells[3]) == pytest.approx(results["metrics"]["test/acc"], abs=5e-5)
        assert cells[7] == "1" and cells[8].endswith(" s")
    height, width = imread(sweep / "confusion_matrices.png").shape[:2]
    assert width > 1.5 * height  # two matrices side by side
    assert list((sweep / "report").glob("events.out.tfevents.*"))


def test_report_explains_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="wrote a results.json: train with callbacks=study"):
        load_runs(tmp_path)
