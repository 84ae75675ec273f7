"""One way to load a checkpoint: every caller refuses a bad one with the same clear sentence, naming its own option."""

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning import LightningDataModule, Trainer

from litlab.checkpoints.load import HINTS, CheckpointError, CheckpointFile
from litlab.checkpoints.record import data_record, litlab_record
from litlab.data import DigitsDataModule, ImageFolderUnpairedDataModule
from litlab.data.base import InMemoryImageDataModule
from litlab.data.pixels import UNIT
from litlab.data.text import TextCorpusDataModule
from litlab.eval import evaluate
from litlab.export import export
from litlab.models import DistillationModule, ImageClassifier
from litlab.models.gan_eval import load_judge
from litlab.predict import predict
from tests.helpers.config import eval_config, export_config, predict_config

STUDENT = {"_target_": "litlab.models.nets.CNN", "in_channels": 1, "image_size": 8, "conv_channels": [4]}


class WritesAFile:
    """Unpickling this runs code: it creates the file named by `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def callers(tmp_path: Path) -> dict[str, tuple[str, Callable[[Path], object]]]:
    """Each place that loads a checkpoint: the option a user sets, and a call that loads `path` through it."""
    return {
        "eval": ("ckpt_path", lambda path: evaluate(eval_config([f"ckpt_path={path}"], tmp_path / "eval"))),
        "predict": (
            "ckpt_path",
            lambda path: predict(predict_config([f"ckpt_path={path}", f"inputs={tmp_path}"], tmp_path / "predict")),
        ),
        "export": ("ckpt_path", lambda path: export(export_config([f"ckpt_path={path}"], tmp_path / "export"))),
        "gan judge": ("model.classifier_ckpt", lambda path: load_judge(path)),
        "kd teacher": ("model.teacher_ckpt", lambda path: DistillationModule(STUDENT, teacher_ckpt=str(path))),
    }


@pytest.fixture
def bad_checkpoints(tmp_path, classifier_ckpt) -> dict[str, tuple[Path, str]]:
    """Bad checkpoints and what the sentence about each must say."""
    content = torch.load(classifier_ckpt, weights_only=True)
    content["litlab"]["module"] = content["litlab"]["datamodule"] = "os.system"
    content["hyper_parameters"]["net"]["_target_"] = "os.system"
    foreign = tmp_path / "foreign.ckpt"
    torch.save(content, foreign)
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(Path(classifier_ckpt).read_bytes()[:5000])  # a copy cut short
    pickled = tmp_path / "pickled.ckpt"
    torch.save({**content, "extra": WritesAFile(tmp_path / "code_ran")}, pickled)
    return {
        "non-litlab class": (foreign, "'os.system'"),
        "corrupt file": (corrupt, "is corrupt or not a PyTorch checkpoint"),
        "missing file": (tmp_path / "missing.ckpt", "does not exist"),
        "pickled code": (pickled, "holds pickled Python objects besides tensors and plain values"),
    }


@pytest.mark.parametrize("caller", ["eval", "predict", "export", "gan judge", "kd teacher"])
def test_every_caller_refuses_bad_checkpoints_in_one_sentence(tmp_path, bad_checkpoints, caller):
    option, load = callers(tmp_path)[caller]
    for case, (path, problem) in bad_checkpoints.items():
        with pytest.raises(CheckpointError) as raised:
            load(path)
        message = str(raised.value)
        assert message.startswith(f"Checkpoint {option}='{path}' "), (case, message)
        assert problem in message, (case, message)
        assert "\n" not in message and message.endswith(f": {HINTS[option]}."), (case, message)  # what to pass
    assert not (tmp_path / "code_ran").exists()  # weights_only=True: the pickled code never ran


def test_the_record_holds_what_predicting_needs_as_plain_values(classifier_ckpt, word2vec_ckpt, cyclegan_ckpt):
    classifier = CheckpointFile.open(classifier_ckpt)
    assert classifier.data == {
        "channels": 1,
        "image_size": [8, 8],
        "mean": [0.3054],
        "std": [0.376],
        "background": [0],
        "class_names": [str(i) for i in range(10)],
    }
    assert CheckpointFile.open(word2vec_ckpt).data["lowercase"] is True
    cyclegan = CheckpointFile.open(cyclegan_ckpt).data
    assert cyclegan == {"image_size": [28, 28], "mean": [0.5], "std": [0.5], "background": [0]}
    net, spec = classifier.network()
    assert spec["_target_"] == "litlab.models.nets.CNN" and not net.training
    module = classifier.module()
    assert all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), module.net.state_dict().values(), strict=True)
    )


def test_a_litlab_name_that_is_not_a_lightning_module_is_refused(tmp_path, classifier_ckpt):
    content = torch.load(classifier_ckpt, weights_only=True)
    content["litlab"]["module"] = "litlab.checkpoints.load.CheckpointFile"
    path = tmp_path / "odd.ckpt"
    torch.save(content, path)
    with pytest.raises(
        CheckpointError, match="names litlab.checkpoints.load.CheckpointFile, which is not a LightningModule"
    ):
        CheckpointFile.open(path).module()
    os.remove(path)


# --- CheckpointFile.open and what it rebuilds, on a checkpoint written by a real (one-step) training run -------------

NET = {
    "_target_": "litlab.models.nets.CNN",
    "in_channels": 1,
    "image_size": 8,
    "conv_channels": [4],
    "dense_units": [8],
}
HINT = HINTS["ckpt_path"]


@pytest.fixture(scope="module")
def one_step_ckpt(tmp_path_factory) -> Path:
    """An ImageClassifier on the scikit-learn digits after one training step, saved by Lightning's Trainer."""
    trainer = Trainer(
        accelerator="cpu",
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(ImageClassifier(NET), datamodule=DigitsDataModule(batch_size=64))
    path = tmp_path_factory.mktemp("one_step") / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def rewritten(source: Path, path: Path, change: Callable[[dict], object]) -> Path:
    """A copy of the checkpoint at `source` with `change` applied to its content, saved at `path`."""
    content = torch.load(source, weights_only=True)
    change(content)
    torch.save(content, path)
    return path


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_and_the_code_never_runs(tmp_path, one_step_ckpt):
    path = rewritten(one_step_ckpt, tmp_path / "pickled.ckpt", lambda c: c.update(extra=WritesAFile(tmp_path / "ran")))
    with pytest.raises(CheckpointError) as raised:
        CheckpointFile.open(path)
    assert str(raised.value) == (
        f"Checkpoint ckpt_path='{path}' holds pickled Python objects besides tensors and plain values, which litlab "
        f"never loads (weights_only=True): {HINT}."
    )
    assert not (tmp_path / "ran").exists()


def test_rebuilding_uses_the_one_read_and_runs_no_code_from_a_swapped_file(tmp_path, one_step_ckpt):
    """The file is read once: swapped for a malicious one after it was opened, it is not read again."""
    path = tmp_path / "model.ckpt"
    path.write_bytes(one_step_ckpt.read_bytes())
    checkpoint = CheckpointFile.open(path)
    rewritten(one_step_ckpt, path, lambda c: c.update(extra=WritesAFile(tmp_path / "ran")))
    module, datamodule = checkpoint.module(), checkpoint.datamodule()
    assert not (tmp_path / "ran").exists()
    saved = torch.load(one_step_ckpt, weights_only=True)
    for name, tensor in module.state_dict().items():
        assert torch.equal(tensor, saved["state_dict"][name]), name
    assert dict(datamodule.hparams) == saved["datamodule_hyper_parameters"]


def test_a_file_damaged_after_it_was_opened_still_rebuilds_from_the_one_read(tmp_path, one_step_ckpt):
    path = tmp_path / "model.ckpt"
    path.write_bytes(one_step_ckpt.read_bytes())
    checkpoint = CheckpointFile.open(path)
    path.write_bytes(one_step_ckpt.read_bytes()[:10])
    saved = torch.load(one_step_ckpt, weights_only=True)
    rebuilt = checkpoint.module().state_dict()
    assert rebuilt.keys() == saved["state_dict"].keys()
    assert all(torch.equal(rebuilt[name], saved["state_dict"][name]) for name in rebuilt)
    assert type(checkpoint.datamodule()).__name__ == "DigitsDataModule"


def test_each_command_reads_its_checkpoint_once(tmp_path, one_step_ckpt, monkeypatch):
    """eval.py, predict.py and export.py rebuild module, datamodule and network from one `torch.load`."""
    reads = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: reads.append(args[0]) or load(*args, **kwargs))
    checkpoint = CheckpointFile.open(one_step_ckpt)
    checkpoint.module(), checkpoint.datamodule(), checkpoint.network()
    assert reads == [one_step_ckpt]


