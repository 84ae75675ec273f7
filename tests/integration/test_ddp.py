import csv

import pytest
from lightning.pytorch.strategies import DDPStrategy

from litlab.train import train
from tests.helpers.config import train_config


@pytest.mark.slow
def test_ddp_sim_trains_in_two_processes(tmp_path):
    # ddp_spawn pickles the LightningModule into each process: this fails if a module keeps a Hydra partial.
    cfg = train_config(["trainer=ddp_sim", "trainer.devices=2", "trainer.max_epochs=2"], tmp_path)
    metrics, objects = train(cfg)
    trainer = objects["trainer"]
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.num_devices == 2
    assert metrics["test/acc"] > 0.5


@pytest.mark.slow
def test_ddp_sim_fit_and_test_keep_every_row_of_the_csv_logger(tmp_path):
    # fit and test each run in new processes under ddp_spawn: the test's rows must join the fit's, not replace them
    overrides = ["trainer=ddp_sim", "trainer.devices=2", "logger=csv", "trainer.max_epochs=2"]
    limits = ["+trainer.limit_train_batches=3", "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2"]
    metrics, _ = train(train_config([*overrides, *limits], tmp_path))
    assert [path.name for path in (tmp_path / "csv").iterdir()] == ["version_0"]
    with open(tmp_path / "csv" / "version_0" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))

    def logged(column: str) -> list[dict[str, str]]:
        return [row for row in rows if row.get(column)]

    for column in ("train/loss", "train/acc", "val/loss", "val/acc"):
        assert [int(row["epoch"]) for row in logged(column)] == [0, 1], column
    assert logged("lr-Adam") and logged("model/params_trainable")
    (test_row,) = logged("test/acc")
    assert float(test_row["test/acc"]) == pytest.approx(float(metrics["test/acc"]))
