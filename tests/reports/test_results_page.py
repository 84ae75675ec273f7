"""litlab.reports.results_page: measured figures in docs/results/, stamped with command, commit, date, machine."""

import difflib
import os
import subprocess
from datetime import datetime, timezone
from importlib import metadata

import pytest

from litlab import ROOT_DIR
from litlab.reports.results_page import (
    Stamp,
    git_commit,
    invoked_command,
    make_stamp,
    markdown_table,
    read_stamp,
    read_table,
    upsert_row,
    write_results_page,
)


def body(figure: str) -> str:
    return "Each command ran 3 times.\n\n" + markdown_table(
        ["command", "wall"], [["`python train.py --help`", "0.300 s"], ["`python train.py --info`", figure]]
    )


def git(root, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)  # fmt: skip


def test_a_page_ends_with_the_stamp_of_the_process_that_wrote_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr("sys.argv", [str(ROOT_DIR / "scripts" / "benchmark_cli.py"), "--runs", "3"])
    path = write_results_page("cli", "Command-line response times", body("0.400 s"), directory=tmp_path)

    assert path == tmp_path / "cli.md"
    text = path.read_text()
    assert text.startswith("# Command-line response times\n") and "| `python train.py --info` | 0.400 s |" in text
    stamp = read_stamp(path)
    assert stamp.command.endswith("python scripts/benchmark_cli.py --runs 3")
    assert "OMP_NUM_THREADS=1" in stamp.command
    head = subprocess.run(["git", "-C", str(ROOT_DIR), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert stamp.commit.startswith(f"`{head}`")
    assert stamp.date == datetime.now(timezone.utc).date().isoformat()
    assert f"{os.cpu_count()} cores" in stamp.machine and f"torch {metadata.version('torch')}" in stamp.machine
    assert "GPU" in stamp.machine
    assert text.rstrip().endswith("Rerunning the command regenerates this page: its figures and this stamp change, "
                                  "nothing else.")  # fmt: skip


def test_regenerating_a_page_changes_only_its_figures_and_its_stamp(tmp_path):
    first = Stamp("python scripts/benchmark_cli.py", "`aaaaaaaaaaaa`", "2026-11-30", "AMD EPYC, 2 cores, no GPU")
    second = Stamp(
        "python scripts/benchmark_cli.py --runs 3", "`bbbbbbbbbbbb` with uncommitted changes", "2026-12-01",
        "Intel Xeon, 16 cores, 1 GPU (NVIDIA H100), torch 2.14.1",
    )  # fmt: skip
    before = write_results_page("cli", "Times", body("0.400 s"), stamp=first, directory=tmp_path).read_text()
    after = write_results_page("cli", "Times", body("0.480 s"), stamp=second, directory=tmp_path).read_text()

    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert sorted(changed) == sorted(
        [
            "- | `python train.py --info` | 0.400 s |",
            "- - Command: `python scripts/benchmark_cli.py`",
            "- - Commit: `aaaaaaaaaaaa`",
            "- - Date: 2026-11-30",
            "- - Machine: AMD EPYC, 2 cores, no GPU",
            "+ | `python train.py --info` | 0.480 s |",
            "+ - Command: `python scripts/benchmark_cli.py --runs 3`",
            "+ - Commit: `bbbbbbbbbbbb` with uncommitted changes",
            "+ - Date: 2026-12-01",
            "+ - Machine: Intel Xeon, 16 cores, 1 GPU (NVIDIA H100), torch 2.14.1",
        ]
    )
    assert read_stamp(tmp_path / "cli.md") == second
    # the same figures and stamp write the same bytes: nothing else on the page moves
    write_results_page("cli", "Times", body("0.480 s"), stamp=second, directory=tmp_path)
    assert (tmp_path / "cli.md").read_text() == after


def test_the_commit_is_marked_when_code_differs_from_it_but_not_for_a_rewritten_results_page(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "docs" / "results" / "cli.md").write_text("# old\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip

    assert git_commit(tmp_path) == f"`{head}`"
    (tmp_path / "docs" / "results" / "cli.md").write_text("# regenerated\n")
    assert git_commit(tmp_path) == f"`{head}`"
    (tmp_path / "train.py").write_text("print(2)\n")
    assert git_commit(tmp_path) == f"`{head}` with uncommitted changes"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".git").write_text("not a repository")
    assert git_commit(outside) == "unknown (not a git checkout)"


def test_the_command_is_the_one_a_user_types_from_the_repository_root(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    argv = [str(ROOT_DIR / "scripts" / "report.py"), "logs/train/multiruns/my study", "--results-page", "mlp"]
    assert invoked_command(argv) == (
        "CUDA_VISIBLE_DEVICES=0 python scripts/report.py 'logs/train/multiruns/my study' --results-page mlp"
    )
    assert make_stamp("python scripts/x.py").command == "python scripts/x.py"


def test_a_row_measured_again_replaces_its_own_row_and_keeps_the_others(tmp_path):
    header = ["module", "score", "commit"]
    intro = "One row per module."
    upsert_row("mutation", "Scores", intro, header, ["src/b.py", "90%", "`b1`"], "python scripts/mutate.py src/b.py",
               directory=tmp_path)  # fmt: skip
    upsert_row("mutation", "Scores", intro, header, ["src/a.py", "100%", "`a1`"], directory=tmp_path)
    path = upsert_row("mutation", "Scores", intro, header, ["src/b.py", "95% | 1 survivor", "`b2`"],
                      "python scripts/mutate.py src/b.py", directory=tmp_path)  # fmt: skip

    assert read_table(path) == (header, [["src/a.py", "100%", "`a1`"], ["src/b.py", "95% | 1 survivor", "`b2`"]])
    assert read_stamp(path).command == "python scripts/mutate.py src/b.py"
    # a page written with other columns keeps its rows, matched by column name
    path = upsert_row("mutation", "Scores", intro, ["module", "commit", "wall"], ["src/c.py", "`c1`", "2 min"],
                      directory=tmp_path)  # fmt: skip
    assert read_table(path)[1] == [["src/a.py", "`a1`", "-"], ["src/b.py", "`b2`", "-"], ["src/c.py", "`c1`", "2 min"]]


def test_a_page_without_a_full_stamp_or_with_a_bad_name_is_refused(tmp_path):
    page = tmp_path / "old.md"
    page.write_text("# Old\n\n| a |\n|---|\n| 1 |\n\n## How this page was made\n\n- Command: `python x.py`\n")
    with pytest.raises(ValueError, match=r"old\.md has no Commit, Date, Machine"):
        read_stamp(page)
    stamp = Stamp("python x.py", "`a`", "2026-12-01", "cpu")
    for name in ["../cli", "cli.md", ""]:
        with pytest.raises(ValueError, match="bare word"):
            write_results_page(name, "t", "b", stamp=stamp, directory=tmp_path)
