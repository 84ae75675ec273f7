"""scripts/dashboard.py: optuna-dashboard serves a study from its storage, on localhost, over HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import optuna
import pytest

from litlab import ROOT_DIR

SCRIPT = ROOT_DIR / "scripts" / "dashboard.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def make_study(storage: str) -> optuna.Study:
    """A study with complete, pruned and failed trials, intermediate values included."""
    study = optuna.create_study(study_name="looked_at", storage=storage, direction="maximize")
    lr = optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)
    optimizer = optuna.distributions.CategoricalDistribution(["adam", "sgd"])
    for i, (state, value) in enumerate([("COMPLETE", 0.91), ("PRUNED", None), ("COMPLETE", 0.97), ("FAIL", None)]):
        trial = study.ask({"lr": lr, "optimizer": optimizer})
        for epoch in range(i + 1):
            trial.report(0.5 + 0.1 * epoch, epoch)
        study.tell(trial, value, state=optuna.trial.TrialState[state])
    return study


def start_dashboard(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    """Starts the dashboard and waits until its API answers (or the process ends)."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), *args],
        cwd=ROOT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"the dashboard ended: {process.stdout.read()}")
        try:
            get_json(f"http://127.0.0.1:{port}/api/meta")
            return process
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the dashboard did not answer: {process.communicate()[0]}")
            time.sleep(0.2)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_dashboard_serves_the_study_trials_over_http(kind, tmp_path, request):
    env = {k: v for k, v in os.environ.items() if k != "LITLAB_STORAGE"}
    if kind == "sqlite":
        storage = f"sqlite:///{tmp_path / 'optuna.db'}"
        args = ["--storage", storage]
    else:
        # the URL from the environment, as for a database with a password
        storage = request.getfixturevalue("postgres_url")
        env["LITLAB_STORAGE"], args = storage, []
    study = make_study(storage)
    port = free_port()
    process = start_dashboard(args, env, port)
    try:
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["looked_at"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    served = [
        (
            t["number"],
            t["state"].upper(),
            t.get("values"),
            {p["name"]: p["param_external_value"] for p in t["params"]},
            {v["step"]: v["value"] for v in t["intermediate_values"]},
        )
        for t in detail["trials"]
    ]
    stored = [
        (t.number, t.state.name, t.values, {k: str(v) for k, v in t.params.items()}, t.intermediate_values)
        for t in study.get_trials()
    ]
    assert served == stored
    assert [t["number"] for t in detail["best_trials"]] == [2]
    assert "http://127.0.0.1:" in output


def test_dashboard_without_a_storage_says_what_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LITLAB_STORAGE"}
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "No study storage given: set LITLAB_STORAGE to its URL (e.g. sqlite:///logs/optuna.db) or pass --storage."
    )


def test_dashboard_on_an_unreachable_database_fails_in_one_sentence_without_the_password():
    env = {**os.environ, "LITLAB_STORAGE": f"postgresql+psycopg://litlab:s3cret@127.0.0.1:{free_port()}/optuna"}
    result = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.startswith("Cannot open the study storage postgresql+psycopg://litlab:***@127.0.0.1:")
    assert "check the URL" in message and "Traceback" not in message and "s3cret" not in message
    assert len(message.splitlines()) == 1
