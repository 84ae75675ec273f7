"""Optimizer and scheduler mappings reach the built objects: any class by `_target_`, weight-decay groups,
warm-up, lengths from the trainer, Lightning's keys, and one sentence for each wrong setting."""

import functools
import inspect
import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import execution_whitelist, instantiate
from lion_pytorch import Lion
from omegaconf import OmegaConf
from pytorch_optimizer.lr_scheduler.rex import REXScheduler
from torch.utils.data import DataLoader, TensorDataset

from litlab import CONFIG_DIR
from litlab.models import ImageClassifier
from litlab.models.optim import (
    ADAM,
    GAN_ADAM,
    check_optimization,
    check_resumed_schedules,
    configure,
    decay_groups,
    run_length,
    warmup_length,
)
from litlab.whitelist import EXECUTION_WHITELIST, OPTIMIZER_WHITELIST
from tests.helpers.config import train_config

PRESETS = CONFIG_DIR / "model"


def build(overrides: list[str], tmp_path) -> tuple:
    """The model and datamodule of configs/train.yaml with `overrides`, built as train.py builds them."""
    cfg = train_config(overrides, tmp_path)
    with execution_whitelist(EXECUTION_WHITELIST):
        return instantiate(cfg.model), instantiate(cfg.data)


def preset(kind: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(PRESETS / kind / f"{name}.yaml"))


def run(steps: int = 10, max_epochs: int = 5) -> SimpleNamespace:
    """What `configure` reads of a Trainer: the run's optimizer steps and epochs."""
    return SimpleNamespace(estimated_stepping_batches=steps, max_epochs=max_epochs)


def optimizer(target: str = "torch.optim.SGD", params=None, **settings) -> torch.optim.Optimizer:
    params = torch.nn.Linear(2, 2).parameters() if params is None else params
    return configure(params, {"_target_": target, **settings})["optimizer"]


def schedule(scheduler: dict, steps: int = 10, lr: float = 1.0, max_epochs: int = 5) -> tuple:
    """An SGD at `lr` and the Lightning scheduler config `configure` gives it."""
    built = configure(
        torch.nn.Linear(2, 2).parameters(), {"_target_": "torch.optim.SGD", "lr": lr}, scheduler, run(steps, max_epochs)
    )
    return built["optimizer"], built.get("lr_scheduler")


CNN = {"_target_": "litlab.models.nets.CNN", "image_size": 8, "conv_channels": [4], "dense_units": [8]}
TINY_MLP = {"_target_": "litlab.models.nets.MLP", "image_size": 8, "hidden_sizes": [16]}
COSINE = "torch.optim.lr_scheduler.CosineAnnealingLR"
ONE_CYCLE = "torch.optim.lr_scheduler.OneCycleLR"
PLATEAU = "torch.optim.lr_scheduler.ReduceLROnPlateau"


