"""litlab.reports and the scripts over it: the distillation table, and scripts that stand on the package alone."""

import ast
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from litlab import ROOT_DIR
from litlab.reports import distillation


def fake_run(folder: Path, model: dict) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"model": model}), folder / ".hydra" / "config.yaml")
    return folder


def kd_runs(tmp_path: Path) -> Path:
    """A linear teacher (CSV logger) and a sweep of three students (TensorBoard) in train.py's folder layout."""
    net = {"_target_": "litlab.models.nets.ResNet", "arch": "resnet18", "weights": None}
    teacher = fake_run(
        tmp_path / "teacher", {"_target_": "litlab.models.TransferClassifier", "mode": "linear", "net": net}
    )
    (teacher / "csv").mkdir()
    (teacher / "csv" / "metrics.csv").write_text("epoch,val/acc_best,test/acc\n0,0.9,\n1,0.95,\n1,,0.94\n")
    for name, alpha, acc in (("kd", 0.5, 0.93), ("kd_worse", 0.9, 0.80), ("base", 0.0, 0.91)):
        run = fake_run(
            tmp_path / "sweep" / name,
            {"_target_": "litlab.models.DistillationModule", "alpha": alpha, "tau": 4.0, "net": net},
        )
        with SummaryWriter(run / "tensorboard" / "version_0") as writer:
            writer.add_scalar("val/acc_best", acc, 0)
            writer.add_scalar("test/acc", acc - 0.01, 1)
    return tmp_path


def test_report_reads_tensorboard_and_csv_runs(tmp_path):
    table = distillation.report([kd_runs(tmp_path)])
    lines = table.splitlines()[2:]
    assert len(lines) == 4
    assert lines[0].startswith(
        "| teacher, linear probe (from scratch: no pretrained weights) | resnet18 | 0.9400 | 0.9500"
    )
    assert lines[1].startswith("| student, KD (alpha=0.50, tau=4.0) | resnet18 | 0.9200 | 0.9300")
    assert lines[3].startswith("| student, no teacher (alpha=0) | resnet18 | 0.9000 | 0.9100")
    best = distillation.report([tmp_path], best=True).splitlines()[2:]
    assert len(best) == 3 and "alpha=0.50" in best[1]  # the weaker KD trial is dropped


def test_kd_report_merges_the_seeds_of_a_kind(tmp_path):
    net = {"_target_": "litlab.models.nets.ResNet", "arch": "resnet18", "weights": None}
    student = {"_target_": "litlab.models.DistillationModule", "alpha": 0.5, "tau": 4.0, "net": net}
    for seed, acc in ((1, 0.90), (2, 0.92), (3, 0.97)):
        run = fake_run(tmp_path / str(seed), student)
        with SummaryWriter(run / "tensorboard" / "version_0") as writer:
            writer.add_scalar("test/acc", acc, 1)
    (row,) = distillation.report([tmp_path]).splitlines()[2:]
    assert row.startswith("| student, KD (alpha=0.50, tau=4.0) [3 seeds] | resnet18 | 0.9300 ± 0.0361 |")


def test_kd_report_script_writes_the_table_and_explains_an_empty_folder(tmp_path):
    out = tmp_path / "kd.md"
    script = [sys.executable, "scripts/kd_report.py"]
    done = subprocess.run([*script, str(kd_runs(tmp_path)), "--best", "--out", str(out)], cwd=ROOT_DIR,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert out.read_text() == done.stdout == distillation.report([tmp_path], best=True) + "\n"
    empty = subprocess.run([*script, str(tmp_path / "csv")], cwd=ROOT_DIR, capture_output=True, text=True)
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert empty.stderr.strip().startswith("No runs under") and len(empty.stderr.strip().splitlines()) == 1


def test_scripts_stand_on_the_package_alone():
    """Scripts import litlab like any user code: never the tests' helpers, never a sys.path of their own."""
    for script in sorted((ROOT_DIR / "scripts").glob("*.py")):
        tree = ast.parse(script.read_text())
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] == "tests"], script.name
        assert "sys.path" not in ast.unparse(tree), script.name
