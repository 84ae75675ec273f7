"""Optimizer settings reach the built optimizer: weight-decay groups, warm-up, torch.optim classes by name."""

import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import execution_whitelist, instantiate
from torch.utils.data import DataLoader, TensorDataset

from litlab.models import ImageClassifier
from litlab.models.optim import (
    GAN_ADAM,
    build_optimizer,
    build_scheduler,
    check_resumed_schedules,
    configure,
    warmup_length,
)
from litlab.whitelist import EXECUTION_WHITELIST
from tests.helpers.config import train_config


def build(overrides: list[str], tmp_path) -> tuple:
    """The model and datamodule of configs/train.yaml with `overrides`, built as train.py builds them."""
    cfg = train_config(overrides, tmp_path)
    with execution_whitelist(EXECUTION_WHITELIST):
        return instantiate(cfg.model), instantiate(cfg.data)


CNN = {"_target_": "litlab.models.nets.CNN", "image_size": 8, "conv_channels": [4], "dense_units": [8]}
TINY_MLP = {"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]}


def sgd_step_without_gradient(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, bool]:
    """Which parameters one SGD step moves when every gradient is zero: only weight decay can move them."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)  # batch norm's shift starts at 0, which decay leaves where it is
            p.grad = torch.zeros_like(p)
    optimizer.step()
    return {name: not bool((p == 1.0).all()) for name, p in model.named_parameters()}


def test_norm_and_bias_parameters_are_not_decayed_unless_switched_back(tmp_path):
    overrides = ["model.optimizer.name=sgd", "model.optimizer.weight_decay=0.1", "+model.optimizer.momentum=0"]
    model, _ = build(overrides, tmp_path)
    settings = model.hparams.optimizer
    assert settings["decay_norm_bias"] is False  # the default in configs/model/cnn.yaml

    opt = configure(model.parameters(), settings, None, 10)["optimizer"]
    by_decay = {group["weight_decay"]: {id(p) for p in group["params"]} for group in opt.param_groups}
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)]
    biases = [m.bias for m in model.modules() if getattr(m, "bias", None) is not None]
    exempt = {id(p) for norm in norms for p in norm.parameters()} | {id(p) for p in biases}
    assert len(norms) == 3 and len(exempt) > 6  # two conv blocks and one dense layer with batch norm
    assert by_decay[0.0] == exempt
    assert by_decay[0.1] == {id(p) for p in model.parameters()} - exempt
    moved = sgd_step_without_gradient(model, opt)
    assert all(moved[name] == (p.ndim >= 2) for name, p in model.named_parameters())

    old, _ = build([*overrides, "model.optimizer.decay_norm_bias=true"], tmp_path)
    opt = configure(old.parameters(), old.hparams.optimizer, None, 10)["optimizer"]
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.1
    assert all(sgd_step_without_gradient(old, opt).values())


def test_decay_groups_keep_each_groups_learning_rate():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    groups = [{"params": list(net[:2].parameters()), "lr": 0.01}, {"params": list(net[2].parameters()), "lr": 0.1}]
    opt = build_optimizer(groups, name="adamw", lr=0.1, weight_decay=0.05)
    summary = [(group["lr"], group["weight_decay"], len(group["params"])) for group in opt.param_groups]
    # Linear weight | Linear bias, LayerNorm weight and bias | head weight | head bias
    assert summary == [(0.01, 0.05, 1), (0.01, 0.0, 3), (0.1, 0.05, 1), (0.1, 0.0, 1)]

    # One group alone, and a model of one parameter, are split the same way.
    opt = build_optimizer([{"params": list(net[2].parameters()), "lr": 0.1}], name="adamw", weight_decay=0.05)
    assert [(group["lr"], group["weight_decay"]) for group in opt.param_groups] == [(0.1, 0.05), (0.1, 0.0)]
    opt = build_optimizer([net[2].weight], name="adamw", lr=0.1, weight_decay=0.05)
    assert [(group["weight_decay"], group["params"]) for group in opt.param_groups] == [(0.05, [net[2].weight])]


class EveryKindOfParameter(torch.nn.Module):
    """A conv kernel (4-D), a linear weight (2-D), biases and a batch norm (1-D), and a learned scalar (0-D)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.norm = torch.nn.BatchNorm2d(2)
        self.head = torch.nn.Linear(2, 3)
        self.temperature = torch.nn.Parameter(torch.tensor(1.0))


def decay_by_name(net: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, float]:
    """Each parameter's weight decay in `opt`; a parameter in two groups, or in none, fails the test."""
    groups = [(id(p), group["weight_decay"]) for group in opt.param_groups for p in group["params"]]
    assert len(groups) == len(dict(groups)) == len(list(net.parameters()))
    return {name: dict(groups)[id(p)] for name, p in net.named_parameters()}


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd", "torch.optim.NAdam"])
def test_weight_decay_reaches_kernels_and_matrices_only(name):
    net = EveryKindOfParameter()
    assert decay_by_name(net, build_optimizer(net.parameters(), name=name, weight_decay=0.01)) == {
        "conv.weight": 0.01, "conv.bias": 0.0, "norm.weight": 0.0, "norm.bias": 0.0,
        "head.weight": 0.01, "head.bias": 0.0, "temperature": 0.0,
    }  # fmt: skip
    opt = build_optimizer(net.parameters(), name=name, weight_decay=0.01, decay_norm_bias=True)
    assert len(opt.param_groups) == 1 and set(decay_by_name(net, opt).values()) == {0.01}


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd", "torch.optim.NAdam", "torch.optim.LBFGS"])
def test_without_weight_decay_one_group_holds_every_parameter(name):
    # One group, so a learning-rate monitor shows one rate, not one per half of an undecayed split.
    net = EveryKindOfParameter()
    opt = build_optimizer(net.parameters(), name=name, lr=0.05)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 0.05
    assert len(opt.param_groups[0]["params"]) == len(list(net.parameters()))
    assert opt.param_groups[0].get("weight_decay", 0) == 0


def test_optimizer_defaults():
    params = list(torch.nn.Linear(2, 2).parameters())
    adam = build_optimizer(params).param_groups[0]
    assert (adam["lr"], adam["betas"], adam["eps"], adam["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 0.0)
    sgd = build_optimizer(params, name="sgd").param_groups[0]
    assert (sgd["momentum"], sgd["nesterov"], sgd["weight_decay"]) == (0.9, False, 0.0)
    rmsprop = build_optimizer(params, name="rmsprop").param_groups[0]
    assert (rmsprop["momentum"], rmsprop["eps"]) == (0.9, 1e-8)
    gan = build_optimizer(params, **GAN_ADAM).param_groups[0]  # the DCGAN recipe: Adam at 2e-4, beta1 0.5
    assert (gan["lr"], gan["betas"]) == (2e-4, (0.5, 0.999))


def test_nesterov_needs_momentum_and_is_dropped_without_it():
    params = list(torch.nn.Linear(2, 2).parameters())
    assert build_optimizer(params, name="sgd", nesterov=True).param_groups[0]["nesterov"] is True
    # torch refuses Nesterov without momentum; a search that samples momentum 0 gets plain SGD instead.
    plain = build_optimizer(params, name="sgd", nesterov=True, momentum=0.0).param_groups[0]
    assert (plain["nesterov"], plain["momentum"]) == (False, 0.0)


def test_torch_optim_classes_get_the_shared_settings_that_are_set():
    params = list(torch.nn.Linear(2, 2).parameters())
    nadam = build_optimizer(
        params, name="torch.optim.NAdam", betas=(0.8, 0.99), eps=1e-6, kwargs={"momentum_decay": 0.001}
    ).param_groups[0]
    assert (nadam["betas"], nadam["eps"], nadam["momentum_decay"], nadam["weight_decay"]) == (
        (0.8, 0.99),
        1e-6,
        1e-3,
        0,
    )
    sgd = build_optimizer(params, name="torch.optim.SGD", lr=0.1, momentum=0.5, nesterov=True).param_groups[0]
    assert (sgd["momentum"], sgd["nesterov"]) == (0.5, True)
    assert type(build_optimizer(params, name="torch.optim.LBFGS", lr=0.1)) is torch.optim.LBFGS


def lr_per_step(opt: torch.optim.Optimizer, schedule: dict, steps: int) -> list[float]:
    """The learning rate of each of `steps` training steps, stepped every batch as Lightning does."""
    assert schedule["interval"] == "step"
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule["scheduler"].step()
    return rates


def test_cosine_decays_to_zero_by_default_and_to_its_floor():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    rates = lr_per_step(opt, build_scheduler(opt, 4, name="cosine"), 5)
    assert rates == pytest.approx([1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 - math.cos(math.pi / 4)) / 2, 0.0])
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    assert lr_per_step(opt, build_scheduler(opt, 4, name="cosine", min_lr_ratio=0.2), 5)[-1] == pytest.approx(0.2)


def test_one_cycle_rises_to_the_rate_then_falls_over_the_run():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    rates = lr_per_step(opt, build_scheduler(opt, 10, name="onecycle"), 10)
    # torch's defaults: from lr / 25 up to lr at 30% of the run (step 2), down to lr / 25 / 1e4 at the last step
    assert rates[0] == pytest.approx(0.04) and rates[2] == pytest.approx(1.0) and rates[9] == pytest.approx(4e-6)
    assert rates[:3] == sorted(rates[:3]) and rates[2:] == sorted(rates[2:], reverse=True)
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    rates = lr_per_step(opt, build_scheduler(opt, 10, name="onecycle", pct_start=0.5), 10)
    assert rates.index(max(rates)) == 4 and max(rates) == pytest.approx(1.0)  # the peak at half the run


def test_plateau_cuts_the_rate_after_patience_epochs_without_progress():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    schedule = build_scheduler(opt, 100, name="plateau")
    assert (schedule["interval"], schedule["monitor"]) == ("epoch", "val/loss")
    rates = []
    for _ in range(8):  # the same validation loss every epoch
        schedule["scheduler"].step(1.0)
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([1.0] * 6 + [0.1] * 2)  # the default patience is 5 epochs, the factor 0.1
    schedule = build_scheduler(opt, 100, name="plateau", factor=0.5, patience=1, monitor="val/acc")
    assert schedule["monitor"] == "val/acc"
    for _ in range(3):
        schedule["scheduler"].step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_plateau_in_max_mode_keeps_the_rate_while_the_metric_rises():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    schedule = build_scheduler(opt, 100, name="plateau", patience=1, monitor="val/acc", mode="max")
    for accuracy in (0.5, 0.6, 0.7, 0.8):  # in min mode a rising metric cuts the rate after two epochs
        schedule["scheduler"].step(accuracy)
    assert opt.param_groups[0]["lr"] == 1.0
    for _ in range(3):
        schedule["scheduler"].step(0.8)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_warmup_is_cut_to_leave_one_step_and_needs_steps():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    assert lr_per_step(opt, build_scheduler(opt, 5, name="none", warmup_steps=10), 6) == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    )
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    assert lr_per_step(opt, build_scheduler(opt, 5, name="cosine", warmup_steps=10), 6) == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0, 0.0]
    )  # the cosine's one step at the full rate, and the floor after the run
    assert (warmup_length(100), warmup_length(100, 5), warmup_length(100, warmup_fraction=0.1)) == (0, 5, 10)
    # A run without training steps (limit_train_batches=0) has nothing to warm up.
    assert build_scheduler(opt, 0, name="none", warmup_steps=3) is None
    assert type(build_scheduler(opt, 0, name="onecycle")["scheduler"]).__name__ == "OneCycleLR"


