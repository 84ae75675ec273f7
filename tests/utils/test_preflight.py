"""What a command is given, checked before it starts: the checkpoint, the inputs, the data folders."""

import os

import pytest
from omegaconf import OmegaConf

from litlab.checkpoints.load import CheckpointError
from litlab.data.base import DatasetNotFoundError
from litlab.data.inputs import InputError
from litlab.utils import preflight
from litlab.utils.preflight import (
    as_list,
    before_evaluation,
    before_export,
    before_prediction,
    before_training,
    checkpoint_path,
)


def config(tmp_path, **settings) -> OmegaConf:
    return OmegaConf.create({"paths": {"log_dir": str(tmp_path / "logs")}, "train": True, **settings})


def test_a_checkpoint_command_names_what_to_pass(tmp_path):
    with pytest.raises(CheckpointError, match=r"^No checkpoint given: pass ckpt_path=.* to eval\.py\.$"):
        checkpoint_path(config(tmp_path, ckpt_path=None), "eval.py")
    last = "ckpt_path=last continues a training run in train.py; predict.py needs a checkpoint file"
    with pytest.raises(CheckpointError, match=rf"^{last}: .*\(training writes last\.ckpt there\)\.$"):
        checkpoint_path(config(tmp_path, ckpt_path="last"), "predict.py")
    older, newer = (tmp_path / "logs" / "train" / "runs" / name / "checkpoints" / "last.ckpt" for name in ("a", "b"))
    for path in (older, newer):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    os.utime(older, (newer.stat().st_mtime + 10,) * 2)  # newer by its time, not its name
    with pytest.raises(CheckpointError, match=f"the newest under {tmp_path / 'logs'} is {older}"):
        checkpoint_path(config(tmp_path, ckpt_path="last"), "predict.py")
    assert checkpoint_path(config(tmp_path, ckpt_path=str(newer)), "eval.py") == str(newer)


def test_missing_data_folders_are_refused_before_the_run(tmp_path):
    root = tmp_path / "horse2zebra"
    for split in ("trainA", "trainB", "testA"):
        (root / split).mkdir(parents=True)
    unpaired = {"_target_": "litlab.data.ImageFolderUnpairedDataModule", "root": str(root)}
    with pytest.raises(DatasetNotFoundError, match=f"^Folder {root / 'testB'} is missing: an unpaired dataset needs"):
        before_training(config(tmp_path, data=unpaired))
    (root / "testB").mkdir()
    before_training(config(tmp_path, data=unpaired))
    before_training(config(tmp_path, data={**unpaired, "root": "???"}))  # a missing value is Hydra's to name

    corpus = {"_target_": "litlab.data.TextCorpusDataModule", "corpus": str(tmp_path / "words.txt")}
    with pytest.raises(DatasetNotFoundError, match=f"^Corpus '{tmp_path / 'words.txt'}' does not exist"):
        before_training(config(tmp_path, data=corpus))
    before_training(config(tmp_path, data={**corpus, "corpus": "text8"}))  # downloaded when missing


def test_the_checkpoint_comes_before_the_inputs_and_both_before_the_run(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        before_prediction(config(tmp_path, ckpt_path=str(tmp_path / "x.ckpt"), inputs=str(tmp_path / "y.png")))
    with pytest.raises(CheckpointError, match="does not exist"):  # train.py resumes only when it trains
        before_training(config(tmp_path, ckpt_path=str(tmp_path / "x.ckpt")))
    before_training(config(tmp_path, ckpt_path=str(tmp_path / "x.ckpt"), train=False))
    before_training(config(tmp_path, ckpt_path="last"))  # resolved by the run


def test_inputs_are_checked_when_given(tmp_path, classifier_ckpt):
    with pytest.raises(InputError, match=f"^Input '{tmp_path / 'y.png'}' does not exist"):
        before_prediction(config(tmp_path, ckpt_path=str(classifier_ckpt), inputs=[str(tmp_path / "y.png")]))
    before_prediction(config(tmp_path, ckpt_path=str(classifier_ckpt), query="word"))  # word2vec asks no files
    assert as_list(None) == [] and as_list("a") == ["a"] and as_list(OmegaConf.create([1, "b"])) == ["1", "b"]


def test_last_is_told_by_its_value_from_paths_that_sort_around_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = "".join(["la", "st"])  # "last" as a config read from a file holds it: not the interned literal
    with pytest.raises(CheckpointError, match="^ckpt_path=last continues a training run"):
        checkpoint_path(config(tmp_path, ckpt_path=built), "eval.py")
    assert checkpoint_path(config(tmp_path, ckpt_path="model.ckpt"), "eval.py") == "model.ckpt"  # after "last"
    before_training(config(tmp_path, ckpt_path=built))  # resolved by the run
    with pytest.raises(CheckpointError, match="does not exist"):  # a relative path after "last" is still checked
        before_training(config(tmp_path, ckpt_path="x.ckpt"))


def test_every_missing_folder_is_found_and_the_first_named(tmp_path):
    root = tmp_path / "horse2zebra"
    (root / "trainA").mkdir(parents=True)
    unpaired = {"_target_": "litlab.data.ImageFolderUnpairedDataModule", "root": str(root)}
    with pytest.raises(DatasetNotFoundError, match=f"^Folder {root / 'trainB'} is missing"):
        before_training(config(tmp_path, data=unpaired))


def test_a_corpus_is_checked_whatever_its_name_and_text8_is_told_by_its_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = {"_target_": "litlab.data.TextCorpusDataModule", "corpus": "words.txt"}  # relative, after "text8"
    with pytest.raises(DatasetNotFoundError, match="^Corpus 'words.txt' does not exist"):
        before_training(config(tmp_path, data=corpus))
    before_training(config(tmp_path, data={**corpus, "corpus": "".join(["text", "8"])}))


@pytest.mark.parametrize(
    "check, settings",
    [
        (before_training, {}),
        (before_evaluation, {}),
        (before_prediction, {"inputs": None}),
        (before_export, {}),
    ],
)
def test_the_checkpoint_is_mapped_not_read_before_the_run(check, settings, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(preflight.CheckpointFile, "open", lambda path, **kwargs: opened.append((path, kwargs)))
    check(config(tmp_path, ckpt_path="run.ckpt", **settings))
    assert opened == [("run.ckpt", {"mmap": True})]  # pages only what the check reads, however large the file
