"""The documentation holds together: every relative link of README.md and docs/ resolves (a `#anchor` to a
heading of the page it names, slugged as GitHub slugs it), every results page names the command that
regenerates it and that command's script exists, and the README stays a guide of at most 300 lines."""

import re
import shlex
from pathlib import Path
from urllib.parse import unquote

import pytest

from litlab import ROOT_DIR
from litlab.reports.results_page import RESULTS_DIR, read_stamp

README_MAX_LINES = 300
FENCE = re.compile(r"^ {0,3}(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def doc_pages() -> list[Path]:
    return [ROOT_DIR / "README.md", ROOT_DIR / "CHANGELOG.md", *sorted((ROOT_DIR / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans and HTML comments taken out."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    lines, fenced = [], None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence and (fenced is None or fence.group(1) == fenced):
            fenced = fence.group(1) if fenced is None else None
            continue
        if fenced is None and not line.startswith("    "):
            lines.append(re.sub(r"(`+).+?\1", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text lower-cased, punctuation but - and _ dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor on the page, repeated headings numbered as GitHub numbers them (-1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    text = re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    fenced = None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence and (fenced is None or fence.group(1) == fenced):
            fenced = fence.group(1) if fenced is None else None
            continue
        heading = HEADING.match(line) if fenced is None else None
        if heading:
            base = slug(heading.group(2))
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found


def links(path: Path) -> list[str]:
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        targets += LINK.findall(line) + HTML_LINK.findall(line)
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
    return targets


def broken_links(path: Path, root: Path = ROOT_DIR) -> list[str]:
    """The relative links of a Markdown page that name no file or folder, or no heading of the page they name."""
    broken = []
    for target in links(path):
        if SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part)
        if file_part.startswith("/"):
            resolved = root / file_part.lstrip("/")
        else:
            resolved = (path.parent / file_part) if file_part else path
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
            broken.append(f"{target} (no heading with this anchor in {resolved.name})")
    return broken


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT_DIR)))
def test_every_relative_link_resolves(page):
    assert page.is_file()
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_a_missing_heading_and_ignores_code(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "data.md").write_text(
        "# Data\n\n## Pixel conventions\n\n## The `data.augment` option, on the device\n\n## Splits\n\n## Splits\n"
    )
    (tmp_path / "picture.png").write_bytes(b"png")
    page = tmp_path / "README.md"
    page.write_text(
        "# Guide\n\n## Two commands\n\n"
        "[data](docs/data.md) [pixels](docs/data.md#pixel-conventions) ![x](picture.png) [top](#two-commands)\n"
        "[option](docs/data.md#the-dataaugment-option-on-the-device) [second](docs/data.md#splits-1)\n"
        '[web](https://example.org/missing.md) [mail](mailto:a@b.c) <img src="picture.png">\n'
        "`[in code](nowhere.md)`\n\n```bash\n[in a block](nowhere.md)\n```\n\n    [indented](nowhere.md)\n"
        "<!-- [commented](nowhere.md) -->\n[ref]: docs/data.md\n"
    )
    assert broken_links(page, tmp_path) == []

    page.write_text(
        "# Guide\n\n[gone](docs/moved.md) [bad anchor](docs/data.md#pixels) [self](#nowhere)\n"
        "[third](docs/data.md#splits-2)\n"
        '<img src="docs/old.png">\n[ref]: docs/gone.md\n'
    )
    assert broken_links(page, tmp_path) == [
        "docs/moved.md (no such file)",
        "docs/data.md#pixels (no heading with this anchor in data.md)",
        "#nowhere (no heading with this anchor in README.md)",
        "docs/data.md#splits-2 (no heading with this anchor in data.md)",
        "docs/old.png (no such file)",
        "docs/gone.md (no such file)",
    ]


def results_pages() -> list[Path]:
    return sorted(RESULTS_DIR.glob("*.md"))


def test_there_are_results_pages():
    assert len(results_pages()) >= 10


@pytest.mark.parametrize("page", results_pages(), ids=lambda p: p.name)
def test_a_results_page_names_the_command_that_regenerates_it_and_its_script_exists(page):
    stamp = read_stamp(page)
    words = shlex.split(stamp.command)
    scripts = [word for word in words if word.endswith(".py")]
    assert scripts, f"{page.name}: the command '{stamp.command}' runs no Python file"
    assert (ROOT_DIR / scripts[0]).is_file(), f"{page.name}: {scripts[0]} does not exist"
    assert stamp.commit and stamp.date and stamp.machine


@pytest.mark.parametrize("page", results_pages(), ids=lambda p: p.name)
def test_every_results_page_is_linked_from_the_guide_or_a_docs_page(page):
    linking = [
        other
        for other in doc_pages()
        if other != page and any((other.parent / t.partition("#")[0]).resolve() == page for t in links(other))
    ]
    assert linking, f"no page links {page.relative_to(ROOT_DIR)}"


def test_the_readme_is_a_guide_of_at_most_300_lines():
    assert len((ROOT_DIR / "README.md").read_text().splitlines()) <= README_MAX_LINES
