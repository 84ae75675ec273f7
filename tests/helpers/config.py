"""Composing the real configs in tests, as `python train.py ...` would, with output in a temporary folder."""

import runpy
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from litlab import CONFIG_DIR, ROOT_DIR

# Fast and quiet: one CPU process, no config printing, no tag prompts.
TEST_OVERRIDES = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "extras.print_config=false",
    "extras.enforce_tags=false",
    "callbacks.rich_progress_bar=null",
]


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Composes configs/<config_name>.yaml with `overrides`, writing every output under `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR)):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    # `paths.output_dir` reads Hydra's runtime config, which only a real Hydra run sets: set it here.
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        cfg.paths.work_dir = str(output_dir)
    HydraConfig().set_config(cfg)
    return cfg


def train_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """configs/train.yaml for tests: the given overrides on top of TEST_OVERRIDES."""
    return compose_config("train", TEST_OVERRIDES + overrides, output_dir)


def eval_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """configs/eval.yaml for tests."""
    base = ["trainer.accelerator=cpu", "trainer.devices=1", "extras.print_config=false", "extras.enforce_tags=false"]
    return compose_config("eval", base + overrides, output_dir)


def predict_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """configs/predict.yaml for tests (no progress bar)."""
    base = [
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "+trainer.enable_progress_bar=false",
        "extras.print_config=false",
        "extras.enforce_tags=false",
    ]
    return compose_config("predict", base + overrides, output_dir)


def export_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """configs/export.yaml for tests."""
    return compose_config("export", ["extras.print_config=false", "extras.enforce_tags=false"] + overrides, output_dir)


def run_entry(entry: str = "train.py") -> None:
    """`python <entry> <sys.argv[1:]>` in this process: the root entry files hold the `@hydra.main`s."""
    runpy.run_path(str(ROOT_DIR / entry), run_name="__main__")
