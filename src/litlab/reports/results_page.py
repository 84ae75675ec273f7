"""Pages of measured figures, `docs/results/<name>.md`, each stamped with what made it.

A script that measures something writes its table through `write_results_page`; the page ends with a stamp:
the exact command that regenerates it, the git commit (and whether the working tree held uncommitted changes),
the date and the machine (CPU model, cores, GPUs, torch version). Prose elsewhere links the page instead of
quoting its figures, so a later change cannot silently falsify them: rerunning the command rewrites the page,
and since a page holds no other timestamp and its rows come in a fixed order, the rewrite changes nothing but
the figures and the stamp.

`upsert_row` keeps a page of one table whose rows are measured one at a time (mutation scores: one row per
module, each row with its own commit and date; measuring a module again replaces its row).
"""

import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from litlab import ROOT_DIR

RESULTS_DIR = ROOT_DIR / "docs" / "results"
# The page's own folder is left out of the dirty check: a page rewritten by an earlier run is not a code change.
RESULTS_PATHSPEC = "docs/results"
# Thread settings change what a benchmark measures, so they are part of the command that reproduces it.
COMMAND_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
STAMP_HEADING = "## How this page was made"
STAMP_FIELDS = ("Command", "Commit", "Date", "Machine")
GENERATED_NOTE = "<!-- Written by litlab.reports.results_page: rerun the command below instead of editing. -->"
REGENERATE_NOTE = "Rerunning the command regenerates this page: its figures and this stamp change, nothing else."


@dataclass(frozen=True)
class Stamp:
    """What made a page: the command that regenerates it, the commit, the date and the machine."""

    command: str
    commit: str
    date: str
    machine: str

    def markdown(self) -> str:
        values = (_code(self.command), self.commit, self.date, self.machine)
        lines = [f"- {field}: {value}" for field, value in zip(STAMP_FIELDS, values, strict=True)]
        return "\n".join([STAMP_HEADING, "", *lines, "", REGENERATE_NOTE])


def _code(text: str) -> str:
    """`text` as a Markdown code span (a command with a backtick in it gets a double fence)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def invoked_command(argv: list[str] | None = None) -> str:
    """The command line this process was started with, as a user would type it from the repository root."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    shown = script.relative_to(ROOT_DIR).as_posix() if script.is_relative_to(ROOT_DIR) else argv[0]
    env = [f"{name}={os.environ[name]}" for name in COMMAND_ENV if name in os.environ]
    return " ".join([*env, "python", shlex.join([shown, *argv[1:]])])


def git_commit(root: Path = ROOT_DIR) -> str:
    """The checked-out commit, marked when tracked or untracked files differ from it (docs/results/ excepted)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changes = git("status", "--porcelain", "--", ".", f":(exclude){RESULTS_PATHSPEC}")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"`{commit}`" + (" with uncommitted changes" if changes else "")


def cpu_model() -> str:
    """The CPU's model name as the operating system reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def gpu_names() -> list[str]:
    """The names of the CUDA devices torch sees (none without torch or a GPU)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def machine_description() -> str:
    """CPU model and cores, GPUs, and the torch version: what a figure depends on."""
    gpus = gpu_names()
    if gpus:
        counted = {name: gpus.count(name) for name in gpus}
        names = ", ".join(f"{name} x{count}" if count > 1 else name for name, count in counted.items())
        gpu = f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({names})"
    else:
        gpu = "no GPU"
    try:
        torch = f"torch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch = "no torch"
    return f"{cpu_model()}, {os.cpu_count() or 1} cores, {gpu}, {torch}"


def make_stamp(command: str | None = None) -> Stamp:
    """A stamp of this process: its command line (or `command`), the commit, today's date (UTC), this machine."""
    return Stamp(
        command=command or invoked_command(),
        commit=git_commit(),
        date=datetime.now(timezone.utc).date().isoformat(),
        machine=machine_description(),
    )


def page_path(name: str, directory: Path | None = None) -> Path:
    """Where the page `name` lives: docs/results/<name>.md."""
    if not name or Path(name).name != name or name.endswith(".md"):
        raise ValueError(f"A results page is named by a bare word such as 'cli', not {name!r}.")
    return (directory or RESULTS_DIR) / f"{name}.md"


def write_results_page(
    name: str,
    title: str,
    body_markdown: str,
    command: str | None = None,
    *,
    stamp: Stamp | None = None,
    directory: Path | None = None,
) -> Path:
    """Writes docs/results/<name>.md: the title, the body, then the stamp; returns the page's path.

    `command` is the command line that regenerates the page (default: this process's own); `stamp` replaces
    the whole stamp, for figures measured elsewhere. The body should hold no timestamp of its own and list
    its rows in a fixed order, so that a rerun changes only the figures and the stamp.
    """
    path = page_path(name, directory)
    stamp = stamp or make_stamp(command)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join([f"# {title}", GENERATED_NOTE, body_markdown.strip(), stamp.markdown()]) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def read_stamp(path: Path) -> Stamp:
    """The stamp at the end of a results page; a ValueError naming the page when a field is missing."""
    text = path.read_text(encoding="utf-8")
    _, _, stamp = text.partition(STAMP_HEADING)
    values = {}
    for line in stamp.splitlines():
        field, sep, value = line.removeprefix("- ").partition(": ")
        if line.startswith("- ") and sep and field in STAMP_FIELDS:
            values[field] = value.strip()
    missing = [field for field in STAMP_FIELDS if not values.get(field)]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)} in its '{STAMP_HEADING}' stamp: regenerate it.")
    command = values["Command"].strip("`").strip()
    return Stamp(command=command, commit=values["Commit"], date=values["Date"], machine=values["Machine"])


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; `|` inside a cell is escaped."""
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _split_row(line: str) -> list[str]:
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
        escaped = char == "\\" and not escaped
    return [c.replace("\\|", "|") for c in [*cells, cell.strip()]]


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first Markdown table of a page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return _split_row(table[0]), [_split_row(line) for line in table[2:]]


def upsert_row(
    name: str,
    title: str,
    intro: str,
    header: list[str],
    row: list[object],
    command: str | None = None,
    *,
    directory: Path | None = None,
) -> Path:
    """Puts `row` into the one table of the page `name`, replacing the row with the same first cell.

    The rows are sorted by their first cell; rows of other keys are kept as they are (each carries its own
    columns, such as the commit and date it was measured at), their cells matched to `header` by column
    name. The page's stamp is this run's.
    """
    path = page_path(name, directory)
    rows: list[list[str]] = []
    if path.is_file():
        old_header, old_rows = read_table(path)
        # Columns are matched by name, so a page written with other columns keeps its rows ("-" where new).
        rows = [[dict(zip(old_header, r, strict=False)).get(column, "-") for column in header] for r in old_rows]
    key = str(row[0])
    rows = sorted([r for r in rows if r[0] != key] + [[str(cell) for cell in row]], key=lambda r: r[0])
    body = f"{intro.strip()}\n\n{markdown_table(header, rows)}"
    return write_results_page(name, title, body, command, directory=directory)