def damaged_byte_order(good: bytes, path: Path) -> None:
    """The archive rewritten with its byte-order record damaged."""
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"middle" if item.filename.endswith("/byteorder") else data)


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda good, path: path.write_bytes(b""), "EOFError"),  # empty
        (lambda good, path: path.write_bytes(good[: len(good) // 2]), "OSError"),  # a copy cut short
        (lambda good, path: path.write_bytes(good[:10]), "RuntimeError"),  # only the start of the archive header
        (lambda good, path: path.write_bytes(bytes(range(256)) * 4), "UnpicklingError"),  # binary junk
        (lambda good, path: path.write_bytes(b"hello: this is a text file\n"), "KeyError"),  # text
        (damaged_byte_order, "ValueError"),
    ],
)
def test_a_damaged_file_is_called_corrupt_naming_the_option_and_what_to_pass(tmp_path, one_step_ckpt, damage, error):
    path = tmp_path / "model.ckpt"
    damage(one_step_ckpt.read_bytes(), path)
    with pytest.raises(CheckpointError) as raised:
        CheckpointFile.open(path, option="model.teacher_ckpt")
    assert str(raised.value) == (
        f"Checkpoint model.teacher_ckpt='{path}' is corrupt or not a PyTorch checkpoint ({error}): "
        f"{HINTS['model.teacher_ckpt']}."
    )


@pytest.mark.parametrize("content", [{"weights": torch.zeros(2)}, ["state_dict"], torch.zeros(2)])
def test_a_file_without_a_lightning_state_dict_is_refused(tmp_path, content):
    path = tmp_path / "weights.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=r"'\S+weights.pt' holds no Lightning state_dict: pass ckpt_path="):
        CheckpointFile.open(path)


def test_a_missing_file_is_named_before_and_when_it_is_read(tmp_path, one_step_ckpt):
    missing = tmp_path / "missing.ckpt"
    option = "data.ckpt"
    expected = (
        f"Checkpoint {option}='{missing}' does not exist: point {option} at a .ckpt file written by litlab's train.py."
    )
    for read in (CheckpointFile.require, CheckpointFile.open):
        with pytest.raises(CheckpointError) as raised:
            read(missing, option)
        assert str(raised.value) == expected
    with pytest.raises(CheckpointError, match="does not exist"):
        CheckpointFile.open(tmp_path)  # a folder is no checkpoint file
    assert CheckpointFile.require(one_step_ckpt) is None


def test_the_record_names_the_classes_the_pixels_and_the_data(one_step_ckpt):
    checkpoint = CheckpointFile.open(one_step_ckpt)
    assert checkpoint.record == {
        "module": "litlab.models.classifier.ImageClassifier",
        "datamodule": "litlab.data.digits.DigitsDataModule",
        "pixels": {"mean": [0.3054], "std": [0.376], "background": [0]},
        "data": {"channels": 1, "image_size": [8, 8], "class_names": [str(i) for i in range(10)]},
        "run": None,  # a Trainer built outside litlab's task functions records no run
    }
    assert checkpoint.module_name == "ImageClassifier"
    assert checkpoint.pixels == DigitsDataModule.pixels and checkpoint.pixels.background == (0,)
    assert checkpoint.data == {**checkpoint.record["data"], "mean": [0.3054], "std": [0.376], "background": [0]}


def test_module_datamodule_and_network_are_rebuilt_with_the_trained_weights(tmp_path, one_step_ckpt):
    checkpoint = CheckpointFile.open(one_step_ckpt)
    saved = torch.load(one_step_ckpt, weights_only=True)["state_dict"]
    module = checkpoint.module()
    assert type(module) is ImageClassifier and module.pixels == DigitsDataModule.pixels
    assert all(torch.equal(saved[key], value) for key, value in module.state_dict().items())
    datamodule = checkpoint.datamodule()
    assert type(datamodule) is DigitsDataModule and datamodule.hparams.batch_size == 64
    net, spec = checkpoint.network()
    assert spec == NET and not net.training
    assert all(torch.equal(saved[f"net.{key}"], value) for key, value in net.state_dict().items())
    # A model trained with compile=true saves its weights under net._orig_mod.
    compiled = rewritten(
        one_step_ckpt,
        tmp_path / "compiled.ckpt",
        lambda c: c.update(state_dict={k.replace("net.", "net._orig_mod.", 1): v for k, v in c["state_dict"].items()}),
    )
    net, _ = CheckpointFile.open(compiled).network()
    assert all(torch.equal(saved[f"net.{key}"], value) for key, value in net.state_dict().items())


def test_a_checkpoint_without_a_litlab_record_is_refused(tmp_path, one_step_ckpt):
    for record in ("missing", None):
        change = (lambda c: c.pop("litlab")) if record == "missing" else (lambda c: c.update(litlab=None))
        checkpoint = CheckpointFile.open(rewritten(one_step_ckpt, tmp_path / "plain.ckpt", change))
        assert checkpoint.module_name == "?" and checkpoint.record == {}
        with pytest.raises(CheckpointError, match=r"does not name a litlab LightningModule \(found None\); litlab "):
            checkpoint.module()
        with pytest.raises(CheckpointError, match=r"does not name a litlab LightningDataModule \(found None\)"):
            checkpoint.datamodule()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (
            "os.system",
            "does not name a litlab LightningModule (found 'os.system'); litlab rebuilds only its own classes and "
            "those of TRUSTED_PACKAGES (litlab's whitelist module)",
        ),
        (
            "litlab.models.Renamed",
            "names litlab.models.Renamed, which this version of litlab does not have (ImportError)",
        ),
        (
            "litlab..ImageClassifier",
            "names litlab..ImageClassifier, which this version of litlab does not have (ValueError)",
        ),
        (
            "litlab.data.digits.DigitsDataModule",
            "names litlab.data.digits.DigitsDataModule, which is not a LightningModule",
        ),
    ],
)
def test_only_litlab_lightning_modules_are_rebuilt(tmp_path, one_step_ckpt, name, problem):
    path = rewritten(one_step_ckpt, tmp_path / "named.ckpt", lambda c: c["litlab"].update(module=name))
    with pytest.raises(CheckpointError) as raised:
        CheckpointFile.open(path).module()
    assert str(raised.value) == f"Checkpoint ckpt_path='{path}' {problem}: {HINT}."


