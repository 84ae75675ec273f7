"""The command line: Hydra's TAB completion of the entry files, and config commands without the training stack."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hydra_plugins.litlab_optuna_sweeper import launchers
from litlab import CONFIG_DIR, ROOT_DIR, cli
from litlab.cli import drop_null_groups, refuse_missing_launcher

# Every Python file in the repository root is a Hydra entry point (train.py, eval.py, ...).
ENTRY_FILES = sorted(p.name for p in ROOT_DIR.glob("*.py"))

# What Hydra answers without running a task, with a line each answer must hold (proof that it ran).
CONFIG_COMMANDS = [
    (["--help"], "== Configuration groups =="),
    (["--hydra-help"], "Hydra (1."),
    (["--cfg", "job"], "task_name:"),
    (["--cfg", "hydra"], "sweeper:"),
    (["--cfg", "all"], "hydra:"),
    (["--info"], "Config search path"),
    (["-sc", "query=bash"], "experiment="),
]
# A sweep's config: hparams_search selects litlab's Optuna sweeper (Hydra refuses `-m` together with `--cfg`).
SWEEP_COMMAND = (["hparams_search=mnist_cnn", "--cfg", "hydra"], "LitlabOptunaSweeper")

# Runs each command as `python <entry> <args>` would, in one process, and reports after each which heavy
# modules are loaded; Hydra's singletons are cleared between commands.
DRIVER = """
import contextlib, io, json, os, runpy, sys
from hydra.core.global_hydra import GlobalHydra

results = []
for entry, args in json.loads(sys.argv[1]):
    os.environ["COMP_LINE"] = f"python {entry} experiment="
    os.environ["COMP_POINT"] = str(len(os.environ["COMP_LINE"]))
    sys.argv = [entry, *args]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        runpy.run_path(entry, run_name="__main__")
    GlobalHydra.instance().clear()
    heavy = sorted(name for name in ("torch", "lightning", "torchvision", "torchmetrics") if name in sys.modules)
    results.append({"entry": entry, "args": args, "stdout": out.getvalue(), "heavy": heavy})
print(json.dumps(results))
"""


def test_every_entry_file_holds_its_hydra_main():
    # Hydra's bash and fish completion only complete files whose text holds `@hydra.main`.
    assert {"train.py", "eval.py"} <= set(ENTRY_FILES)
    for name in ENTRY_FILES:
        assert "@hydra.main" in (ROOT_DIR / name).read_text(), f"{name} must define its own @hydra.main"


def test_config_commands_import_neither_torch_nor_lightning():
    commands = [(entry, args) for entry in ENTRY_FILES for args, _ in CONFIG_COMMANDS]
    commands.append(("train.py", SWEEP_COMMAND[0]))
    expected = [marker for _ in ENTRY_FILES for _, marker in CONFIG_COMMANDS] + [SWEEP_COMMAND[1]]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    for result, marker in zip(results, expected, strict=True):
        command = f"python {result['entry']} {' '.join(result['args'])}"
        assert marker in result["stdout"], f"`{command}` did not answer as expected:\n{result['stdout'][-2000:]}"
        assert result["heavy"] == [], f"`{command}` imported {result['heavy']}"


def _activated(*bin_dirs: Path) -> dict[str, str]:
    """The environment of a shell with `bin_dirs` first on PATH, as in an activated virtualenv."""
    return {**os.environ, "PATH": os.pathsep.join([*map(str, bin_dirs), os.environ["PATH"]])}


def _assert_completes(shell: list[str], script: list[str], lines: list[str], bin_dirs: list[Path]) -> None:
    """Runs `script` in `shell`; it prints `== <line>` and then the completions of `line`, one a line.

    Each line ends with `experiment=mn`: its completions must hold `experiment=mnist_cnn` and nothing else
    than options of the experiment group.
    """
    done = subprocess.run(
        [*shell, "\n".join(script)],
        cwd=ROOT_DIR,
        env=_activated(*bin_dirs),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    completions: dict[str, list[str]] = {}
    current: list[str] = []
    for out in done.stdout.splitlines():
        if out.startswith("== "):
            current = completions.setdefault(out[3:], [])
        elif out:
            current.append(out.split("\t")[0])  # fish adds a tab and a description
    for line in lines:
        words = completions.get(line, [])
        assert "experiment=mnist_cnn" in words, f"`{line}<TAB>` gave {words}"
        assert all(word.startswith("experiment=mn") for word in words), f"`{line}<TAB>` gave {words}"


def _bash_tabs(lines: list[str]) -> list[str]:
    """Bash commands that press TAB at the end of each line: the variables bash sets, then the function that
    `complete -p` registered for the command (Hydra's script removes `=` from the word breaks)."""
    script = []
    for line in lines:
        words = line.split()
        script += [
            f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}",
            f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMPREPLY=()",
            f"$(complete -p {words[0]} | sed -E 's/.* -F ([^ ]+) .*/\\1/')",
            f'echo "== {line}"; printf "%s\\n" "${{COMPREPLY[@]}}"',
        ]
    return script


def _console_scripts() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT_DIR / "pyproject.toml").read_text())["project"]["scripts"]


