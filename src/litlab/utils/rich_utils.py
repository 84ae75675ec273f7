import io
import sys
from collections.abc import Sequence
from pathlib import Path

import rich
import rich.console
import rich.syntax
import rich.tree
from hydra.core.hydra_config import HydraConfig
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.prompt import Prompt

from litlab.masking import environment_masked, public_names
from litlab.utils.pylogger import RankedLogger, log_to_files

log = RankedLogger(__name__)


@rank_zero_only
def print_config_tree(
    cfg: DictConfig,
    print_order: Sequence[str] = ("data", "model", "callbacks", "logger", "trainer", "paths", "extras"),
    resolve: bool = False,
    save_to_file: bool = False,
    to_terminal: bool = True,
) -> None:
    """Prints the composed config as a rich tree, on the terminal or (`to_terminal=False`) into the run's log file
    only, and saves it beside the run when asked.

    Values from the environment show as their `${oc.env:NAME}` (`litlab.masking`): the tree is for reading.
    """
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    queue = [field for field in print_order if field in cfg]
    queue += [field for field in cfg if field not in queue]
    with environment_masked(public_names(cfg)):
        for field in queue:
            branch = tree.add(field, style="dim", guide_style="dim")
            content = cfg[field]
            text = OmegaConf.to_yaml(content, resolve=resolve) if isinstance(content, DictConfig) else str(content)
            branch.add(rich.syntax.Syntax(text, "yaml"))
    if to_terminal:
        rich.print(tree)
    else:
        text = io.StringIO()
        rich.console.Console(file=text, width=120, color_system=None).print(tree)
        log_to_files(log.logger, "The composed config:\n" + text.getvalue().rstrip())
    if save_to_file:
        with open(Path(cfg.paths.output_dir, "config_tree.log"), "w") as file:
            rich.print(tree, file=file)


@rank_zero_only
def enforce_tags(cfg: DictConfig, save_to_file: bool = False) -> None:
    """Asks for tags when none are given; in a multirun or without a terminal, refuses instead."""
    if cfg.get("tags"):
        return
    if "id" in HydraConfig().cfg.hydra.job:
        raise ValueError("Tags are required in a multirun: set them with `tags=[...]` on the command line.")
    if not sys.stdin.isatty():
        raise ValueError(
            "No tags are given and there is no terminal to ask for them: set them with `tags=[...]` on the "
            "command line (or extras.enforce_tags=false)."
        )
    log.warning("No tags given in the config; asking for them.")
    tags = [t.strip() for t in Prompt.ask("Enter a list of comma separated tags", default="dev").split(",")]
    with open_dict(cfg):
        cfg.tags = [t for t in tags if t]
    if save_to_file:
        with open(Path(cfg.paths.output_dir, "tags.log"), "w") as file:
            rich.print(cfg.tags, file=file)
