"""litlab's speed measures: each does what it claims, `speedups=false` turns it off, and what each relies on in
Lightning (and torch) still holds."""

import ctypes
import importlib.util
import os

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.profilers import PassThroughProfiler
from torch.utils.data import DataLoader, TensorDataset

from litlab import speed
from litlab.models import ImageClassifier
from litlab.models.base import LitlabModule
from litlab.train import train
from tests.helpers.config import train_config

VAR = speed.NVML_CHECK


@pytest.fixture(autouse=True)
def _measures_back_on():
    yield
    speed.apply(True)


def _no_library(name):
    raise OSError(f"{name}: cannot open shared object file")


# --- what the measures rely on in Lightning and torch


def test_lightning_turns_the_nvml_check_on_at_import(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    # Runs lightning.fabric's package code again, into a fresh module object (its submodules stay imported).
    spec = importlib.util.find_spec("lightning.fabric")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert os.environ[VAR] == "1"


def test_torch_reads_the_nvml_check_on_every_call(monkeypatch):
    monkeypatch.setenv(VAR, "1")
    assert torch.cuda._nvml_based_avail()
    monkeypatch.delenv(VAR)
    assert not torch.cuda._nvml_based_avail()


class _Counted(LitlabModule):
    """A LitlabModule counting Lightning's assignments of `_current_fx_name`."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def __setattr__(self, name, value):
        if name == "_current_fx_name":
            object.__setattr__(self, "fx_name_sets", getattr(self, "fx_name_sets", 0) + 1)
        super().__setattr__(name, value)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _CountingProfiler(speed.NoProfiler):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def profile(self, action_name):
        self.calls += 1
        return super().profile(action_name)


class _PerStep(Callback):
    def __init__(self) -> None:
        self.snapshots = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.snapshots.append((pl_module.fx_name_sets, trainer.profiler.calls))


def test_lightning_names_each_hook_on_the_module_and_profiles_each_hook():
    model, profiler, per_step = _Counted(), _CountingProfiler(), _PerStep()
    data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=8)
    trainer = Trainer(
        accelerator="cpu",
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        profiler=profiler,
        callbacks=[per_step],
    )
    trainer.fit(model, data)
    (names_2, profiles_2), (names_3, profiles_3) = per_step.snapshots[1:3]
    # One training step: the measures pay off only while Lightning does these per hook (dozens a step).
    assert names_3 - names_2 >= 20
    assert profiles_3 - profiles_2 >= 20


# --- each measure, and the switch


@pytest.mark.parametrize(("cdll", "kept"), [(_no_library, False), (lambda name: object(), True)])
def test_the_nvml_check_goes_only_without_nvml(cdll, kept, monkeypatch):
    monkeypatch.setenv(VAR, "1")
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    speed.apply(True)
    assert (VAR in os.environ) is kept
    speed.apply(False)
    assert os.environ[VAR] == "1"


def test_an_unset_nvml_check_stays_unset(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.setattr(ctypes, "CDLL", _no_library)
    speed.apply(True)
    speed.apply(False)
    assert VAR not in os.environ


@pytest.mark.parametrize("enabled", [True, False])
def test_hook_names_skip_module_bookkeeping_only_when_enabled(enabled, monkeypatch):
    model = ImageClassifier({"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]})
    head = torch.nn.Linear(2, 2)
    module_setattr = torch.nn.Module.__setattr__
    through_module = []

    def counted(self, name, value):
        through_module.append(name)
        module_setattr(self, name, value)

    monkeypatch.setattr(torch.nn.Module, "__setattr__", counted)
    speed.apply(enabled)
    model._current_fx_name = "training_step"
    model.head = head
    assert model._current_fx_name == "training_step" and "_current_fx_name" not in dict(model.named_children())
    assert "head" in dict(model.named_children()) and "head.weight" in model.state_dict()
    assert through_module == (["head"] if enabled else ["_current_fx_name", "head"])


@pytest.mark.parametrize(
    ("overrides", "profiler"),
    [
        ([], speed.NoProfiler),
        (["speedups=false"], speed.NoProfiler),
        (["speedups=false", "trainer.profiler=null"], PassThroughProfiler),
        (["trainer.profiler=simple"], "SimpleProfiler"),
    ],
)
def test_the_speedups_key_and_the_profiler_reach_the_run(overrides, profiler, tmp_path, monkeypatch):
    """`speedups` switches the process-wide measures; the profiler is the Trainer setting the config shows."""
    monkeypatch.setenv(VAR, "1")
    monkeypatch.setattr(ctypes, "CDLL", _no_library)
    cfg = train_config(["train=false", "test=false", "~logger", *overrides], tmp_path)
    _, objects = train(cfg)
    trainer = objects["trainer"]
    if isinstance(profiler, str):
        assert type(trainer.profiler).__name__ == profiler
    else:
        assert type(trainer.profiler) is profiler
    enabled = "speedups=false" not in overrides
    assert speed.FastHookNames.enabled is enabled
    assert (VAR in os.environ) is not enabled
    with trainer.profiler.profile("a hook"), trainer.profiler.profile("a nested hook"):
        pass
