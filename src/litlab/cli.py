"""The command line: `group=null` on any entry file, a missing launcher plugin named, and the console scripts.

Console scripts: `litlab-train`, `litlab-eval`, `litlab-predict` and `litlab-export` run the entry files: those
of the repository root in a checkout, their copies inside the package (`litlab/entry`) when litlab is installed
from a wheel.

The entry files hold the `@hydra.main`s, where Hydra's completion of `python train.py ...` looks for them; these
commands run the same files as `python train.py` does, so both spellings compose the same configs and name
their runs alike. Hydra's completion completes an installed command by its name:
`eval "$(litlab-train -sc install=bash)"`.
"""

import re
import sys

from litlab import CONFIG_DIR, ENTRY_DIR

_NULL_GROUP = re.compile(r"^(?P<group>[\w/]+)=(?:null|None)$")


def drop_null_groups(arguments: list[str]) -> list[str]:
    """`group=null` (for example `logger=null`) becomes Hydra's deletion `~group`.

    Hydra refuses a null config-group choice on the command line ("Config group override must be a
    string"), yet `logger=null` is how lightning-hydra-template's users turn a group off. The entry files
    rewrite their arguments with it before Hydra reads them.
    """
    rewritten = []
    for argument in arguments:
        match = _NULL_GROUP.match(argument)
        if match and (CONFIG_DIR / match["group"]).is_dir():
            argument = f"~{match['group']}"
        rewritten.append(argument)
    return rewritten


def refuse_missing_launcher(arguments: list[str]) -> None:
    """Ends the command with one sentence when `hydra/launcher=NAME` names a launcher plugin of Hydra's that is
    not installed, with the command that installs it (Hydra itself would only say it cannot find the config)."""
    from hydra_plugins.litlab_optuna_sweeper.launchers import missing_launcher_choice

    if missing := missing_launcher_choice(arguments, CONFIG_DIR):
        print(missing, file=sys.stderr)
        raise SystemExit(1)


def _run(entry_file: str) -> None:
    # runpy.run_path would set sys.argv[0] to the file, and Hydra's `-sc install=bash` would then register
    # `python` rather than this command: run the file's code as `__main__` with the command's argv kept.
    path = ENTRY_DIR / entry_file
    exec(compile(path.read_text(), str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})


def train() -> None:
    """`litlab-train [overrides]`: `python train.py [overrides]` from anywhere."""
    _run("train.py")


def evaluate() -> None:
    """`litlab-eval [overrides]`: `python eval.py [overrides]` from anywhere."""
    _run("eval.py")


def predict() -> None:
    """`litlab-predict [overrides]`: `python predict.py [overrides]` from anywhere."""
    _run("predict.py")


def export() -> None:
    """`litlab-export [overrides]`: `python export.py [overrides]` from anywhere."""
    _run("export.py")