def test_a_resumed_one_cycle_schedule_must_cover_the_run():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters())
    one_cycle, cosine = (build_scheduler(opt, 10, name=name)["scheduler"] for name in ("onecycle", "cosine"))

    def trainer(needed: int, *schedulers) -> SimpleNamespace:
        configs = [SimpleNamespace(scheduler=s) for s in schedulers]
        return SimpleNamespace(estimated_stepping_batches=needed, max_epochs=6, lr_scheduler_configs=configs)

    with pytest.raises(ValueError, match="planned for 10 steps, but trainer.max_epochs=6 needs 12: resume with"):
        check_resumed_schedules(trainer(12, cosine, one_cycle))
    check_resumed_schedules(trainer(10, one_cycle))  # the run it was planned for
    check_resumed_schedules(trainer(8, one_cycle))  # a shorter run stops before the schedule ends
    one_step = build_scheduler(opt, 1, name="onecycle")["scheduler"]  # a run of a single step
    with pytest.raises(ValueError, match="planned for 1 steps, but trainer.max_epochs=6 needs 2"):
        check_resumed_schedules(trainer(2, one_step))
    check_resumed_schedules(trainer(12, cosine))  # a cosine schedule carries on at its floor


def expected_warmup_cosine(k: int, lr: float, warmup: int, total: int, eta_min: float) -> float:
    if k < warmup:
        return lr * (k + 1) / (warmup + 1)
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * (k - warmup) / (total - warmup))) / 2


