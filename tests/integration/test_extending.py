"""docs/extending.md runs: a network, a datamodule, a LightningModule, an optimizer and a schedule from a package
outside litlab, written from the page into a temporary project, train through `_target_` with `python train.py`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from litlab import ROOT_DIR
from litlab.train import train
from tests.helpers.config import train_config

GUIDE = ROOT_DIR / "docs" / "extending.md"
WHITELIST_MODULE = "litlab.whitelist"
# The one edit the guide asks of litlab: the line as shipped, and as the guide writes it.
SHIPPED = "TRUSTED_PACKAGES: tuple[str, ...] = ()"
EDITED = 'TRUSTED_PACKAGES: tuple[str, ...] = ("mylab",)'
RUN = [
    "experiment=blobs",
    "logger=csv",
    "callbacks.model_summary=null",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
]

# Runs an entry file as the guide's user does after editing TRUSTED_PACKAGES: the whitelist module is compiled
# from its source with that one line edited, before anything imports it.
LAUNCHER = """
import importlib.util, runpy, sys
from pathlib import Path

spec = importlib.util.find_spec({module!r})
source = Path(spec.origin).read_text()
assert {shipped!r} in source, "litlab's whitelist module lost the line docs/extending.md tells users to edit"
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
exec(compile(source.replace({shipped!r}, {edited!r}), spec.origin, "exec"), module.__dict__)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def write_project(root: Path) -> dict[str, str]:
    """Every file of the guide (a code block whose first line is `# <path>`) written under `root`."""
    blocks = dict(re.findall(r"```(?:python|yaml)\n# ([\w/]+\.(?:py|yaml))\n(.*?)```", GUIDE.read_text(), re.S))
    for path, text in blocks.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "mylab" / "__init__.py").write_text("")
    (root / "launch.py").write_text(LAUNCHER.format(module=WHITELIST_MODULE, shipped=SHIPPED, edited=EDITED))
    return blocks


def run_entry(project: Path, script: str, overrides: list[str]) -> subprocess.CompletedProcess:
    """`python <script>` of litlab with the guide's edit, run from the project with its package importable."""
    env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{ROOT_DIR / 'src'}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(project / "launch.py"), str(ROOT_DIR / script), *overrides],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("myproject")
    blocks = write_project(root)
    assert {"mylab/nets.py", "mylab/data.py", "mylab/module.py", "mylab/optim.py", "configs/model/points.yaml",
            "configs/model/optimizer/sign_sgd.yaml", "configs/experiment/blobs.yaml"} <= set(blocks)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def run_dir(project) -> Path:
    """The guide's `python train.py hydra.searchpath=[file://...] experiment=blobs`, run once for the tests below."""
    run_dir = project / "run"
    search = f"hydra.searchpath=[file://{project / 'configs'}]"
    trained = run_entry(project, "train.py", [search, *RUN, f"hydra.run.dir={run_dir}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    return run_dir


def test_the_guides_package_trains_through_its_targets(run_dir):
    metrics = pd.read_csv(next(run_dir.glob("csv/version_*/metrics.csv")))
    losses = metrics.dropna(subset=["train/loss"])["train/loss"].tolist()
    accuracy = metrics.dropna(subset=["test/acc"])["test/acc"].iloc[-1]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]  # four epochs, the loss falls
    assert accuracy > 0.9  # four classes: chance is 0.25
    # the learning-rate monitor saw the user's schedule fall, its length filled from the run
    rates = metrics.dropna(subset=["lr-SignSGD"])["lr-SignSGD"].tolist()
    assert rates[0] == pytest.approx(0.01) and rates[-1] < rates[0]

    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["net"]["_target_"] == "mylab.nets.PointNet"
    assert hparams["optimizer"]["_target_"] == "mylab.optim.SignSGD"
    assert hparams["scheduler"] == {"_target_": "mylab.optim.LinearDecayLR", "_partial_": True, "total_steps": None,
                                    "floor": 0.1, "interval": "step"}  # fmt: skip
    assert checkpoint["litlab"]["module"] == "mylab.module.PointClassifier"


@pytest.mark.slow
def test_eval_rebuilds_the_guides_module_and_datamodule_from_the_checkpoint_alone(project, run_dir):
    evaluated = run_entry(
        project, "eval.py", [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "logger=csv",
                             f"hydra.run.dir={project / 'eval'}", "extras.print_config=false"]
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert float(re.search(r"test/acc\s+│\s+([\d.]+)", evaluated.stdout).group(1)) > 0.9, evaluated.stdout[-2000:]


def test_an_untrusted_package_is_refused_before_any_work(project, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(project))
    cfg = train_config([f"hydra.searchpath=[file://{project / 'configs'}]", *RUN], tmp_path)
    with pytest.raises(Exception, match=r"mylab.data.BlobsDataModule' is not in the Hydra execution whitelist"):
        train(cfg)
    # a checkpoint naming the user's optimizer is refused the same way, in one sentence naming the tuple
    from litlab.models.optim import check_optimization

    with pytest.raises(ValueError, match=r"add its package to TRUSTED_PACKAGES in litlab's whitelist module\.$"):
        check_optimization({"_target_": "mylab.optim.SignSGD"})
