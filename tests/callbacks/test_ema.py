"""`callbacks=ema`: an exponential moving average of the weights, evaluated wherever a run evaluates, and resumed."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from litlab import ROOT_DIR
from litlab.callbacks import EMAWeights
from litlab.data import DigitsDataModule
from litlab.eval import evaluate
from litlab.export import export, run_exported
from litlab.models.nets.build import build_net
from litlab.predict import predict
from litlab.train import train
from tests.helpers.config import TEST_OVERRIDES, eval_config, export_config, predict_config, train_config

DECAY = 0.6


class Line(L.LightningModule):
    """A linear regression that notes the weights it holds whenever it is evaluated."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.seen: dict[str, list[torch.Tensor]] = {"validation": [], "validation end": [], "test": []}

    def _note(self, where: str) -> None:
        self.seen[where].append(self.layer.weight.detach().clone())

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            self._note("validation")
        x, y = batch
        self.log("val/loss", nn.functional.mse_loss(self.layer(x), y))

    def on_validation_epoch_end(self):
        self._note("validation end")

    def test_step(self, batch, batch_idx):
        if batch_idx == 0:
            self._note("test")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class RawWeights(L.Callback):
    """The raw weights after every optimizer step."""

    def __init__(self):
        self.steps: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps.append(pl_module.layer.weight.detach().clone())


def _hand_ema(steps: list[torch.Tensor], decay: float) -> torch.Tensor:
    average = steps[0].clone()  # the first update copies the weights
    for weights in steps[1:]:
        average = decay * average + (1 - decay) * weights
    return average


