"""The loggers litlab adds to Lightning's (src/litlab/loggers.py): W&B offline without an account, a CSV file that
keeps the rows of every stage."""

import copy
import csv
import logging

import pytest
from lightning.pytorch.loggers.logger import DummyExperiment
from lightning_utilities.core.rank_zero import rank_zero_only

from litlab import loggers
from litlab.loggers import ContinuingCSVLogger, wandb_logger


@pytest.fixture
def no_wandb_account(monkeypatch, tmp_path):
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


@pytest.mark.parametrize(
    "environ, offline",
    [
        ({}, True),  # no account: offline, and said so
        ({"WANDB_MODE": "online"}, False),  # W&B's own setting has the last word
        ({"WANDB_API_KEY": "k" * 40}, False),  # an account: online
    ],
)
def test_wandb_is_offline_without_an_account_unless_wandb_mode_says_otherwise(
    environ, offline, tmp_path, monkeypatch, no_wandb_account, caplog
):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    save_dir = tmp_path / "new" / "run"  # made, parents and all
    with caplog.at_level(logging.INFO, logger=loggers.__name__):
        logger = wandb_logger(str(save_dir), project="litlab-tests")
    assert logger._offline is offline and save_dir.is_dir()
    assert any("logging offline" in message for message in caplog.messages) is offline
    assert wandb_logger(str(save_dir), offline=False)._offline is False  # an explicit choice is kept


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_stage_run_from_a_copy_of_the_logger_appends_its_rows_to_every_earlier_stages(tmp_path):
    logger = ContinuingCSVLogger(str(tmp_path))
    test_copy = copy.deepcopy(logger)  # what a spawned test process gets: the logger as the run started it
    logger.log_metrics({"train/loss": 0.5}, step=0)
    logger.save()
    test_copy.log_metrics({"test/acc": 0.9}, step=1)
    test_copy.save()
    rows = read_rows(logger.experiment.metrics_file_path)
    assert [(row["step"], row["train/loss"], row["test/acc"]) for row in rows] == [("0", "0.5", ""), ("1", "", "0.9")]
    test_copy.save()  # nothing new to write: the file stays as it is
    assert read_rows(logger.experiment.metrics_file_path) == rows


def test_a_second_logger_in_the_same_folder_takes_the_next_version(tmp_path):
    first, second = ContinuingCSVLogger(str(tmp_path)), ContinuingCSVLogger(str(tmp_path))
    assert (first.version, second.version) == (0, 1)


def test_ranks_other_than_zero_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = ContinuingCSVLogger(str(tmp_path / "csv"))
    assert isinstance(logger.experiment, DummyExperiment) and not (tmp_path / "csv").exists()
