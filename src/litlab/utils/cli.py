"""Command-line conveniences applied before Hydra reads `sys.argv`."""

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

from litlab import CONFIG_DIR
from litlab.search.launchers import missing_launcher_choice

_NULL_GROUP = re.compile(r"^(?P<group>[\w/]+)=(?:null|None)$")


def drop_null_groups(arguments: list[str]) -> list[str]:
    """`group=null` (for example `logger=null`) becomes Hydra's deletion `~group`.

    Hydra refuses a null config-group choice on the command line ("Config group override must be a
    string"), yet `logger=null` is how lightning-hydra-template's users turn a group off.
    """
    rewritten = []
    for argument in arguments:
        match = _NULL_GROUP.match(argument)
        if match and (CONFIG_DIR / match["group"]).is_dir():
            argument = f"~{match['group']}"
        rewritten.append(argument)
    return rewritten


def accept_null_groups(hydra_main: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a `@hydra.main` function so that `group=null` on the command line turns the group off, and a
    launcher plugin chosen by `hydra/launcher=NAME` but not installed is named with its pip package."""

    @functools.wraps(hydra_main)
    def run(*args: Any, **kwargs: Any) -> Any:
        sys.argv[1:] = drop_null_groups(sys.argv[1:])
        if missing := missing_launcher_choice(sys.argv[1:], CONFIG_DIR):
            print(missing, file=sys.stderr)
            raise SystemExit(1)
        return hydra_main(*args, **kwargs)

    return run
