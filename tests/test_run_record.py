"""The record that reproduces a run (src/litlab/run_record.py): code, command, environment, seeds, data."""

import hashlib
import importlib.metadata
import logging
import os
import platform
import socket
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab import run_record
from litlab.data import DigitsDataModule, MNISTDataModule, TextCorpusDataModule
from litlab.data.inputs import ClassLabels, PredictionDataModule
from litlab.masking import mask
from litlab.run_record import RunRecorder
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
    overrides = ["model/optimizer=sgd", "+api_token=${oc.env:LITLAB_TEST_TOKEN}"]
    train_config([*overrides, "hydra.job.name=${oc.env:LITLAB_TEST_TOKEN}"], tmp_path)
    found = run_record.command()
    assert set(overrides) <= set(found["overrides"])
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


def test_more_untracked_files_than_listed_are_counted(repo):
    for k in range(51):  # the record lists 50 untracked files and counts them all
        (repo / f"new{k:02d}.py").write_text("x = 1\n")
    state, _ = run_record.code_state(repo)
    assert state["untracked"] == [f"new{k:02d}.py" for k in range(50)] and state["untracked_count"] == 51
    (repo / "new50.py").unlink()
    assert len(run_record.code_state(repo)[0]["untracked"]) == 50


def test_a_git_killed_by_a_signal_is_a_failure(repo, monkeypatch):
    killed = subprocess.CompletedProcess(["git"], returncode=-9, stdout="", stderr="")
    monkeypatch.setattr(run_record.subprocess, "run", lambda *args, **kwargs: killed)
    with pytest.raises(RuntimeError, match=r"^git status failed$"):
        run_record._git("status", root=repo)


def test_the_code_is_read_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(run_record, "code_state", lambda: calls.append(1) or ({"commit": "c" * 40}, ""))
    run_record.current_code.cache_clear()
    try:
        assert run_record.current_code() == run_record.current_code() == {"commit": "c" * 40}
        assert len(calls) == 1
    finally:
        run_record.current_code.cache_clear()


def test_a_checkpoint_from_other_code_is_warned_about_and_one_from_this_code_is_not(monkeypatch, caplog):
    here = {"commit": "a" * 40, "dirty": False, "diff_sha256": None}
    monkeypatch.setattr(run_record, "current_code", lambda: here)
    with caplog.at_level(logging.WARNING, logger=run_record.__name__):
        run_record.warn_if_code_changed({"code": here})
        assert caplog.messages == []
        run_record.warn_if_code_changed({"code": {**here, "commit": "b" * 40}})
    sentence = run_record.code_change({"code": {**here, "commit": "b" * 40}}, here)
    assert [message.removeprefix("[rank: 0] ") for message in caplog.messages] == [sentence]


def test_installed_packages_are_listed_in_name_order_whatever_the_case():
    names = list(run_record.packages())
    assert names == sorted(names, key=str.lower) and "torch" in names and "PyYAML" in names


def test_the_environment_names_python_cudnn_and_the_cuda_devices_it_sees(monkeypatch):
    environment = run_record.environment()
    assert environment["python"] == platform.python_version()
    cudnn = torch.backends.cudnn
    assert environment["cudnn"] == (cudnn.version() if cudnn.is_available() else None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert run_record.environment()["cuda_devices"] == 3


def test_the_record_goes_to_this_commands_hydra_folder_else_to_the_configs(tmp_path, monkeypatch):
    cfg = train_config([], tmp_path / "hydra")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "paths")
    assert run_record.record_folder(cfg) == tmp_path / "hydra"
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # not run by Hydra: a config composed in Python
    assert run_record.record_folder(cfg) == tmp_path / "paths"


def test_the_checkpoint_a_run_starts_from_is_fingerprinted_when_it_exists(tmp_path):
    ckpt = tmp_path / "start.ckpt"
    ckpt.write_bytes(b"weights")
    record, _, _ = run_record.run_record(train_config([f"+ckpt_path={ckpt}"], tmp_path / "run"))
    assert record["checkpoint"]["files"] == [{"path": str(ckpt), "bytes": 7, "sha256": sha256(ckpt)}]
    for missing in (tmp_path / "missing.ckpt", None):
        assert run_record.run_record(train_config([f"+ckpt_path={missing}"], tmp_path / "run"))[0]["checkpoint"] is None


def test_the_record_as_text_keeps_its_order_its_characters_and_lines_of_120_characters():
    text = run_record.as_text({"task": "train", "host": "café", "argv": ["x" * 50, "y" * 50]})
    assert text.startswith("task: train\nhost: café\n")
    # YAML folds a long text at the first space past column 120 (the first line counts the key too): with
    # one-letter words the first line ends at 122 (120 for a width of 119), with two-letter words the second line
    # at 121 (124 for a width of 121)
    assert [len(line) for line in run_record.as_text({"k": " ".join(["a"] * 100)}).splitlines()] == [122, 81]
    assert [len(line) for line in run_record.as_text({"k": " ".join(["ab"] * 100)}).splitlines()] == [122, 121, 61]


def fake_trainer(rank: int, device: torch.device) -> SimpleNamespace:
    return SimpleNamespace(
        is_global_zero=rank == 0,
        datamodule=None,
        strategy=SimpleNamespace(root_device=device),
        world_size=2,
        loggers=[],
        global_step=0,
    )


def test_the_recorder_writes_from_rank_zero_alone_into_a_new_folder_and_a_diff_only_when_dirty(tmp_path, monkeypatch):
    monkeypatch.setattr(run_record, "code_state", lambda: ({"commit": "c" * 40, "dirty": False}, ""))
    cfg = train_config([], tmp_path)
    folder = tmp_path / "new" / "nested"
    monkeypatch.setattr(run_record, "record_folder", lambda cfg: folder)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    RunRecorder(cfg)
    assert not folder.exists()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    RunRecorder(cfg)
    assert sorted(p.name for p in folder.iterdir()) == [run_record.RECORD_FILE]  # clean: no diff file
    monkeypatch.setattr(run_record, "code_state", lambda: ({"commit": "c" * 40, "dirty": True}, "+x = 1\n"))
    RunRecorder(cfg)
    assert (folder / run_record.DIFF_FILE).read_text() == "+x = 1\n"


def test_the_recorder_adds_the_device_on_rank_zero_only(tmp_path, monkeypatch):
    recorder = RunRecorder(train_config([], tmp_path))
    recorder.setup(fake_trainer(1, torch.device("cpu")), None, "fit")
    assert "device" not in recorder.record
    recorder.setup(fake_trainer(0, torch.device("cpu")), None, "fit")
    assert recorder.record["device"] == {"device": "cpu", "name": platform.processor() or None, "world_size": 2}
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA H100")
    gpu = RunRecorder(train_config([], tmp_path))
    gpu.setup(fake_trainer(0, torch.device("cuda", 0)), None, "fit")
    assert gpu.record["device"] == {"device": "cuda:0", "name": "NVIDIA H100", "world_size": 2}
    other = RunRecorder(train_config([], tmp_path))
    other.setup(fake_trainer(0, torch.device("meta")), None, "fit")  # any other device: the processor's name
    assert other.record["device"]["name"] == (platform.processor() or None)