def test_only_litlab_datamodules_are_rebuilt(tmp_path, one_step_ckpt):
    name = "litlab.models.classifier.ImageClassifier"
    path = rewritten(one_step_ckpt, tmp_path / "named.ckpt", lambda c: c["litlab"].update(datamodule=name))
    with pytest.raises(CheckpointError, match=f"names {name}, which is not a LightningDataModule: pass ckpt_path="):
        CheckpointFile.open(path).datamodule()


def first_key(content: dict) -> str:
    return next(iter(content["state_dict"]))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda c: c["state_dict"].update({first_key(c): torch.zeros(3)}),
            "could not be rebuilt as ImageClassifier (RuntimeError: Error(s) in loading state_dict for "
            "ImageClassifier: size mismatch for ",
        ),
        (
            lambda c: c["hyper_parameters"].pop("net"),
            "could not be rebuilt as ImageClassifier (TypeError: ImageClassifier.__init__() missing 1 required "
            "positional argument: 'net')",
        ),
        (
            lambda c: c["hyper_parameters"].update(optimizer={"_target_": "torch.optim.Adamax2"}),
            "could not be rebuilt as ImageClassifier (ValueError: model.optimizer._target_=torch.optim.Adamax2 names "
            "no class that can be imported: fix the name, or install its package.)",
        ),
        (
            lambda c: c["hyper_parameters"].update(scheduler={"_target_": "os.system", "command": "touch /tmp/x"}),
            "could not be rebuilt as ImageClassifier (ValueError: model.scheduler._target_=os.system is outside the "
            "packages configs and checkpoints may name",
        ),
        (
            lambda c: c["hyper_parameters"]["net"].update(_target_="os.system"),
            "names the network 'os.system' (under hyper_parameters.net), which is none of the networks litlab "
            "rebuilds from a checkpoint (litlab's, torchvision's and those of TRUSTED_PACKAGES in litlab's whitelist "
            "module): ",
        ),
    ],
)
def test_a_module_that_cannot_be_rebuilt_is_named_with_the_whole_cause_on_one_line(
    tmp_path, one_step_ckpt, change, problem
):
    path = rewritten(one_step_ckpt, tmp_path / "broken.ckpt", change)
    with pytest.raises(CheckpointError) as raised:
        CheckpointFile.open(path).module()
    assert str(raised.value).startswith(f"Checkpoint ckpt_path='{path}' {problem}")
    assert str(raised.value).endswith(f": {HINT}.") and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c["datamodule_hyper_parameters"].update(colour=True), "TypeError: InMemoryImageDataModule.__init__"),
        (lambda c: c["datamodule_hyper_parameters"].update(val_fraction=5), "ValueError: data.val_fraction must be"),
    ],
)
def test_a_datamodule_that_cannot_be_rebuilt_is_named_with_the_cause(tmp_path, one_step_ckpt, change, problem):
    path = rewritten(one_step_ckpt, tmp_path / "broken.ckpt", change)
    with pytest.raises(CheckpointError) as raised:
        CheckpointFile.open(path).datamodule()
    assert str(raised.value).startswith(
        f"Checkpoint ckpt_path='{path}' could not rebuild its DigitsDataModule ({problem}"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda c: c["state_dict"].update({first_key(c): torch.zeros(3)}),
            "holds weights that do not fit its network litlab.models.nets.CNN (RuntimeError: Error(s) in loading "
            "state_dict for CNN: size mismatch for features.0.weight: copying a param with shape torch.Size([3]) from "
            "checkpoint, the shape in current model is torch.Size([4, 1, 3, 3]).)",
        ),
        (
            lambda c: c["hyper_parameters"]["net"].update(colour=True),
            "holds weights that do not fit its network litlab.models.nets.CNN (TypeError: CNN.__init__() got an "
            "unexpected keyword argument 'colour')",
        ),
        (
            lambda c: c["hyper_parameters"]["net"].update(dropout=2.0),
            "holds weights that do not fit its network litlab.models.nets.CNN (ValueError: dropout probability has "
            "to be between 0 and 1, but got 2.0)",
        ),
        (
            lambda c: c["hyper_parameters"]["net"].update(_target_="os.system"),
            "names the network 'os.system' (under hyper_parameters.net), which is none of the networks litlab "
            "rebuilds from a checkpoint (litlab's, torchvision's and those of TRUSTED_PACKAGES in litlab's whitelist "
            "module)",
        ),
        (
            lambda c: c["hyper_parameters"]["net"].pop("_target_"),
            "names the network 'None' (under hyper_parameters.net), which is none of the networks litlab rebuilds "
            "from a checkpoint (litlab's, torchvision's and those of TRUSTED_PACKAGES in litlab's whitelist module)",
        ),
        (
            lambda c: (c["hyper_parameters"].pop("net"), c["litlab"].update(module="litlab.models.Word2Vec")),
            "holds no network spec (hyper_parameters.net): it is a Word2Vec, not an image classifier",
        ),
        (
            lambda c: c.pop("hyper_parameters"),
            "holds no network spec (hyper_parameters.net): it is a ImageClassifier, not an image classifier",
        ),
    ],
)
def test_a_network_that_cannot_be_rebuilt_is_named_with_the_cause(tmp_path, one_step_ckpt, change, problem):
    path = rewritten(one_step_ckpt, tmp_path / "broken.ckpt", change)
    with pytest.raises(CheckpointError) as raised:
        CheckpointFile.open(path).network()
    assert str(raised.value) == f"Checkpoint ckpt_path='{path}' {problem}: {HINT}."