class LearningRates(L.Callback):
    def __init__(self):
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_warmup_then_cosine_gives_the_formula_rate_at_every_step(tmp_path):
    overrides = [
        "model.optimizer.lr=0.01",
        "model.scheduler.name=cosine",
        "model.scheduler.warmup_steps=4",
        "+model.scheduler.min_lr_ratio=0.1",
        "data.batch_size=64",
    ]
    (model, datamodule), rates = build(overrides, tmp_path), LearningRates()
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=12, limit_val_batches=0, callbacks=[rates], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 12
    assert rates.rates == pytest.approx([expected_warmup_cosine(k, 0.01, 4, 12, 0.001) for k in range(12)])


def test_warmup_then_cosine_rates_step_by_step():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=0.01)
    schedule = build_scheduler(opt, 12, name="cosine", warmup_steps=4, min_lr_ratio=0.1)
    expected = [expected_warmup_cosine(k, 0.01, 4, 12, 0.001) for k in range(12)]
    assert lr_per_step(opt, schedule, 13) == pytest.approx([*expected, 0.001])  # at the floor after the run


def test_warmup_fraction_and_constant_rate_after_warmup():
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    scheduler = build_scheduler(opt, 20, name="none", warmup_fraction=0.15)["scheduler"]
    rates = []
    for _ in range(8):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert rates == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0])  # 3 warm-up steps of 20


