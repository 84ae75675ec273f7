"""The run record in a real git checkout: litlab copied into a temporary repository, its entry files run there."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from litlab import ROOT_DIR
from litlab.run_record import DIFF_FILE, RECORD_FILE
from tests.integration.test_run_folders import SHORT_RUN

GIT = ["git", "-c", "user.name=litlab tests", "-c", "user.email=tests@litlab.invalid"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def checkout(root: Path) -> Path:
    """The entry files, configs and sources of litlab, committed in a new repository at `root`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ("src", "configs"):
        shutil.copytree(ROOT_DIR / folder, root / folder, ignore=ignore)
    for entry in ("train.py", "eval.py", "predict.py"):
        shutil.copy(ROOT_DIR / entry, root / entry)
    (root / ".gitignore").write_text("logs/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "litlab")
    return root


def run(repo: Path, entry: str, arguments: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("PROJECT_ROOT", None)  # the copy is the repository root of its runs
    result = subprocess.run(
        [sys.executable, entry, *arguments], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def only_folder(parent: Path) -> Path:
    (folder,) = parent.iterdir()
    return folder


@pytest.mark.slow
def test_runs_record_their_commit_and_name_a_checkpoint_from_other_code(tmp_path):
    repo = checkout(tmp_path / "repo")
    first_commit = git(repo, "rev-parse", "HEAD").strip()
    run(repo, "train.py", SHORT_RUN)
    run_dir = only_folder(repo / "logs" / "train" / "runs")
    record = yaml.safe_load((run_dir / RECORD_FILE).read_text())
    assert record["code"]["commit"] == first_commit and record["code"]["dirty"] is False
    assert record["code"]["root"] == str(repo) and not (run_dir / DIFF_FILE).exists()
    assert record["command"]["argv"][1:] == ["train.py", *SHORT_RUN] and record["command"]["cwd"] == str(repo)
    assert record["command"]["overrides"] == SHORT_RUN
    digits = Path(record["data"]["source"]["files"][0]["path"])
    assert record["data"]["source"]["files"][0]["sha256"] == hashlib.sha256(digits.read_bytes()).hexdigest()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["litlab"]["run"] == record

    # a new commit, and an edit on top of it: eval.py says so in one line, and records the edit
    (repo / "configs" / "model" / "cnn.yaml").write_text((repo / "configs/model/cnn.yaml").read_text() + "# tuned\n")
    git(repo, "commit", "-qam", "tune")
    second_commit = git(repo, "rev-parse", "HEAD").strip()
    (repo / "configs" / "eval.yaml").write_text((repo / "configs/eval.yaml").read_text() + "# edited\n")
    evaluated = run(repo, "eval.py", [f"ckpt_path={ckpt}", "trainer.accelerator=cpu", "extras.print_config=false"])
    said = [line for line in (evaluated.stdout + evaluated.stderr).splitlines() if "The checkpoint was written" in line]
    assert len(said) == 1
    assert said[0].endswith(
        f"The checkpoint was written by commit {first_commit[:10]}, this code is at commit {second_commit[:10]} "
        "with uncommitted changes: results may differ."
    )
    eval_dir = only_folder(repo / "logs" / "eval" / "runs")
    eval_record = yaml.safe_load((eval_dir / RECORD_FILE).read_text())
    assert eval_record["code"]["commit"] == second_commit and eval_record["code"]["dirty"] is True
    assert "+# edited" in (eval_dir / DIFF_FILE).read_text()
    assert eval_record["checkpoint"]["files"][0]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()

    # outside a git checkout: the record says so, and the run goes on
    shutil.rmtree(repo / ".git")
    torch.save(torch.zeros(2, 1, 8, 8), tmp_path / "blank.pt")
    predicted = run(
        repo, "predict.py", [f"ckpt_path={ckpt}", f"inputs={tmp_path / 'blank.pt'}", "trainer.accelerator=cpu"]
    )
    predict_dir = only_folder(repo / "logs" / "predict" / "runs")
    assert (predict_dir / "predictions.csv").read_text().count("\n") == 3
    predict_record = yaml.safe_load((predict_dir / RECORD_FILE).read_text())
    assert predict_record["code"]["commit"] is None
    assert predict_record["code"]["git"].startswith("not a git checkout (")
    assert f"The checkpoint was written by commit {first_commit[:10]}; this code's commit is unknown (not a git" in (
        predicted.stdout + predicted.stderr
    )
