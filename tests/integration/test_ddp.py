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
