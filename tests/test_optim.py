"""Optimizer settings reach the built optimizer: weight-decay groups, warm-up, torch.optim classes by name."""

import math

import lightning as L
import pytest
import torch
from hydra.utils import execution_whitelist, instantiate

from litlab.models import ImageClassifier
from litlab.models.optim import build_optimizer, build_scheduler, configure
from litlab.utils.whitelist import EXECUTION_WHITELIST
from tests.helpers.config import train_config


def build(overrides: list[str], tmp_path) -> tuple:
    """The model and datamodule of configs/train.yaml with `overrides`, built as train.py builds them."""
    cfg = train_config(overrides, tmp_path)
    with execution_whitelist(EXECUTION_WHITELIST):
        return instantiate(cfg.model), instantiate(cfg.data)


CNN = {"_target_": "litlab.models.nets.CNN", "image_size": 8, "conv_channels": [4], "dense_units": [8]}


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
    ],
)
def test_a_wrong_optimizer_fails_when_the_model_is_built(optimizer, message):
    with pytest.raises(ValueError, match=message) as error:
        ImageClassifier(CNN, optimizer=optimizer)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")
