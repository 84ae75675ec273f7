"""logger=many_loggers: one run read back through each logger's own format (and MLflow's own client)."""

import csv
import math

import pytest

from litlab.loggers import wandb_account_configured
from litlab.train import train
from tests.helpers.config import train_config
from tests.helpers.wandb_records import history_and_config


@pytest.fixture
def no_wandb_account(monkeypatch, tmp_path):
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def test_many_loggers_record_the_same_run(tmp_path, no_wandb_account):
    from mlflow.tracking import MlflowClient

    cfg = train_config(["logger=many_loggers", "trainer.max_epochs=2", "model.optimizer.lr=0.0042"], tmp_path)
    assert set(cfg.logger) == {"csv", "tensorboard", "wandb", "mlflow"}
    metrics, objects = train(cfg)
    test_acc = float(metrics["test/acc"])
    assert test_acc > 0.5

    # MLflow: a local SQLite store under paths.log_dir, read back through MLflow's client.
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.data.params["model/optimizer/lr"] == "0.0042"
    assert run.data.params["trainer/max_epochs"] == "2"
    assert not any(name.startswith("callbacks") for name in run.data.params)
    assert math.isclose(run.data.metrics["test/acc"], test_acc, rel_tol=1e-6)
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2  # one per epoch
    assert run.info.status == "FINISHED"

    # Weights & Biases: offline without an account, the run file holds the config and every logged row.
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    history, config = history_and_config(run_file)
    assert config["model/optimizer/lr"] == 0.0042 and config["seed"] == 12345
    assert [row["epoch"] for row in history if "val/acc" in row] == [0, 1]
    assert math.isclose(next(row["test/acc"] for row in history if "test/acc" in row), test_acc, rel_tol=1e-6)

    # CSV and TensorBoard as before, beside them.
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert math.isclose(float(next(r["test/acc"] for r in rows if r["test/acc"])), test_acc, rel_tol=1e-6)
    assert list((tmp_path / "tensorboard" / "version_0").glob("events.out.tfevents.*"))


def test_wandb_is_online_only_with_an_account(tmp_path, monkeypatch, no_wandb_account):
    assert not wandb_account_configured()
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_account_configured()  # what `wandb login` leaves behind
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert not wandb_account_configured()  # the key is for another host
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_account_configured()
