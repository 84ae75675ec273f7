"""Every config composes, every experiment runs a batch end to end, and bad settings fail clearly."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import execution_whitelist, instantiate
from omegaconf import OmegaConf

from litlab import CONFIG_DIR
from litlab.train import train
from litlab.whitelist import EXECUTION_WHITELIST
from tests.helpers.config import compose_config, train_config

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
CLASSIFIER_EXPERIMENTS = {
    "mnist_cnn": "mnist_root",
    "mnist_mlp": "mnist_root",
    "cifar10_cnn": "cifar10_root",
    "cifar100_cnn": "cifar100_root",
}


def test_keys_follow_the_template_conventions(tmp_path):
    cfg = train_config([], tmp_path)
    for key in ("seed", "train", "test", "ckpt_path", "tags", "task_name", "optimized_metric"):
        assert key in cfg
    for key in ("root_dir", "data_dir", "log_dir", "output_dir"):
        assert key in cfg.paths
    for key in ("print_config", "enforce_tags", "ignore_warnings"):
        assert key in cfg.extras
    for key in ("batch_size", "num_workers", "pin_memory"):
        assert key in cfg.data
    assert cfg.optimized_metric == "val/acc_best"
    assert "tensorboard" in cfg.logger


@pytest.mark.parametrize("preset", ["default", "cpu", "gpu", "mps", "ddp", "ddp_sim"])
def test_trainer_presets_compose(preset, tmp_path):
    cfg = compose_config("train", [f"trainer={preset}"], tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.trainer.Trainer"
    assert cfg.trainer.accelerator in {"auto", "cpu", "gpu", "mps"}


@pytest.mark.parametrize("preset", ["default", "fdr", "limit", "overfit", "profiler"])
def test_debug_presets_compose(preset, tmp_path):
    cfg = compose_config("train", [f"debug={preset}"], tmp_path)
    assert cfg.task_name == "debug" and cfg.trainer.accelerator == "cpu"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name, tmp_path):
    cfg = train_config([f"experiment={name}"], tmp_path)
    for group in ("model", "data", "trainer", "callbacks", "logger", "paths"):
        OmegaConf.to_container(cfg[group], resolve=True)
    assert cfg.model._target_ and cfg.data._target_


@pytest.mark.parametrize("name", sorted(CLASSIFIER_EXPERIMENTS))
def test_classifier_experiments_run_one_batch(name, tmp_path, request):
    data_dir = request.getfixturevalue(CLASSIFIER_EXPERIMENTS[name])
    cfg = train_config(
        [
            f"experiment={name}",
            f"paths.data_dir={data_dir}",
            "data.download=false",
            "trainer.fast_dev_run=true",
            "data.batch_size=16",
        ],
        tmp_path,
    )
    metrics, _ = train(cfg)
    assert "test/acc" in metrics and "train/loss" in metrics


def test_accelerator_comes_from_the_config(tmp_path):
    cfg = train_config(["trainer.accelerator=cpu"], tmp_path)
    with execution_whitelist(EXECUTION_WHITELIST):
        trainer = instantiate(cfg.trainer)
    assert type(trainer.accelerator).__name__ == "CPUAccelerator"


def test_unknown_model_name_names_the_choices(tmp_path):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config("train", ["model=resnet_nonexistent"], tmp_path)
    assert "model/resnet_nonexistent" in str(error.value)


def test_unknown_optimizer_or_scheduler_preset_names_the_choices(tmp_path):
    for override, choices in [
        ("model/optimizer=adamx", "adam, adamw, rmsprop, sgd, sparse_adam, sparse_sgd"),
        ("model/scheduler=warmup", "cosine, none, onecycle, plateau"),
    ]:
        with pytest.raises(ConfigCompositionException) as error:
            compose_config("train", [override], tmp_path)
        assert "Available options" in str(error.value) and all(
            f"\t{name}\n" in str(error.value) + "\n" for name in choices.split(", ")
        ), str(error.value)


def test_unknown_optimizer_or_scheduler_class_fails_before_the_data_is_read(tmp_path):
    cfg = train_config(["model.optimizer._target_=torch.optim.Adamx", "trainer.fast_dev_run=true"], tmp_path)
    with pytest.raises(ValueError, match=r"^model.optimizer._target_=torch.optim.Adamx names no class that can be"):
        train(cfg)
    cfg = train_config(["model.scheduler._target_=torch.optim.lr_scheduler.Warmup"], tmp_path)
    with pytest.raises(ValueError, match=r"^model.scheduler._target_=torch.optim.lr_scheduler.Warmup names no"):
        train(cfg)


def test_mismatched_net_and_data_is_explained(tmp_path, mnist_root):
    # The default model fits the 8x8 digits; MNIST images are 28x28.
    cfg = train_config(["data=mnist", f"paths.data_dir={mnist_root}", "trainer.fast_dev_run=true"], tmp_path)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(1, 8, 8\) but the data gives \(1, 28, 28\)"):
        train(cfg)


def test_experiments_are_documented_in_the_readme():
    rows = [line for line in (Path(CONFIG_DIR).parent / "README.md").read_text().splitlines() if line.startswith("| `")]
    missing = [name for name in EXPERIMENTS if not any(f"`{name}`" in row.split(" | ")[0] for row in rows)]
    assert not missing, f"experiments missing from the README's table: {missing}"