def sgd_step_without_gradient(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, bool]:
    """Which parameters one SGD step moves when every gradient is zero: only weight decay can move them."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)  # batch norm's shift starts at 0, which decay leaves where it is
            p.grad = torch.zeros_like(p)
    optimizer.step()
    return {name: not bool((p == 1.0).all()) for name, p in model.named_parameters()}


def test_norm_and_bias_parameters_are_not_decayed_unless_switched_back(tmp_path):
    overrides = ["model/optimizer=sgd", "model.optimizer.weight_decay=0.1", "model.optimizer.momentum=0"]
    model, _ = build(overrides, tmp_path)
    settings = model.hparams.optimizer
    assert settings["decay_norm_bias"] is False  # the default of configs/model/optimizer/sgd.yaml

    opt = configure(model.parameters(), settings)["optimizer"]
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
    opt = configure(old.parameters(), old.hparams.optimizer)["optimizer"]
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.1
    assert all(sgd_step_without_gradient(old, opt).values())


def test_decay_groups_keep_each_groups_learning_rate():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    groups = [{"params": list(net[:2].parameters()), "lr": 0.01}, {"params": list(net[2].parameters()), "lr": 0.1}]
    opt = optimizer("torch.optim.AdamW", groups, lr=0.1, weight_decay=0.05)
    summary = [(group["lr"], group["weight_decay"], len(group["params"])) for group in opt.param_groups]
    # Linear weight | Linear bias, LayerNorm weight and bias | head weight | head bias
    assert summary == [(0.01, 0.05, 1), (0.01, 0.0, 3), (0.1, 0.05, 1), (0.1, 0.0, 1)]

    # One group alone, and a model of one parameter, are split the same way.
    opt = optimizer("torch.optim.AdamW", [{"params": list(net[2].parameters()), "lr": 0.1}], weight_decay=0.05)
    assert [(group["lr"], group["weight_decay"]) for group in opt.param_groups] == [(0.1, 0.05), (0.1, 0.0)]
    opt = optimizer("torch.optim.AdamW", [net[2].weight], lr=0.1, weight_decay=0.05)
    assert [(group["weight_decay"], group["params"]) for group in opt.param_groups] == [(0.05, [net[2].weight])]
    assert decay_groups([]) == []


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


CLASSES = ["torch.optim.Adam", "torch.optim.AdamW", "torch.optim.RMSprop", "torch.optim.SGD", "torch.optim.NAdam",
           "lion_pytorch.Lion", "pytorch_optimizer.AdaBelief"]  # fmt: skip


@pytest.mark.parametrize("target", CLASSES)
def test_weight_decay_reaches_kernels_and_matrices_only(target):
    net = EveryKindOfParameter()
    assert decay_by_name(net, optimizer(target, net.parameters(), weight_decay=0.01)) == {
        "conv.weight": 0.01, "conv.bias": 0.0, "norm.weight": 0.0, "norm.bias": 0.0,
        "head.weight": 0.01, "head.bias": 0.0, "temperature": 0.0,
    }  # fmt: skip
    opt = optimizer(target, net.parameters(), weight_decay=0.01, decay_norm_bias=True)
    assert len(opt.param_groups) == 1 and set(decay_by_name(net, opt).values()) == {0.01}


@pytest.mark.parametrize("target", [*CLASSES, "torch.optim.LBFGS"])
def test_without_weight_decay_one_group_holds_every_parameter(target):
    # One group, so a learning-rate monitor shows one rate, not one per half of an undecayed split.
    net = EveryKindOfParameter()
    opt = optimizer(target, net.parameters(), lr=0.05, **({} if target == "torch.optim.LBFGS" else {"weight_decay": 0}))
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 0.05
    assert len(opt.param_groups[0]["params"]) == len(list(net.parameters()))
    assert opt.param_groups[0].get("weight_decay", 0) == 0


def test_a_class_that_decays_by_default_gets_the_groups_too():
    net = EveryKindOfParameter()
    opt = optimizer("torch.optim.AdamW", net.parameters())  # AdamW's own default weight_decay is 0.01
    assert decay_by_name(net, opt)["conv.weight"] == 0.01 and decay_by_name(net, opt)["conv.bias"] == 0.0


def test_presets_and_defaults_keep_the_recipes_of_the_short_names():
    params = list(torch.nn.Linear(2, 2).parameters())
    adam = configure(params, preset("optimizer", "adam"))["optimizer"]
    assert type(adam) is torch.optim.Adam
    assert (adam.defaults["lr"], adam.defaults["betas"], adam.defaults["eps"]) == (1e-3, (0.9, 0.999), 1e-8)
    sgd = configure(params, preset("optimizer", "sgd"))["optimizer"].defaults
    assert (sgd["momentum"], sgd["nesterov"], sgd["weight_decay"]) == (0.9, False, 0.0)
    rmsprop = configure(params, preset("optimizer", "rmsprop"))["optimizer"].defaults
    assert (rmsprop["momentum"], rmsprop["eps"]) == (0.9, 1e-8)
    assert configure(params, preset("optimizer", "adamw"))["optimizer"].defaults["weight_decay"] == 0.01
    gan = configure(params, GAN_ADAM)["optimizer"].defaults  # the DCGAN recipe: Adam at 2e-4, beta1 0.5
    assert (gan["lr"], gan["betas"]) == (2e-4, (0.5, 0.999))  # YAML's list becomes the tuple torch declares
    assert check_optimization(None) == (ADAM, None) and check_optimization(None)[0] is not ADAM
    gan, _ = check_optimization(None, default=GAN_ADAM)
    gan["betas"][0] = 0.9
    assert GAN_ADAM["betas"] == [0.5, 0.999]  # a module's copy shares nothing with the default


def test_any_class_of_torch_optim_or_a_package_gets_its_own_arguments():
    params = list(torch.nn.Linear(2, 2).parameters())
    nadam = optimizer("torch.optim.NAdam", params, betas=[0.8, 0.99], eps=1e-6, momentum_decay=0.001).defaults
    assert (nadam["betas"], nadam["eps"], nadam["momentum_decay"], nadam["weight_decay"]) == (
        (0.8, 0.99),
        1e-6,
        1e-3,
        0,
    )
    sgd = optimizer("torch.optim.sgd.SGD", params, lr=0.1, momentum=0.5, nesterov=True).defaults
    assert (sgd["momentum"], sgd["nesterov"]) == (0.5, True)
    assert type(optimizer("torch.optim.LBFGS", params, lr=0.1)) is torch.optim.LBFGS
    lion = optimizer("lion_pytorch.Lion", params, lr=3e-4, _partial_=True)  # lightning-hydra-template's spelling
    assert type(lion) is Lion and lion.defaults["lr"] == 3e-4
    # A class that takes **kwargs gets every key but litlab's.
    belief = optimizer("pytorch_optimizer.AdaBelief", params, lr=0.01, decay_norm_bias=True, rectify=True)
    assert belief.defaults["rectify"] is True and "decay_norm_bias" not in belief.defaults


def test_a_groups_lr_scale_multiplies_the_optimizers_rate():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    groups = [{"params": list(net[0].parameters()), "lr_scale": 0.1}, {"params": list(net[1].parameters())}]
    opt = optimizer("torch.optim.SGD", groups, lr=0.5, weight_decay=0.01)
    assert [group["lr"] for group in opt.param_groups] == pytest.approx([0.05, 0.05, 0.5, 0.5])
    assert [group["weight_decay"] for group in opt.param_groups] == [0.01, 0.0, 0.01, 0.0]


def test_optimizer_settings_reach_the_model_from_the_command_line(tmp_path):
    overrides = ["model.optimizer._target_=torch.optim.NAdam", "model.optimizer.lr=0.02",
                 "+model.optimizer.momentum_decay=0.001"]  # fmt: skip
    model, _ = build(overrides, tmp_path)
    opt = configure(model.parameters(), model.hparams.optimizer)["optimizer"]
    assert type(opt) is torch.optim.NAdam
    assert opt.param_groups[0]["lr"] == 0.02 and opt.param_groups[0]["momentum_decay"] == 0.001
    model, _ = build(["model/optimizer=rmsprop", "model/scheduler=plateau"], tmp_path)
    assert model.hparams.optimizer["_target_"] == "torch.optim.RMSprop"
    assert model.hparams.scheduler["_target_"] == PLATEAU and type(model.hparams.scheduler) is dict


def lr_per_step(opt: torch.optim.Optimizer, config: dict, steps: int) -> list[float]:
    """The learning rate of each of `steps` training steps, stepped every batch as Lightning does."""
    assert config["interval"] == "step"
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        config["scheduler"].step()
    return rates


def test_cosine_spans_the_run_and_decays_to_its_floor():
    opt, config = schedule(preset("scheduler", "cosine"), steps=4)
    rates = lr_per_step(opt, config, 5)
    assert rates == pytest.approx([1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 - math.cos(math.pi / 4)) / 2, 0.0])
    opt, config = schedule({**preset("scheduler", "cosine"), "eta_min": 0.2}, steps=4)
    assert lr_per_step(opt, config, 5)[-1] == pytest.approx(0.2)
    opt, config = schedule({**preset("scheduler", "cosine"), "T_max": 2}, steps=4)  # a length set is kept
    assert lr_per_step(opt, config, 3) == pytest.approx([1.0, 0.5, 0.0])


def test_one_cycle_rises_to_the_optimizers_rate_then_falls_over_the_run():
    opt, config = schedule(preset("scheduler", "onecycle"), steps=10)
    rates = lr_per_step(opt, config, 10)
    # torch's defaults: from lr / 25 up to lr at 30% of the run (step 2), down to lr / 25 / 1e4 at the last step
    assert rates[0] == pytest.approx(0.04) and rates[2] == pytest.approx(1.0) and rates[9] == pytest.approx(4e-6)
    assert rates[:3] == sorted(rates[:3]) and rates[2:] == sorted(rates[2:], reverse=True)
    opt, config = schedule({**preset("scheduler", "onecycle"), "pct_start": 0.5}, steps=10)
    rates = lr_per_step(opt, config, 10)
    assert rates.index(max(rates)) == 4 and max(rates) == pytest.approx(1.0)  # the peak at half the run
    opt, config = schedule({**preset("scheduler", "onecycle"), "max_lr": 0.5}, steps=10)  # a peak set is kept
    assert max(lr_per_step(opt, config, 10)) == pytest.approx(0.5)


def test_one_cycle_peaks_at_each_groups_own_rate():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    groups = [{"params": list(net[0].parameters()), "lr_scale": 0.1}, {"params": list(net[1].parameters())}]
    built = configure(groups, {"_target_": "torch.optim.SGD", "lr": 1.0}, preset("scheduler", "onecycle"), run(10))
    assert built["lr_scheduler"]["scheduler"].total_steps == 10
    rates = lr_per_group(built, 10)
    assert [max(group) for group in zip(*rates, strict=True)] == pytest.approx([0.1, 1.0])


def lr_per_group(built: dict, steps: int) -> list[list[float]]:
    opt, scheduler = built["optimizer"], built["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(steps):
        rates.append([group["lr"] for group in opt.param_groups])
        opt.step()
        scheduler.step()
    return rates


def test_plateau_cuts_the_rate_after_patience_epochs_without_progress():
    opt, config = schedule(preset("scheduler", "plateau"))
    assert (config["interval"], config["monitor"]) == ("epoch", "val/loss")
    rates = []
    for _ in range(8):  # the same validation loss every epoch
        config["scheduler"].step(1.0)
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([1.0] * 6 + [0.1] * 2)  # the preset's patience is 5 epochs, its factor 0.1
    opt, config = schedule({**preset("scheduler", "plateau"), "factor": 0.5, "patience": 1, "monitor": "val/acc"})
    assert config["monitor"] == "val/acc"
    for _ in range(3):
        config["scheduler"].step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)


def test_plateau_in_max_mode_keeps_the_rate_while_the_metric_rises():
    opt, config = schedule({**preset("scheduler", "plateau"), "patience": 1, "monitor": "val/acc", "mode": "max"})
    for accuracy in (0.5, 0.6, 0.7, 0.8):  # in min mode a rising metric cuts the rate after two epochs
        config["scheduler"].step(accuracy)
    assert opt.param_groups[0]["lr"] == 1.0
    for _ in range(3):
        config["scheduler"].step(0.8)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_lightnings_keys_go_to_the_scheduler_config_and_nowhere_else():
    scheduler = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2, "interval": "epoch", "frequency": 3,
                 "monitor": "val/acc", "strict": False, "name": "lr/custom", "_partial_": True}  # fmt: skip
    _, config = schedule(scheduler)
    assert {key: value for key, value in config.items() if key != "scheduler"} == {
        "interval": "epoch", "frequency": 3, "monitor": "val/acc", "strict": False, "name": "lr/custom"
    }  # fmt: skip
    assert config["scheduler"].step_size == 2
    # Lightning's default interval is epoch; a mapping without _target_ (warm-up only) steps every batch.
    assert schedule({"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1})[1]["interval"] == "epoch"
    assert schedule({"warmup_steps": 2})[1]["interval"] == "step"


def test_a_length_left_unset_spans_the_run_in_the_schedules_interval():
    linear = {"_target_": "torch.optim.lr_scheduler.LinearLR", "start_factor": 1.0, "end_factor": 0.5}
    assert schedule({**linear, "interval": "step"}, steps=40)[1]["scheduler"].total_iters == 40
    assert schedule({**linear, "interval": "epoch"}, steps=40, max_epochs=6)[1]["scheduler"].total_iters == 6
    # Lightning steps the schedule every `frequency` intervals: 6 epochs at frequency 4 are 2 steps of it.
    assert schedule({**linear, "interval": "epoch", "frequency": 4}, max_epochs=6)[1]["scheduler"].total_iters == 2
    assert schedule({**preset("scheduler", "cosine"), "T_max": None}, steps=7)[1]["scheduler"].T_max == 7
    assert (
        schedule({**preset("scheduler", "cosine"), "warmup_steps": 3}, steps=10)[1]["scheduler"]._schedulers[1].T_max
        == 7
    )  # the cosine runs over what the warm-up leaves
    # A class without a length argument needs no trainer.
    built = configure(
        torch.nn.Linear(2, 2).parameters(), ADAM, {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 2}
    )
    assert type(built["lr_scheduler"]["scheduler"]) is torch.optim.lr_scheduler.StepLR


@pytest.mark.parametrize(
    ("trainer", "interval"),
    [(run(steps=math.inf), "step"), (run(max_epochs=-1), "epoch"), (run(max_epochs=None), "epoch")],
)
def test_a_run_without_a_set_length_cannot_fill_a_schedules_length(trainer, interval):
    with pytest.raises(ValueError, match=r"^The run has no set length for the schedule to span: set trainer.max_"):
        run_length(trainer, interval)
    assert run_length(run(steps=10, max_epochs=3), "step", 3) == 4 and run_length(run(max_epochs=3), "epoch") == 3


def test_a_third_party_schedule_gets_the_runs_length_and_the_optimizers_peak():
    rex = {"_target_": "pytorch_optimizer.lr_scheduler.rex.REXScheduler", "interval": "step"}
    opt, config = schedule(rex, steps=8, lr=0.3)
    assert type(config["scheduler"]) is REXScheduler
    assert (config["scheduler"].total_steps, config["scheduler"].max_lr) == (8, 0.3)
    # REX's own start is its floor (0); then step t of 8 runs at 0.3 (1 - t/8) / (1 - t/16), down to 0 at the end.
    rex_rate = [0.3 * (1 - t / 8) / (1 - t / 16) for t in range(1, 9)]
    assert lr_per_step(opt, config, 9) == pytest.approx([0.0, *rex_rate])


def test_warmup_is_cut_to_leave_one_step_and_needs_steps():
    opt, config = schedule({"warmup_steps": 10}, steps=5)
    assert lr_per_step(opt, config, 6) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    opt, config = schedule({**preset("scheduler", "cosine"), "warmup_steps": 10}, steps=5)
    assert lr_per_step(opt, config, 6) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 0.0])
    # the cosine's one step at the full rate, and the floor after the run
    assert (warmup_length(100), warmup_length(100, 5), warmup_length(100, warmup_fraction=0.1)) == (0, 5, 10)
    # A run without training steps (limit_train_batches=0) has nothing to warm up; a constant rate is no schedule.
    assert schedule({"warmup_steps": 3}, steps=0)[1] is None
    assert schedule(preset("scheduler", "none"))[1] is None and schedule({})[1] is None
    one_cycle = schedule(preset("scheduler", "onecycle"), steps=0)[1]["scheduler"]  # still one step to plan
    assert type(one_cycle) is torch.optim.lr_scheduler.OneCycleLR and one_cycle.total_steps == 1


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
        "model/scheduler=cosine",
        "model.scheduler.warmup_steps=4",
        "model.scheduler.eta_min=0.001",
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
    cosine = {**preset("scheduler", "cosine"), "warmup_steps": 4, "eta_min": 0.001}
    opt, config = schedule(cosine, steps=12, lr=0.01)
    expected = [expected_warmup_cosine(k, 0.01, 4, 12, 0.001) for k in range(12)]
    assert lr_per_step(opt, config, 13) == pytest.approx([*expected, 0.001])  # at the floor after the run


def test_warmup_fraction_and_constant_rate_after_warmup():
    opt, config = schedule({"warmup_fraction": 0.15}, steps=20)
    assert lr_per_step(opt, config, 8) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0])  # 3 of 20


def test_a_class_that_takes_warmup_steps_itself_gets_them():
    scheduler = {"_target_": "pytorch_optimizer.lr_scheduler.CosineAnnealingWarmupRestarts",
                 "first_cycle_steps": 10, "warmup_steps": 4, "min_lr": 0.0, "interval": "step"}  # fmt: skip
    check_optimization(ADAM, scheduler)
    opt, config = schedule(scheduler, lr=0.5)
    assert config["scheduler"].warmup_steps == 4 and config["scheduler"].max_lr == 0.5
    assert type(config["scheduler"]).__name__ == "CosineAnnealingWarmupRestarts"  # no litlab warm-up in front


def test_a_mapping_from_hydra_is_kept_as_a_plain_dict():
    optimizer = OmegaConf.create({"_target_": "torch.optim.SGD", "lr": "${.rate}", "rate": 0.1})
    with pytest.raises(ValueError, match="torch.optim.SGD takes no argument rate"):
        check_optimization(optimizer)
    spec, scheduler = check_optimization(
        OmegaConf.create({"_target_": "torch.optim.SGD", "lr": 0.1}), OmegaConf.create({})
    )
    assert type(spec) is dict and spec == {"_target_": "torch.optim.SGD", "lr": 0.1} and scheduler == {}
    with pytest.raises(ValueError, match=r"^model.optimizer must be a mapping with a _target_, got a partial: set"):
        check_optimization(functools.partial(torch.optim.SGD, lr=0.1))
    with pytest.raises(ValueError, match=r"^model.scheduler must be a mapping with a _target_, got a list"):
        check_optimization(ADAM, [COSINE])


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        ({"name": "adam"}, r"^model.optimizer needs a _target_, an optimizer class such as torch.optim.AdamW \(or a"),
        ({"_target_": "torch.optim.Adamm"}, r"^model.optimizer._target_=torch.optim.Adamm names no class that can be"),
        ({"_target_": "lion_pytorch.nosuch.Lion"}, r"^model.optimizer._target_=lion_pytorch.nosuch.Lion names no cl"),
        (
            {"_target_": "mylab.Muon"},
            r"^model.optimizer._target_=mylab.Muon is outside the packages configs and "
            r"checkpoints may name \(torch.optim.\*, lion_pytorch.\*, pytorch_optimizer.\*\): add its package to "
            r"TRUSTED_PACKAGES in litlab's whitelist module\.$",
        ),
        ({"_target_": "torch.optimizers.Adam"}, r"torch.optimizers.Adam is outside the packages"),
        (
            {"_target_": "torch.optim.adam.torch.nn.Linear"},
            r"is refused: Target 'torch.nn.modules.linear.Linear' "
            r"\(resolved from 'torch.optim.adam.torch.nn.Linear'\) is not in the Hydra execution whitelist\.$",
        ),
        (
            {"_target_": "torch.optim.lr_scheduler.StepLR"},
            r"StepLR is not a subclass of torch.optim.optimizer.Optimizer",
        ),
        (
            {"_target_": "torch.optim.swa_utils.get_ema_multi_avg_fn"},
            r"is not a subclass of torch.optim.optimizer.Optimizer: name",
        ),
        (
            {"_target_": "torch.optim.NAdam", "nesterov": True},
            r"^torch.optim.NAdam takes no argument nesterov "
            r"\(model.optimizer\): its arguments are lr, betas, .*, and litlab reads _partial_, decay_norm_bias \(drop",
        ),
        ({"_target_": "torch.optim.Adam", "betas1": 0.5, "a": 1}, r"^torch.optim.Adam takes no argument a, betas1 "),
        ({"_target_": "torch.optim.LBFGS", "weight_decay": 0.1}, r"torch.optim.LBFGS takes no argument weight_decay"),
        (
            {"_target_": "torch.optim.Adam", "lr": 0},
            r"^The learning rate must be positive, got model.optimizer.lr=0\.$",
        ),
        ({"_target_": "torch.optim.Adam", "lr": -0.1}, r"^The learning rate must be positive, got model.optimizer.lr="),
    ],
)
def test_a_wrong_optimizer_fails_when_the_model_is_built(optimizer, message):
    with pytest.raises(ValueError, match=message) as error:
        ImageClassifier(CNN, optimizer=optimizer)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ({"_target_": "torch.optim.lr_scheduler.Step"}, r"^model.scheduler._target_=torch.optim.lr_scheduler.Step "),
        ({"_target_": "torch.optim.Adam"}, r"torch.optim.Adam is not a subclass of torch.optim.lr_scheduler.LRSche"),
        (
            {"_target_": COSINE, "eta_minimum": 0.1},
            r"^torch.optim.lr_scheduler.CosineAnnealingLR takes no argument "
            r"eta_minimum \(model.scheduler\): its arguments are T_max, eta_min, last_epoch, and litlab reads "
            r"_partial_, interval, frequency, monitor, strict, name, warmup_steps, warmup_fraction",
        ),
        (
            {"_target_": "torch.optim.lr_scheduler.StepLR"},
            r"^torch.optim.lr_scheduler.StepLR needs "
            r"model.scheduler.step_size: set it\.$",
        ),
        ({"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": None}, r"StepLR needs model.scheduler.step_size"),
        ({"name": "cosine"}, r"^Unknown setting\(s\) model.scheduler.name of a schedule without _target_"),
        (
            {"eta_min": 0.1, "T_max": 3},
            r"^Unknown setting\(s\) model.scheduler.T_max, model.scheduler.eta_min of a "
            r"schedule without _target_ \(a constant rate\): name a scheduler class with model.scheduler._target_, or "
            r"use only interval, warmup_steps, warmup_fraction\.$",
        ),
        ({"interval": "batch"}, r"^model.scheduler.interval must be step or epoch .*, got 'batch'\.$"),
        ({"_target_": COSINE, "interval": "epochs"}, r"model.scheduler.interval must be step or epoch"),
        ({"warmup_steps": -1}, r"warmup_fraction in \[0, 1\), got -1 and 0.0\.$"),
        ({"warmup_fraction": 1.0}, r"warmup_fraction in \[0, 1\), got 0 and 1.0\.$"),
        ({"warmup_fraction": -0.1}, r"warmup_fraction in \[0, 1\), got 0 and -0.1\.$"),
        ({"warmup_fraction": 1.5}, r"warmup_fraction in \[0, 1\), got 0 and 1.5\.$"),
        ({"warmup_steps": 10, "warmup_fraction": 0.1}, r"^Set one of model.scheduler.warmup_steps and model.scheduler"),
        ({"warmup_steps": 10, "interval": "epoch"}, r"^A warm-up counts optimizer steps: set model.scheduler.interval"),
        ({"_target_": COSINE, "warmup_fraction": 0.1}, r"A warm-up counts optimizer steps"),  # Lightning's epoch
        (
            {"_target_": ONE_CYCLE, "interval": "step", "warmup_steps": 10},
            r"^OneCycleLR takes no linear warm-up in front of it \(it warms up by itself \(pct_start\)\): "
            r"drop model.scheduler.warmup_steps/warmup_fraction\.$",
        ),
        (
            {**preset("scheduler", "plateau"), "interval": "step", "warmup_steps": 3},
            r"^ReduceLROnPlateau takes no "
            r"linear warm-up in front of it \(it follows a metric\)",
        ),
        ({"_target_": PLATEAU}, r"^ReduceLROnPlateau follows a metric: set model.scheduler.monitor \(such as val/loss"),
        ({"_target_": PLATEAU, "monitor": ""}, r"ReduceLROnPlateau follows a metric"),
        (
            {**preset("scheduler", "plateau"), "mode": "maximize"},
            r"^model.scheduler.mode must be min \(the monitored "
            r"metric should fall\) or max \(it should rise\), got 'maximize'\.$",
        ),
    ],
)
def test_a_wrong_scheduler_fails_when_the_model_is_built(scheduler, message):
    with pytest.raises(ValueError, match=message) as error:
        ImageClassifier(CNN, scheduler=scheduler)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")


@pytest.mark.parametrize("name", sorted(path.stem for path in (PRESETS / "scheduler").glob("*.yaml")))
def test_every_scheduler_preset_is_accepted_and_builds(name):
    model = ImageClassifier(CNN, scheduler=preset("scheduler", name))
    built = configure(model.parameters(), model.hparams.optimizer, model.hparams.scheduler, run(20))
    expected = {"none": None, "cosine": "CosineAnnealingLR", "onecycle": "OneCycleLR", "plateau": "ReduceLROnPlateau"}
    scheduler = built.get("lr_scheduler", {}).get("scheduler")
    assert (type(scheduler).__name__ if scheduler else None) == expected[name]


@pytest.mark.parametrize(
    "scheduler",
    [
        None,
        {"warmup_fraction": 0.5},
        {"warmup_steps": 3, "interval": "step"},
        {"_target_": ONE_CYCLE, "pct_start": 0.25, "interval": "step"},
        {"_target_": PLATEAU, "patience": 2, "monitor": "val/loss"},
        {"_target_": PLATEAU, "monitor": "val/acc", "mode": "max", "interval": "step"},
        {"_target_": COSINE, "warmup_steps": 0, "interval": "epoch"},
        {"_target_": "torch.optim.lr_scheduler.PolynomialLR", "power": 2.0, "warmup_steps": 2, "interval": "step"},
    ],
)
def test_every_documented_schedule_is_accepted(scheduler):
    model = ImageClassifier(CNN, scheduler=scheduler)
    assert model.hparams.scheduler == scheduler
    built = configure(model.parameters(), model.hparams.optimizer, scheduler, run(10))
    assert ("lr_scheduler" in built) == (scheduler is not None)


def test_the_whitelist_admits_the_optimizer_packages_and_the_trusted_ones():
    assert OPTIMIZER_WHITELIST[:3] == ("torch.optim.*", "lion_pytorch.*", "pytorch_optimizer.*")
    assert set(OPTIMIZER_WHITELIST) <= set(EXECUTION_WHITELIST)


def random_images(n: int = 12, batch_size: int = 4) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 10, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@pytest.mark.parametrize("name", ["cosine", "plateau"])
def test_each_schedule_steps_at_its_interval_in_training(name):
    # lr 1e-6 and no batch norm: the validation loss stays put (within the plateau's threshold), so the
    # plateau schedule cuts the rate once patience epochs have gone by without progress.
    scheduler = {**preset("scheduler", name), **({"patience": 1, "factor": 0.5} if name == "plateau" else {})}
    model = ImageClassifier(TINY_MLP, optimizer={"_target_": "torch.optim.SGD", "lr": 1e-6}, scheduler=scheduler)
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


def test_a_resumed_one_cycle_schedule_must_cover_the_run():
    one_cycle = schedule(preset("scheduler", "onecycle"), steps=10)[1]["scheduler"]
    cosine = schedule(preset("scheduler", "cosine"), steps=10)[1]["scheduler"]

    def trainer(needed: int, *schedulers) -> SimpleNamespace:
        configs = [SimpleNamespace(scheduler=s) for s in schedulers]
        return SimpleNamespace(estimated_stepping_batches=needed, max_epochs=6, lr_scheduler_configs=configs)

    with pytest.raises(ValueError, match="planned for 10 steps, but trainer.max_epochs=6 needs 12: resume with"):
        check_resumed_schedules(trainer(12, cosine, one_cycle))
    check_resumed_schedules(trainer(10, one_cycle))  # the run it was planned for
    check_resumed_schedules(trainer(8, one_cycle))  # a shorter run stops before the schedule ends
    one_step = schedule(preset("scheduler", "onecycle"), steps=1)[1]["scheduler"]  # a run of a single step
    with pytest.raises(ValueError, match="planned for 1 steps, but trainer.max_epochs=6 needs 2"):
        check_resumed_schedules(trainer(2, one_step))
    check_resumed_schedules(trainer(12, cosine))  # a cosine schedule carries on at its floor


def test_settings_are_checked_once_and_the_class_is_called_by_the_one_builder(monkeypatch):
    import litlab.models.optim as optim_module

    checked, stacks = [], []
    check = optim_module._check_arguments
    monkeypatch.setattr(optim_module, "_check_arguments", lambda cls, *args: checked.append(cls) or check(cls, *args))
    init = torch.optim.Adam.__init__

    def recording_init(self, *args, **kwargs):
        stacks.append([frame.function for frame in inspect.stack()[1:3]])
        init(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "__init__", recording_init)
    model = ImageClassifier(TINY_MLP, scheduler=preset("scheduler", "cosine"))
    model.trainer = SimpleNamespace(estimated_stepping_batches=10, max_epochs=1)
    model.configure_optimizers()
    assert checked == [torch.optim.Adam, torch.optim.lr_scheduler.CosineAnnealingLR]  # at build time, once each
    # configure_optimizers -> configure -> the class, nothing between
    assert stacks == [["configure", "configure_optimizers"]]


def test_without_an_optimizer_a_module_gets_adam_at_its_usual_rate():
    spec, _ = check_optimization(None)
    assert spec == {"_target_": "torch.optim.Adam", "lr": 1e-3} == ADAM
    assert (
        optimizer(**{k: v for k, v in ADAM.items() if k != "_target_"}, target=ADAM["_target_"]).defaults["lr"] == 1e-3
    )


def test_a_spec_from_the_config_reaches_the_module_with_its_interpolations_resolved():
    cfg = OmegaConf.create({"base_lr": 0.05, "optimizer": {"_target_": "torch.optim.SGD", "lr": "${base_lr}"}})
    spec, _ = check_optimization(cfg.optimizer)
    assert spec == {"_target_": "torch.optim.SGD", "lr": 0.05}


def test_the_optimizer_whitelist_stands_alone_whatever_whitelist_the_caller_has_open():
    """An alias under torch.optim that resolves elsewhere is refused even where the caller admits that elsewhere."""
    refused = r"model.optimizer._target_=torch.optim.adam.torch.nn.Linear is refused: .* execution whitelist"
    with execution_whitelist(["torch.nn.*"]), pytest.raises(ValueError, match=refused):
        optimizer("torch.optim.adam.torch.nn.Linear")


def test_a_warm_up_with_an_interval_read_from_a_file_is_accepted_like_a_literal_one():
    """Strings read back from a config file are new objects, not the interned literal: compared by value."""
    step = "".join(["st", "ep"])
    _, scheduler = check_optimization(ADAM, {"interval": step, "warmup_steps": 2})
    _, built = schedule(scheduler, steps=10)
    assert built["interval"] == "step"
