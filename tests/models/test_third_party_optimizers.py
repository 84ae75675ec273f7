"""Optimizers and schedules of other packages (lion-pytorch, pytorch-optimizer; the dev extra installs both) train
from the config alone, and eval and predict reload their checkpoints with `weights_only=True`."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from lion_pytorch import Lion
from pytorch_optimizer import AdaBelief
from pytorch_optimizer.lr_scheduler.rex import REXScheduler

from litlab import ROOT_DIR
from litlab.eval import evaluate
from litlab.predict import predict
from litlab.train import train
from tests.helpers.config import eval_config, predict_config, train_config
from tests.test_predict import read_csv, write_digits

REX = [
    "model/scheduler=none",
    "+model.scheduler._target_=pytorch_optimizer.lr_scheduler.rex.REXScheduler",
    "+model.scheduler.interval=step",
]


@pytest.mark.parametrize(
    ("optimizer", "cls"),
    [
        (["model.optimizer._target_=lion_pytorch.Lion", "model.optimizer.lr=0.0003"], Lion),
        (["model.optimizer._target_=pytorch_optimizer.AdaBelief", "model.optimizer.lr=0.003"], AdaBelief),
    ],
    ids=["lion", "adabelief"],
)
def test_a_packages_optimizer_and_schedule_train_and_their_checkpoint_reloads(tmp_path, optimizer, cls):
    overrides = [*optimizer, "model.optimizer.weight_decay=0.01", *REX, "trainer.max_epochs=3", "logger=csv"]
    metrics, objects = train(train_config(overrides, tmp_path / "train"))
    trainer = objects["trainer"]
    assert type(trainer.optimizers[0]) is cls
    schedule = trainer.lr_scheduler_configs[0]
    assert type(schedule.scheduler) is REXScheduler and schedule.interval == "step"
    assert schedule.scheduler.total_steps == trainer.estimated_stepping_batches  # filled from the run
    logged = pd.read_csv(Path(objects["logger"][0].log_dir) / "metrics.csv")
    losses = logged.dropna(subset=["train/loss"])["train/loss"].tolist()
    assert losses[-1] < 0.5 * losses[0] and metrics["test/acc"] > 0.85  # ten classes: chance is 0.1

    best = trainer.checkpoint_callback.best_model_path
    hparams = torch.load(best, weights_only=True)["hyper_parameters"]
    assert hparams["optimizer"]["_target_"] == optimizer[0].split("=")[1] and type(hparams["optimizer"]) is dict
    assert hparams["scheduler"]["_target_"] == "pytorch_optimizer.lr_scheduler.rex.REXScheduler"

    evaluated, _ = evaluate(eval_config([f"ckpt_path={best}"], tmp_path / "eval"))
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"].item(), abs=1e-6)
    labels = write_digits(tmp_path / "inputs", count=40)
    predict(predict_config([f"ckpt_path={best}", f"inputs={tmp_path / 'inputs'}"], tmp_path / "predict"))
    rows = {int(Path(row["input"]).stem): row["class"] for row in read_csv(tmp_path / "predict" / "predictions.csv")}
    assert sum(rows[k] == str(label) for k, label in enumerate(labels)) / len(labels) > 0.8


def test_a_checkpoint_naming_an_optimizer_outside_the_trusted_packages_is_refused_in_one_sentence(
    tmp_path, classifier_ckpt
):
    content = torch.load(classifier_ckpt, weights_only=True)
    marker = tmp_path / "ran"
    content["hyper_parameters"]["optimizer"] = {"_target_": "os.system", "command": f"touch {marker}"}
    torch.save(content, tmp_path / "foreign.ckpt")
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT_DIR / "eval.py"), f"ckpt_path={tmp_path / 'foreign.ckpt'}"]
    run = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = run.stdout + run.stderr
    sentence = (
        "could not be rebuilt as ImageClassifier (ValueError: model.optimizer._target_=os.system is outside the "
        "packages configs and checkpoints may name (torch.optim.*, lion_pytorch.*, pytorch_optimizer.*): add its "
        "package to TRUSTED_PACKAGES in litlab's whitelist module.)"
    )
    assert run.returncode != 0 and output.count(sentence) == 1, output[-3000:]
    assert "Traceback" not in output and not marker.exists()
