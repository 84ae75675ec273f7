"""The one-sentence errors (src/litlab/utils/errors.py), unit by unit; tests/integration/test_faults.py runs the
commands that print them."""

import copy
import logging
import sys

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import OmegaConf, read_write

from litlab.utils import errors
from litlab.utils.errors import JobFailedError, OneSentenceErrors, explain, report_errors
from tests.helpers.config import train_config


def test_a_refused_target_is_named_as_the_config_wrote_it():
    err = Exception(
        "Target 'torch.optim.adam.Adam' (resolved from 'torch.optim.Adam') is not in the Hydra execution whitelist."
    )
    assert "names `torch.optim.Adam`, which configs may not run" in explain(err)
    plain = Exception("Target 'os.system' is not in the Hydra execution whitelist.")
    assert explain(plain).startswith("A config names `os.system`, which configs may not run")


def test_a_failed_instantiation_without_a_config_key_names_its_target():
    err = InstantiationException("Error in call to target 'litlab.models.ImageClassifier':\nValueError('bad')")
    err.__cause__ = ValueError("bad width")
    assert explain(err) == "ValueError: bad width (building `litlab.models.ImageClassifier`)"


def test_a_folder_that_cannot_be_made_is_explained_by_the_os(tmp_path, monkeypatch):
    def refused(dir):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(errors.tempfile, "mkdtemp", refused)
    assert errors._unwritable(str(tmp_path / "a" / "b")) == f"Permission denied in {tmp_path}"

    def no_reason(dir):
        raise OSError("no reason given")

    monkeypatch.setattr(errors.tempfile, "mkdtemp", no_reason)
    assert errors._unwritable(str(tmp_path / "a")) == f"OSError in {tmp_path}"


def test_a_grid_sweep_prints_a_failed_jobs_sentence_alone_and_hands_on_other_errors(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, err, tb: seen.append(err))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "multirun")}}})
    OneSentenceErrors().on_multirun_start(config)
    hook = sys.excepthook
    OneSentenceErrors().on_multirun_start(config)  # a second sweep in the process wraps the hook once
    assert sys.excepthook is hook
    hook(JobFailedError, JobFailedError("data.batch_size must be a positive integer"), None)
    assert capsys.readouterr().err == "data.batch_size must be a positive integer\n" and seen == []
    other = KeyError("x")
    hook(KeyError, other, None)
    assert seen == [other] and capsys.readouterr().err == ""


def test_with_hydra_full_error_the_hook_is_left_alone(tmp_path, monkeypatch):
    def previous(kind, err, tb):
        return None

    monkeypatch.setattr(sys, "excepthook", previous)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    OneSentenceErrors().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sys.excepthook is previous


@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir"])
def test_a_folder_that_can_be_made_passes(key, tmp_path):
    config = OmegaConf.create({"hydra": {"run": {"dir": str(tmp_path / "r")}, "sweep": {"dir": str(tmp_path / "s")}}})
    OneSentenceErrors()._check(config, key)
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()  # checked, not made


def test_a_cause_that_names_its_target_gets_no_second_mention():
    err = InstantiationException("Error in call to target 'litlab.models.ImageClassifier':\nValueError('x')")
    err.__cause__ = ValueError("litlab.models.ImageClassifier needs a net")
    assert explain(err) == "ValueError: litlab.models.ImageClassifier needs a net"
    anonymous = InstantiationException("no target named here")
    anonymous.__cause__ = ValueError("bad")
    assert explain(anonymous) == "ValueError: bad"


def test_a_failing_job_of_a_grid_sweep_ends_it_with_its_sentence(tmp_path, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    train_config([], tmp_path)  # Hydra's config of a job: its sweeper is Hydra's basic (grid) sweeper
    monkeypatch.setattr(HydraConfig.instance(), "cfg", copy.deepcopy(HydraConfig.instance().cfg))  # put back after
    with read_write(HydraConfig.get()):
        HydraConfig.get().mode = RunMode.MULTIRUN
    with pytest.raises(JobFailedError, match=r"^ValueError: bad batch size \[.*HYDRA_FULL_ERROR=1 prints it here\]$"):
        with report_errors():
            raise ValueError("bad batch size")


def test_another_sweepers_failing_job_keeps_its_exception(tmp_path, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    train_config([], tmp_path)
    monkeypatch.setattr(HydraConfig.instance(), "cfg", copy.deepcopy(HydraConfig.instance().cfg))
    with read_write(HydraConfig.get()):
        HydraConfig.get().mode = RunMode.MULTIRUN
        HydraConfig.get().sweeper = {"_target_": "custom.Sweeper"}  # records a failed trial itself, as Optuna's does
    with pytest.raises(ValueError, match="^bad batch size$"):
        with report_errors():
            raise ValueError("bad batch size")


def test_with_hydra_full_error_a_single_run_raises_its_exception(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    train_config([], tmp_path)  # a single run
    with pytest.raises(ValueError, match="^bad batch size$"):
        with report_errors():
            raise ValueError("bad batch size")


def test_a_missing_accelerator_is_named_with_the_cpu_as_the_fix():
    err = RuntimeError("CUDAAccelerator can not run on your system since the accelerator is not available.")
    assert explain(err).startswith("trainer.accelerator=gpu asks for a GPU, but this machine has none: run on the CPU")
    assert explain(RuntimeError("No supported mps backend found")).startswith("trainer.accelerator=mps asks for a MPS")


def test_an_error_raised_from_another_is_explained_by_itself():
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as err:
        assert explain(err) == "ValueError: outer"


def test_the_sentence_names_the_first_log_file(tmp_path, monkeypatch):
    root = logging.getLogger()
    handlers = [logging.FileHandler(tmp_path / name, delay=True) for name in ("train.log", "other.log")]
    monkeypatch.setattr(root, "handlers", handlers)
    assert errors.sentence(ValueError("x")) == (
        f"ValueError: x [full traceback in {tmp_path / 'train.log'}; HYDRA_FULL_ERROR=1 prints it here]"
    )
