"""The record that reproduces a run (src/litlab/run_record.py): code, command, environment, seeds, data."""

import hashlib
import importlib.metadata
import os
import socket
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab import run_record
from litlab.data import DigitsDataModule, MNISTDataModule, TextCorpusDataModule
from litlab.data.inputs import ClassLabels, PredictionDataModule
from litlab.masking import mask
from litlab.train import train
from tests.helpers.checkpoints import QUIET
from tests.helpers.config import train_config
from tests.helpers.corpus import write_topic_corpus

GIT = ["git", "-c", "user.name=litlab tests", "-c", "user.email=tests@litlab.invalid"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_clean_checkout_is_recorded_by_its_commit(repo):
    state, diff = run_record.code_state(repo)
    assert state["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert state["git"] == "checkout" and state["dirty"] is False and state["diff_sha256"] is None
    assert state["root"] == str(repo) and diff == ""


def test_a_dirty_checkout_is_recorded_with_its_diff_and_untracked_files(repo):
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "new.py").write_text("x = 1\n")
    state, diff = run_record.code_state(repo)
    assert state["dirty"] is True
    assert "-print('train')" in diff and "+print('changed')" in diff
    assert state["diff_sha256"] == hashlib.sha256(diff.encode()).hexdigest()
    assert state["untracked"] == ["new.py"] and state["untracked_count"] == 1


def test_outside_a_checkout_the_record_says_so(tmp_path, monkeypatch):
    state, diff = run_record.code_state(tmp_path)
    assert state["commit"] is None and state["git"].startswith("not a git checkout (") and diff == ""
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert run_record.code_state(tmp_path)[0]["git"] == "git is not installed"


def test_a_checkpoint_from_other_code_is_named_in_one_sentence():
    code = {"commit": "a" * 40, "dirty": False, "diff_sha256": None}
    written = {"code": code}
    assert run_record.code_change(written, code) is None
    assert run_record.code_change({"code": {"commit": None}}, code) is None  # written outside a checkout
    assert run_record.code_change(None, code) is None  # a checkpoint without a run record
    moved = {"commit": "b" * 40, "dirty": True, "diff_sha256": "d"}
    assert run_record.code_change(written, moved) == (
        "The checkpoint was written by commit aaaaaaaaaa, this code is at commit bbbbbbbbbb with uncommitted "
        "changes: results may differ."
    )
    edited = {**code, "dirty": True, "diff_sha256": "e"}
    assert "this code is at commit aaaaaaaaaa with uncommitted changes" in run_record.code_change(written, edited)
    unknown = {"commit": None, "git": "not a git checkout (fatal: not a git repository)"}
    assert run_record.code_change(written, unknown) == (
        "The checkpoint was written by commit aaaaaaaaaa; this code's commit is unknown (not a git checkout "
        "(fatal: not a git repository))."
    )


def test_files_are_fingerprinted_by_size_and_hash_and_many_are_summed_up(tmp_path):
    paths = []
    for k in range(21):  # docs/reliability.md: a set of more than 20 files is summed up
        paths.append(tmp_path / f"f{k:02d}.bin")
        paths[-1].write_bytes(bytes([k]) * (k + 1))
    few = run_record.fingerprint_files([*paths[:2], tmp_path / "gone.bin"])
    assert few["files"] == [
        {"path": str(paths[0]), "bytes": 1, "sha256": sha256(paths[0])},
        {"path": str(paths[1]), "bytes": 2, "sha256": sha256(paths[1])},
    ]
    assert few["count"] == 2 and few["bytes"] == 3 and few["missing"] == [str(tmp_path / "gone.bin")]
    assert len(run_record.fingerprint_files(paths[:20])["files"]) == 20
    many = run_record.fingerprint_files(paths)
    assert "files" not in many and many["count"] == 21
    paths[-1].write_bytes(b"other")
    assert run_record.fingerprint_files(paths)["sha256"] != many["sha256"]


def test_datamodules_name_the_files_they_read(mnist_root, tmp_path):
    mnist = run_record.data_fingerprint(MNISTDataModule(data_dir=str(mnist_root)))
    raw = mnist_root / "MNIST" / "raw"
    assert mnist["datamodule"] == "litlab.data.mnist.MNISTDataModule"
    assert {Path(f["path"]).name: f["sha256"] for f in mnist["source"]["files"]} == {
        name: sha256(raw / name) for name in MNISTDataModule.files
    }
    assert mnist["settings"]["split_seed"] == 42
    digits = run_record.data_fingerprint(DigitsDataModule())
    assert digits["source"]["files"][0]["sha256"] == sha256(Path(str(files("sklearn.datasets.data") / "digits.csv.gz")))
    corpus = write_topic_corpus(tmp_path / "corpus" / "a.txt")
    text = run_record.data_fingerprint(TextCorpusDataModule(corpus=str(corpus.parent)))
    assert [f["sha256"] for f in text["source"]["files"]] == [sha256(corpus)]
    described = run_record.data_fingerprint(PredictionDataModule(ClassLabels([0, 1])))
    assert described["source"].startswith("not named by the datamodule") and described["settings"] == {}


def test_a_run_records_itself_beside_its_outputs_in_checkpoints_and_in_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setenv("LITLAB_TEST_DATA", str(tmp_path / "private-data-7e3a"))
    cfg = train_config(
        [
            *QUIET,
            "logger=tensorboard",
            "trainer.max_epochs=1",
            "test=false",
            "paths.data_dir=${oc.env:LITLAB_TEST_DATA}",
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    record = yaml.safe_load((tmp_path / run_record.RECORD_FILE).read_text())
    assert record["task"] == "train" and record["code"] == run_record.current_code()
    assert record["environment"]["torch"] == torch.__version__
    assert record["environment"]["packages"]["lightning"] == importlib.metadata.version("lightning")
    assert record["seeds"] == {"seed": 12345, "data.split_seed": 42, "torch_initial_seed": 12345}
    assert record["data"]["datamodule"] == "litlab.data.digits.DigitsDataModule"
    assert record["data"]["settings"]["data_dir"] == mask("LITLAB_TEST_DATA")
    assert record["device"] == {"device": "cpu", "name": record["device"]["name"], "world_size": 1}
    assert "trainer.max_epochs=1" in record["command"]["overrides"]

    checkpoint = torch.load(objects["trainer"].checkpoint_callback.last_model_path, weights_only=True)
    assert checkpoint["litlab"]["run"] == record
    assert checkpoint["datamodule_hyper_parameters"]["data_dir"] == mask("LITLAB_TEST_DATA")
    assert "private-data-7e3a" not in str(checkpoint["hyper_parameters"]) + str(checkpoint["litlab"])

    events = EventAccumulator(str(objects["trainer"].logger.log_dir), size_guidance={"tensors": 0})
    events.Reload()
    text = events.Tensors("run_record/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"commit: {record['code']['commit']}" in text and "torch_initial_seed: 12345" in text


def test_a_failing_git_command_without_a_message_is_named(repo):
    (repo / "train.py").write_text("print('changed')\n")
    # `git diff --quiet` fails (status 1) on a changed tree and says nothing: the error names the subcommand
    with pytest.raises(RuntimeError, match=r"^git diff failed$"):
        run_record._git("diff", "--quiet", "HEAD", root=repo)


def test_the_command_keeps_overrides_as_typed_and_the_config_choices_without_hydras(tmp_path, monkeypatch):
    monkeypatch.setenv("LITLAB_TEST_TOKEN", "tok-0123456789")
    train_config(["model/optimizer=sgd", "hydra.job.name=${oc.env:LITLAB_TEST_TOKEN}"], tmp_path)
    found = run_record.command()
    assert "model/optimizer=sgd" in found["overrides"]
    # as typed: resolving it would write the environment's value into the record
    assert found["hydra_overrides"] == ["hydra.job.name=${oc.env:LITLAB_TEST_TOKEN}"]
    assert found["choices"]["model/optimizer"] == "sgd" and found["choices"]["data"] == "digits"
    assert [name for name in found["choices"] if name.startswith("hydra/")] == []


def test_the_environment_names_this_interpreter_torch_and_the_devices_it_sees():
    environment = run_record.environment()
    assert environment["python_executable"] == sys.executable and environment["torch"] == torch.__version__
    assert environment["cuda_devices"] == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert environment["cpus"] == os.cpu_count() and environment["host"] == socket.gethostname()
    assert environment["packages"]["torch"] == importlib.metadata.version("torch")