class Shapes(InMemoryImageDataModule):
    """A user's own image datamodule: three classes of 12x10 colour images, no class names."""

    num_classes = 3
    pixels = UNIT

    def load_split(self, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n = 60 if train else 20
        return torch.randint(0, 256, (n, 3, 12, 10), dtype=torch.uint8), torch.arange(n) % 3


class UserText(LightningDataModule):
    """A user's own text datamodule: a vocabulary, and no lowercase setting (litlab's tokeniser lower-cases)."""

    vocab = {"cat": 0, "sat": 1}


class Frames(LightningDataModule):
    """A datamodule with an input shape but no classes (an autoencoder's, say)."""

    dims = (1, 16, 16)


def test_data_record_keeps_what_predicting_needs_from_each_kind_of_datamodule(tmp_path):
    assert data_record(Shapes()) == {"channels": 3, "image_size": [12, 10], "class_names": ["0", "1", "2"]}
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The cat sat\nthe Dog ran\n" * 5)
    for lowercase in (False, True):
        text = TextCorpusDataModule(corpus=str(corpus), lowercase=lowercase, min_count=1)
        text.setup("fit")
        assert data_record(text) == {"lowercase": lowercase}
    assert data_record(UserText()) == {"lowercase": True}
    unpaired = ImageFolderUnpairedDataModule(root=str(tmp_path), load_size=40, crop_size=32)
    assert data_record(unpaired) == {"image_size": [32, 32]}
    assert data_record(Frames()) is None and data_record(LightningDataModule()) is None and data_record(None) is None


def test_a_module_saved_without_a_datamodule_records_no_data():
    assert litlab_record(ImageClassifier(NET), None) == {
        "module": "litlab.models.classifier.ImageClassifier",
        "datamodule": None,
        "pixels": None,
        "data": None,
        "run": None,  # trained outside litlab's task functions: no run record
    }


def test_saved_hyperparameters_the_class_no_longer_takes_are_left_out_as_lightning_does(tmp_path, one_step_ckpt):
    """ImageClassifier takes no **kwargs: a key it does not know is dropped, not passed (a TypeError)."""
    path = rewritten(one_step_ckpt, tmp_path / "extra.ckpt", lambda c: c["hyper_parameters"].update(retired=1))
    module = CheckpointFile.open(path).module()
    assert "retired" not in module.hparams
    saved = torch.load(one_step_ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(tensor, saved[name]) for name, tensor in module.state_dict().items())


def test_a_datamodule_gets_back_the_state_it_saved_and_none_when_it_saved_none(tmp_path, one_step_ckpt, monkeypatch):
    loaded = []
    monkeypatch.setattr(DigitsDataModule, "load_state_dict", lambda self, state: loaded.append(state))
    CheckpointFile.open(one_step_ckpt).datamodule()
    assert loaded == []  # Lightning stores a datamodule's state only when it has some
    path = rewritten(one_step_ckpt, tmp_path / "state.ckpt", lambda c: c.update(DigitsDataModule={"epoch_seen": 3}))
    CheckpointFile.open(path).datamodule()
    assert loaded == [{"epoch_seen": 3}]