def _write_console_scripts(bin_dir: Path) -> list[str]:
    """The commands as `pip install` writes them into an environment's bin folder; their names."""
    for name, target in _console_scripts().items():
        module, function = target.split(":")
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\n"
            f"if __name__ == '__main__':\n    sys.exit({function}())\n"
        )
        script.chmod(0o755)
    return sorted(_console_scripts())


PYTHON_BIN = Path(sys.executable).parent  # `python` on PATH is this environment's
ENTRY_LINES = [f"python {entry} experiment=mn" for entry in ENTRY_FILES]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_hydra_bash_completion_completes_every_entry_file():
    setup = ['eval "$(python train.py -sc install=bash)"']  # the README's line
    _assert_completes(["bash", "-c"], setup + _bash_tabs(ENTRY_LINES), ENTRY_LINES, [PYTHON_BIN])


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_hydra_completion_completes_every_entry_file_in_zsh():
    # zsh runs Hydra's bash function through bashcompinit. Its `_bash_complete` wrapper needs a live line
    # editor for its final `compadd`, so this sets what the wrapper sets and calls its `compgen` as it does.
    script = [
        "autoload -Uz compinit bashcompinit && compinit -u -D && bashcompinit",
        'eval "$(python train.py -sc install=bash)"',
    ]
    for line in ENTRY_LINES:
        script += [
            f"words=({line}); CURRENT=${{#words}}",
            'COMP_LINE="$words"; COMP_POINT=${#COMP_LINE}; COMP_CWORD=$((CURRENT - 1)); COMP_WORDS=("${words[@]}")',
            f'echo "== {line}"',
            'eval "compgen ${_comps[python]#_bash_complete } -- ${words[CURRENT]}"',
        ]
    _assert_completes(["zsh", "-f", "-c"], script, ENTRY_LINES, [PYTHON_BIN])


def test_every_entry_file_has_its_console_script():
    assert set(_console_scripts()) == {f"litlab-{Path(entry).stem}" for entry in ENTRY_FILES}


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_hydra_bash_completion_completes_the_console_scripts(tmp_path):
    names = _write_console_scripts(tmp_path)
    setup = [f'eval "$({name} -sc install=bash)"' for name in names]
    lines = [f"{name} experiment=mn" for name in names]
    _assert_completes(["bash", "-c"], setup + _bash_tabs(lines), lines, [tmp_path])


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_hydra_fish_completion_completes_entry_files_and_console_scripts(tmp_path):
    names = _write_console_scripts(tmp_path)
    # Hydra's fish script registers `python FILE` for the one file that printed it: one line per entry file.
    setup = [f"python {entry} -sc install=fish | source" for entry in ENTRY_FILES]
    setup += [f"{name} -sc install=fish | source" for name in names]
    lines = ENTRY_LINES + [f"{name} experiment=mn" for name in names]
    script = setup + [f'echo "== {line}"; complete -C "{line}"' for line in lines]
    _assert_completes(["fish", "-c"], script, lines, [tmp_path, PYTHON_BIN])


def test_a_null_group_choice_becomes_hydras_deletion_and_nothing_else_changes():
    arguments = ["logger=null", "callbacks=None", "model/optimizer=null", "seed=null", "acme=null", "logger=nullx"]
    assert drop_null_groups([*arguments, "+logger=null"]) == [
        "~logger",
        "~callbacks",
        "~model/optimizer",
        "seed=null",  # a value, not a config group
        "acme=null",  # no such group: Hydra names it
        "logger=nullx",
        "+logger=null",
    ]


def test_a_missing_launcher_plugin_ends_the_command_with_its_sentence(monkeypatch, capsys):
    monkeypatch.setattr(launchers, "installed", lambda module: False)
    with pytest.raises(SystemExit) as exited:
        refuse_missing_launcher(["-m", "hydra/launcher=ray", "seed=1"])
    assert exited.value.code == 1
    assert capsys.readouterr() == ("", launchers.missing_launcher_choice(["hydra/launcher=ray"], CONFIG_DIR) + "\n")
    refuse_missing_launcher(["-m", "hydra/launcher=joblib"])  # litlab's own preset: nothing to say
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("command", "entry_file"),
    [("train", "train.py"), ("evaluate", "eval.py"), ("predict", "predict.py"), ("export", "export.py")],
)
def test_a_console_script_runs_its_entry_file_as_main_with_the_commands_arguments(
    command, entry_file, tmp_path, monkeypatch
):
    for name in ("train.py", "eval.py", "predict.py", "export.py"):
        (tmp_path / name).write_text(
            "import sys\nfrom pathlib import Path\n"
            "Path(__file__).with_suffix('.ran').write_text(' '.join([__name__, Path(__file__).name, *sys.argv]))\n"
        )
    monkeypatch.setattr(cli, "ENTRY_DIR", tmp_path)
    monkeypatch.setattr(sys, "argv", [f"litlab-{command}", "seed=3"])
    getattr(cli, command)()
    assert [p.name for p in tmp_path.glob("*.ran")] == [entry_file.replace(".py", ".ran")]
    assert (tmp_path / entry_file).with_suffix(".ran").read_text() == f"__main__ {entry_file} litlab-{command} seed=3"
