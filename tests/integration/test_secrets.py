"""A secret passed through the environment appears nowhere in a run's folder, nor on its terminal."""

import os
import subprocess
import sys
import uuid

import pytest

from litlab import ROOT_DIR
from tests.integration.test_run_folders import SHORT_RUN


@pytest.mark.slow
def test_secrets_from_the_environment_stay_out_of_every_file_of_the_run(tmp_path):
    token, vault, private = (uuid.uuid4().hex for _ in range(3))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT_DIR / "src"),
        "OMP_NUM_THREADS": "1",
        "NETRC": str(tmp_path / "no-netrc"),  # W&B without an account: offline, into the run folder
        "LITLAB_TEST_TOKEN": f"tok-{token}",
        # a tracking URL with a password would do the same; a local store keeps the test offline
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / f'vault-{vault}'}/mlflow.db",
        "LITLAB_TEST_DATA": str(tmp_path / f"data-{private}"),
    }
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        env.pop(name, None)
    (tmp_path / f"vault-{vault}").mkdir()
    arguments = [
        *(o for o in SHORT_RUN if not o.startswith(("logger=", "extras.print_config", "test="))),
        "logger=many_loggers",  # CSV, TensorBoard, W&B and MLflow, each given the hyperparameters
        f"paths.log_dir={tmp_path / 'logs'}",
        "paths.data_dir=${oc.env:LITLAB_TEST_DATA}",  # the bundled digits read nothing there; checkpoints keep it
        "+api_token=${oc.env:LITLAB_TEST_TOKEN}",
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT_DIR / "train.py"), *arguments],
        cwd=ROOT_DIR,
        env=env,
        capture_output=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    written = [path for path in run_dir.rglob("*") if path.is_file()]
    names = {path.name for path in written}
    assert {"config_tree.log", "run_record.yaml", "last.ckpt", "hparams.yaml", "metrics.csv"} <= names
    assert any(name.endswith(".wandb") for name in names) and any(name.startswith("events.out") for name in names)
    assert list((tmp_path / f"vault-{vault}").glob("mlflow.db"))  # MLflow used the URL
    for secret in (token, vault, private):
        assert [path for path in written if secret.encode() in path.read_bytes()] == []
        assert secret.encode() not in result.stdout + result.stderr
    assert b"${oc.env:LITLAB_TEST_TOKEN}" in (run_dir / "config_tree.log").read_bytes()
