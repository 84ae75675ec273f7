import importlib.util
from pathlib import Path

from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kd_report.py"
spec = importlib.util.spec_from_file_location("kd_report", SCRIPT)
kd_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kd_report)


def fake_run(folder: Path, model: dict) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"model": model}), folder / ".hydra" / "config.yaml")
    return folder


def test_report_reads_tensorboard_and_csv_runs(tmp_path):
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
    table = kd_report.report([tmp_path])
    lines = table.splitlines()[2:]
    assert len(lines) == 4
    assert lines[0].startswith(
        "| teacher, linear probe (from scratch: no pretrained weights) | resnet18 | 0.9400 | 0.9500"
    )
    assert lines[1].startswith("| student, KD (alpha=0.50, tau=4.0) | resnet18 | 0.9200 | 0.9300")
    assert lines[3].startswith("| student, no teacher (alpha=0) | resnet18 | 0.9000 | 0.9100")
    best = kd_report.report([tmp_path], best=True).splitlines()[2:]
    assert len(best) == 3 and "alpha=0.50" in best[1]  # the weaker KD trial is dropped


def test_report_merges_the_seeds_of_a_kind(tmp_path):
    net = {"_target_": "litlab.models.nets.ResNet", "arch": "resnet18", "weights": None}
    student = {"_target_": "litlab.models.DistillationModule", "alpha": 0.5, "tau": 4.0, "net": net}
    for seed, acc in ((1, 0.90), (2, 0.92), (3, 0.97)):
        run = fake_run(tmp_path / str(seed), student)
        with SummaryWriter(run / "tensorboard" / "version_0") as writer:
            writer.add_scalar("test/acc", acc, 1)
    (row,) = kd_report.report([tmp_path]).splitlines()[2:]
    assert row.startswith("| student, KD (alpha=0.50, tau=4.0) [3 seeds] | resnet18 | 0.9300 ± 0.0361 |")
