"""The package's shape, as a newcomer meets it: no import circle, each concept where one looks first, short run
paths, and a plain run that does not import the search or attribution stacks."""

import ast
import difflib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning.pytorch as lp
import pytest

import litlab
from litlab import ROOT_DIR

SRC = ROOT_DIR / "src"
PACKAGE = SRC / "litlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(name: str, path: Path) -> set[str]:
    """The litlab modules `name` imports anywhere in its file (module level or inside functions)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            # `from litlab.a import b` imports the module litlab.a.b when there is one, else litlab.a
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_two_litlab_modules_import_each_other_in_a_circle():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert "litlab.checkpoints.record" in graph["litlab.models.base"]  # the parser sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_utils_holds_small_helpers_only_and_each_concept_has_its_home():
    utils = {path.stem for path in (PACKAGE / "utils").glob("*.py")} - {"__init__"}
    assert not {name for name in utils if any(word in name for word in ("checkpoint", "resume", "pixel", "whitelist"))}
    for concept in ("checkpoints/load.py", "checkpoints/atomic.py", "checkpoints/resume.py", "data/pixels.py"):
        assert (PACKAGE / concept).is_file(), concept
    assert (PACKAGE / "whitelist.py").is_file() and (PACKAGE / "train.py").is_file()


def test_no_two_modules_of_a_package_have_names_a_letter_apart():
    for folder in {path.parent for path in PACKAGE.rglob("*.py")}:
        names = sorted(path.stem for path in folder.glob("*.py"))
        close = [
            (a, b)
            for i, a in enumerate(names)
            for b in names[i + 1 :]
            if difflib.SequenceMatcher(None, a, b).ratio() > 0.85 or a.rstrip("s") == b.rstrip("s")
        ]
        assert not close, (folder, close)


def test_function_names_are_not_reused_for_unrelated_things_across_packages():
    defined: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                defined.setdefault(node.name, []).append(name)
    assert "describe" not in defined, defined.get("describe")


def test_no_litlab_class_shadows_a_lightning_class_by_name():
    lightning_names = {
        name
        for module in (lp, lp.callbacks, lp.loggers, lp.profilers, lp.strategies, lp.plugins)
        for name, value in vars(module).items()
        if inspect.isclass(value)
    }
    for info in pkgutil.walk_packages(litlab.__path__, "litlab."):
        module = __import__(info.name, fromlist=["_"])
        own = {n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == info.name}
        assert not own & lightning_names, (info.name, own & lightning_names)


def test_every_package_says_what_lives_in_it():
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} has no docstring"


# A probe run before the entry file: it counts litlab's frames on the stack when the first optimizer is built.
PROBE = """
import json, os, sys, torch
root = os.environ["LITLAB_ROOT"]
def litlab_frames():
    frames, frame = [], sys._getframe(2)
    while frame:
        path = os.path.abspath(frame.f_code.co_filename)
        if path.startswith(os.path.join(root, "src", "litlab")) or os.path.dirname(path) == root:
            frames.append(f"{os.path.relpath(path, root)}:{frame.f_code.co_name}")
        frame = frame.f_back
    return frames
original = torch.optim.Optimizer.__init__
def probed(self, *args, **kwargs):
    out = os.environ["PROBE_OUT"]
    if not os.path.exists(out):
        with open(out, "w") as file:
            json.dump(litlab_frames(), file)
    original(self, *args, **kwargs)
torch.optim.Optimizer.__init__ = probed
"""


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory, mnist_root) -> tuple[list[str], set[str]]:
    """One `python -X importtime train.py experiment=mnist_cnn` with the probe: its litlab frames and its imports."""
    folder = tmp_path_factory.mktemp("probed")
    (folder / "sitecustomize.py").write_text(textwrap.dedent(PROBE))
    out = folder / "frames.json"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT_DIR / "train.py"), "experiment=mnist_cnn"]
        + ["++trainer.fast_dev_run=true", f"paths.data_dir={mnist_root}", f"hydra.run.dir={folder / 'run'}"],
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        | {"OMP_NUM_THREADS": "1", "PYTHONPATH": f"{folder}{os.pathsep}{SRC}"}
        | {"LITLAB_ROOT": str(ROOT_DIR), "PROBE_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    return json.loads(out.read_text()), imported


def test_a_run_crosses_at_most_six_litlab_frames_from_the_entry_file_to_the_optimizer(probed_run):
    frames, _ = probed_run
    assert frames[-1] == "train.py:<module>" and frames[0].startswith("src/litlab/models/"), frames
    assert len(frames) <= 6, frames


def test_a_plain_run_imports_neither_optuna_nor_captum_nor_the_search_code(probed_run):
    _, imported = probed_run
    assert "lightning" in imported and "torch" in imported  # -X importtime reported the run's imports
    unwanted = {"optuna", "optuna_integration", "captum", "litlab.search"}
    assert not {name for name in imported if name.split(".")[0] in unwanted or name in unwanted}
