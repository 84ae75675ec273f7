"""litlab outside its own checkout: a wheel installed into a fresh environment, and a checkout run with another
checkout's litlab installed."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from litlab import ROOT_DIR

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])  # torch, Lightning, Hydra, ... of this environment


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT_DIR / "pyproject.toml").read_text())


def test_the_wheel_lists_every_package_and_config_group():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    src = ROOT_DIR / "src"
    packages = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("*.py") if "__pycache__" not in p.parts}
    groups = {
        ".".join(("litlab", "configs", *folder.relative_to(ROOT_DIR / "configs").parts))
        for folder in (ROOT_DIR / "configs").rglob("*")
        if folder.is_dir() and folder.name != "local"
    }
    assert packages | groups | {"litlab.configs", "litlab.entry"} == listed


def copy_checkout(to: Path) -> Path:
    """The files of this checkout a build or a run reads (the working tree, edits included), without its runs."""
    to.mkdir(parents=True)
    for name in ["pyproject.toml", "README.md", *(p.name for p in ROOT_DIR.glob("*.py"))]:
        shutil.copy(ROOT_DIR / name, to / name)
    shutil.copytree(ROOT_DIR / "src", to / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT_DIR / "configs", to / "configs", ignore=shutil.ignore_patterns("local"))
    return to


def fresh_environment(path: Path, *site_dirs: Path) -> Path:
    """A new virtual environment that sees `site_dirs` (this environment's packages, a checkout's src) through a
    .pth file, as an editable install does; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    (purelib,) = path.glob("lib/python*/site-packages")
    (purelib / "shared.pth").write_text("".join(f"{directory}\n" for directory in site_dirs))
    return path / "bin" / "python"


def plain_env() -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no PROJECT_ROOT (this process set both)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROJECT_ROOT", "HYDRA_FULL_ERROR")}
    return env | {"OMP_NUM_THREADS": "1"}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=plain_env(), capture_output=True, text=True, timeout=600)


def only_run_folder(logs: Path) -> Path:
    (run_dir,) = (logs / "train" / "runs").iterdir()
    return run_dir


QUICK_RUN = ["++trainer.fast_dev_run=true", "extras.print_config=false", "~logger"]


@pytest.mark.slow
def test_a_wheel_runs_from_an_empty_folder(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")]
    built = run([*build, str(checkout)], tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("litlab-*.whl")
    python = fresh_environment(tmp_path / "venv", SITE_PACKAGES)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)]
    installed = run(install, tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    shutil.rmtree(checkout)  # nothing of the repository is left to lean on

    empty = tmp_path / "empty"
    empty.mkdir()
    command = str(python.parent / "litlab-train")
    helped = run([command, "--help"], empty)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "== Configuration groups ==" in helped.stdout and "experiment: " in helped.stdout
    trained = run([command, "++trainer.fast_dev_run=true"], empty)  # the command as a user types it
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = only_run_folder(empty / "logs")  # the run lands in the folder the command started from
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "train.log").is_file()


@pytest.mark.slow
def test_a_checkout_runs_its_own_code_configs_and_logs_under_another_checkouts_install(tmp_path):
    installed = copy_checkout(tmp_path / "installed")  # the checkout the environment's editable install points at
    own = copy_checkout(tmp_path / "own")
    train_yaml = own / "configs" / "train.yaml"
    train_yaml.write_text(train_yaml.read_text().replace('tags: ["dev"]', 'tags: ["own_checkout"]'))
    python = fresh_environment(tmp_path / "venv", installed / "src", SITE_PACKAGES)

    which = run([str(python), "-c", WHICH_LITLAB.format(entry=str(own / "train.py"))], tmp_path)
    assert which.stdout.strip() == str(own / "src" / "litlab" / "__init__.py"), which.stderr[-3000:]
    done = run([str(python), str(own / "train.py"), *QUICK_RUN], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = only_run_folder(own / "logs")
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["tags"] == ["own_checkout"]
    assert not (installed / "logs").exists()


# Runs the top of an entry file (all but `main()`), then says which litlab it imported.
WHICH_LITLAB = """
import runpy, sys
runpy.run_path({entry!r}, run_name="not_main")
print(sys.modules["litlab"].__file__)
"""