def test_warmup_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="onecycle warms up by itself"):
        ImageClassifier(CNN, scheduler={"name": "onecycle", "warmup_steps": 10})
    with pytest.raises(ValueError, match="one of model.scheduler.warmup_steps and model.scheduler.warmup_fraction"):
        ImageClassifier(CNN, scheduler={"name": "cosine", "warmup_steps": 10, "warmup_fraction": 0.1})


def test_any_torch_optim_class_by_name_with_its_arguments(tmp_path):
    overrides = [
        "model.optimizer.name=torch.optim.NAdam",
        "model.optimizer.lr=0.02",
        "+model.optimizer.kwargs.momentum_decay=0.001",
    ]
    model, _ = build(overrides, tmp_path)
    opt = configure(model.parameters(), model.hparams.optimizer, None, 10)["optimizer"]
    assert type(opt) is torch.optim.NAdam
    assert opt.param_groups[0]["lr"] == 0.02 and opt.param_groups[0]["momentum_decay"] == 0.001


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        ({"name": "torch.optim.Adamm"}, r"torch.optim has no optimizer class of that name; use one such as"),
        ({"name": "torch.optim.lr_scheduler"}, r"torch.optim has no optimizer class of that name"),
        ({"name": "nadam"}, r"choose one of adam, adamw, rmsprop, sgd, or any torch.optim.<Class>"),
        ({"name": "torch.optim.NAdam", "kwargs": {"nesterov": True}}, r"torch.optim.NAdam takes no argument nesterov"),
        ({"name": "adam", "kwargs": {"foreach": True}}, r"kwargs applies to torch.optim classes only"),
        ({"name": "adam", "betas1": 0.5}, r"Unknown optimizer setting\(s\) model.optimizer.betas1"),
        ({"name": "torch.optim.LBFGS", "weight_decay": 0.1}, r"torch.optim.LBFGS takes no argument weight_decay"),
        ({"name": "torch.optim.NAdam", "momentum": 0.9}, r"torch.optim.NAdam takes no argument momentum"),
        ({"lr": 0}, r"The learning rate must be positive, got model.optimizer.lr=0\.$"),
        ({"lr": -0.1}, r"The learning rate must be positive, got model.optimizer.lr=-0.1\.$"),
    ],
)
def test_a_wrong_optimizer_fails_when_the_model_is_built(optimizer, message):
    with pytest.raises(ValueError, match=message) as error:
        ImageClassifier(CNN, optimizer=optimizer)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ({"name": "step"}, r"Unknown scheduler 'step' \(model.scheduler.name\): choose one of none, cosine, onecycle"),
        ({"name": "cosine", "eta_min": 0.1}, r"Unknown scheduler setting\(s\) model.scheduler.eta_min: the settings"),
        ({"name": "cosine", "warmup_steps": -1}, r"warmup_fraction in \[0, 1\), got -1 and 0.0\.$"),
        ({"name": "cosine", "warmup_fraction": 1.0}, r"warmup_fraction in \[0, 1\), got 0 and 1.0\.$"),
        ({"name": "cosine", "warmup_fraction": -0.1}, r"warmup_fraction in \[0, 1\), got 0 and -0.1\.$"),
        ({"name": "cosine", "warmup_fraction": 1.5}, r"warmup_fraction in \[0, 1\), got 0 and 1.5\.$"),
        ({"name": "plateau", "warmup_fraction": 0.1}, r"cosine and constant \(none\) schedules, not 'plateau'"),
        ({"name": "plateau", "mode": "maximize"}, r"model.scheduler.mode must be min .* or max .*, got 'maximize'\.$"),
    ],
)
def test_a_wrong_scheduler_fails_when_the_model_is_built(scheduler, message):
    with pytest.raises(ValueError, match=message) as error:
        ImageClassifier(CNN, scheduler=scheduler)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")