def test_validation_checkpoints_and_test_use_the_hand_computed_average(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    data = DataLoader(TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [3.0]])), batch_size=8)
    model, raw = Line(), RawWeights()
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", save_top_k=-1)
    # The averaging callback after the recorder and before the checkpoints, as in `callbacks=ema`.
    trainer = L.Trainer(
        max_epochs=2,
        callbacks=[EMAWeights(decay=DECAY), raw, checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, data, data)
    assert len(raw.steps) == 16
    per_epoch = [_hand_ema(raw.steps[:8], DECAY), _hand_ema(raw.steps, DECAY)]
    assert not torch.allclose(per_epoch[1], raw.steps[-1], atol=1e-3)  # the average is not the raw weights

    # Validation, to its very end (the module's own epoch-end hook), ran on the average of its epoch.
    for where in ("validation", "validation end"):
        for seen, expected in zip(model.seen[where], per_epoch, strict=True):
            torch.testing.assert_close(seen, expected, rtol=0, atol=1e-6)
    # Each checkpoint holds the average as its weights and the raw weights beside them.
    for epoch, expected in enumerate(per_epoch):
        saved = torch.load(tmp_path / f"epoch={epoch}-step={8 * (epoch + 1)}.ckpt", weights_only=True)
        torch.testing.assert_close(saved["state_dict"]["layer.weight"], expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(saved["current_model_state"]["layer.weight"], raw.steps[8 * epoch + 7])
    # Training ends on the average, and testing a checkpoint with this Trainer (what train.py does with the
    # best one) evaluates the checkpoint's average, not its raw weights.
    torch.testing.assert_close(model.layer.weight.detach(), per_epoch[1], rtol=0, atol=1e-6)
    trainer.test(model, data, ckpt_path=tmp_path / "epoch=0-step=8.ckpt", weights_only=True, verbose=False)
    torch.testing.assert_close(model.seen["test"][-1], per_epoch[0], rtol=0, atol=1e-6)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _nets(ckpt: Path) -> dict[str, nn.Module]:
    """The checkpoint's network with its averaged and with its raw weights."""
    content = torch.load(ckpt, weights_only=True)
    nets = {}
    for name, key in (("average", "state_dict"), ("raw", "current_model_state")):
        net = build_net(content["hyper_parameters"]["net"])
        net.load_state_dict({k.removeprefix("net."): v for k, v in content[key].items() if k.startswith("net.")})
        nets[name] = net.eval()
    return nets


def test_train_eval_predict_and_export_use_the_averaged_weights(tmp_path):
    overrides = [
        "callbacks=ema",
        "callbacks.ema.decay=0.9",
        "trainer.max_epochs=2",
        "logger=csv",
        "callbacks.model_summary=null",
        "callbacks.rich_progress_bar=null",
    ]
    metrics, objects = train(train_config(overrides, tmp_path / "train"))
    assert any(isinstance(c, EMAWeights) for c in objects["trainer"].callbacks)
    best = Path(objects["trainer"].checkpoint_callback.best_model_path)
    nets = _nets(best)

    data = DigitsDataModule()
    data.setup()
    images, labels = data.data_test.images, data.data_test.labels
    with torch.no_grad():
        logits = {name: net(data.normalize(images)) for name, net in nets.items()}
    accuracy = {name: (out.argmax(1) == labels).float().mean().item() for name, out in logits.items()}
    loss = {name: nn.functional.cross_entropy(out, labels).item() for name, out in logits.items()}
    assert abs(loss["average"] - loss["raw"]) > 1e-3  # two different models: the test below tells them apart

    # train.py's test of the best checkpoint, and eval.py on it: the average's scores.
    assert metrics["test/loss"].item() == pytest.approx(loss["average"], abs=1e-5)
    assert metrics["test/acc"].item() == pytest.approx(accuracy["average"], abs=1e-6)
    evaluated, _ = evaluate(eval_config([f"ckpt_path={best}", "logger=csv"], tmp_path / "eval"))
    assert evaluated["test/loss"].item() == pytest.approx(loss["average"], abs=1e-5)

    # predict.py: the average's probabilities.
    torch.save(images, tmp_path / "test_split.pt")
    predict(predict_config([f"ckpt_path={best}", f"inputs={tmp_path / 'test_split.pt'}"], tmp_path / "predict"))
    rows = _read_csv(tmp_path / "predict" / "predictions.csv")
    top = {name: out.softmax(1).max(1) for name, out in logits.items()}
    assert [row["class"] for row in rows] == [str(c) for c in top["average"].indices.tolist()]
    assert np.allclose([float(row["probability"]) for row in rows], top["average"].values.numpy(), atol=1e-5)
    assert not np.allclose([float(row["probability"]) for row in rows], top["raw"].values.numpy(), atol=1e-3)

    # export.py: the exported file computes the average's logits.
    export(export_config([f"ckpt_path={best}", "format=pt2"], tmp_path / "export"))
    exported = run_exported(tmp_path / "export" / "model.pt2", images[:16].float() / 255)
    np.testing.assert_allclose(exported, logits["average"][:16].numpy(), rtol=1e-4, atol=1e-5)


# Deterministic, no learning-rate schedule (a cosine schedule spans max_epochs, which the stopped run changes).
RESUME = [
    *TEST_OVERRIDES,
    "callbacks=ema",
    "callbacks.ema.decay=0.95",
    "callbacks.rich_progress_bar=null",
    "model/scheduler=none",
    "trainer.deterministic=true",
    "logger=csv",
    "seed=7",
]


def _final_state(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    last = torch.load(next(run_dir.rglob("checkpoints/last.ckpt")), weights_only=True)
    assert last["epoch"] == 2
    return {key: last[key] for key in ("state_dict", "current_model_state", "averaging_state")}


def _assert_same_state(resumed: dict, reference: dict) -> None:
    assert int(resumed["averaging_state"]["n_averaged"]) == int(reference["averaging_state"]["n_averaged"]) > 0
    for key in ("state_dict", "current_model_state"):
        assert resumed[key].keys() == reference[key].keys()
        for name, value in reference[key].items():
            torch.testing.assert_close(resumed[key][name], value, rtol=0, atol=1e-6, msg=f"{key}.{name}")
    raw = reference["current_model_state"]
    assert any(not torch.equal(value, raw[name]) for name, value in reference["state_dict"].items())


def _one_thread(run):
    # Another thread count sums in another order: the runs compared must all use one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


def test_a_resumed_run_continues_the_average(tmp_path):
    reference, _ = _one_thread(lambda: train(train_config([*RESUME, "trainer.max_epochs=3"], tmp_path / "reference")))
    _one_thread(lambda: train(train_config([*RESUME, "trainer.max_epochs=2", "test=false"], tmp_path / "stopped")))
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    # In the stopped run's folder, as ckpt_path=last continues: the best checkpoint's score carries over.
    again = train_config([*RESUME, "trainer.max_epochs=3", f"ckpt_path={last}"], tmp_path / "stopped")
    resumed, _ = _one_thread(lambda: train(again))
    _assert_same_state(_final_state(tmp_path / "stopped"), _final_state(tmp_path / "reference"))
    assert resumed["test/loss"].item() == pytest.approx(reference["test/loss"].item(), abs=1e-6)


@pytest.mark.slow
def test_train_py_stopped_after_two_epochs_resumes_to_the_uninterrupted_average(tmp_path):
    reference, _ = _one_thread(lambda: train(train_config([*RESUME, "trainer.max_epochs=3"], tmp_path / "reference")))
    log_dir = tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR / "src"), "OMP_NUM_THREADS": "1"}
    outputs = []
    for extra in (["trainer.max_epochs=2"], ["trainer.max_epochs=3", "ckpt_path=last"]):
        done = subprocess.run(
            [sys.executable, str(ROOT_DIR / "train.py"), *RESUME, *extra, f"paths.log_dir={log_dir}"],
            cwd=ROOT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs.append(done.stdout + done.stderr)
    assert "ckpt_path=last: resuming" in outputs[1]
    assert "Found current_model_state in the checkpoint" in outputs[1]  # the average was restored, not reset
    (run_dir,) = [p.parent.parent for p in log_dir.rglob("checkpoints/last.ckpt")]  # one run folder, continued
    _assert_same_state(_final_state(run_dir), _final_state(tmp_path / "reference"))
    newest = max(run_dir.rglob("metrics.csv"), key=lambda path: path.stat().st_mtime)  # the resumed run's
    rows = [row for row in _read_csv(newest) if row.get("test/loss")]
    assert float(rows[-1]["test/loss"]) == pytest.approx(reference["test/loss"].item(), abs=1e-6)