@pytest.mark.parametrize(
    "scheduler",
    [
        None,
        {"name": None},
        {"name": "Cosine", "warmup_fraction": 0.0},
        {"name": "cosine", "warmup_fraction": 0.5},
        {"name": "none", "warmup_steps": 3},
        {"name": "onecycle", "pct_start": 0.25},
        {"name": "plateau", "patience": 2},
        {"name": "plateau", "monitor": "val/acc", "mode": "max"},
    ],
)
def test_every_documented_schedule_is_accepted(scheduler):
    model = ImageClassifier(CNN, scheduler=scheduler)
    opt = build_optimizer(model.parameters())
    built = build_scheduler(opt, 10, **(scheduler or {}))
    assert (built is None) == (scheduler is None or scheduler["name"] is None)


def random_images(n: int = 12, batch_size: int = 4) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@pytest.mark.parametrize("name", ["cosine", "plateau"])
def test_each_schedule_steps_at_its_interval_in_training(name):
    # lr 1e-6 and no batch norm: the validation loss stays put (within the plateau's threshold), so the
    # plateau schedule cuts the rate once patience epochs have gone by without progress.
    scheduler = {"name": name, **({"patience": 1, "factor": 0.5} if name == "plateau" else {})}
    model = ImageClassifier(TINY_MLP, optimizer={"name": "sgd", "lr": 1e-6}, scheduler=scheduler)
    rates, loader = LearningRates(), random_images()
    trainer = L.Trainer(
        max_epochs=5, callbacks=[rates], logger=False, num_sanity_val_steps=0, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, loader, loader)
    if name == "cosine":  # every batch, over the 15 steps of the run
        assert rates.rates == pytest.approx([1e-6 * (1 + math.cos(math.pi * k / 15)) / 2 for k in range(15)])
    else:  # once an epoch, on val/loss: epochs 1 and 2 without progress, cut after the second
        assert rates.rates == pytest.approx([1e-6] * 9 + [5e-7] * 6)
