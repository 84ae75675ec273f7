"""Entry point: `python train.py experiment=NAME [key=value ...]` (see configs/train.yaml and the README).

The training stack (torch, Lightning) is imported inside `main`, once a run starts: `--help`, `--cfg job`,
`--info` and TAB completion (which runs this file on every TAB) answer without it. Hydra's bash completion
completes only files that hold their `@hydra.main` themselves, hence the decorator here.
"""

import sys
from pathlib import Path

# A checkout runs its own code, configs, logs/ and data/, whichever litlab the environment has installed (a wheel,
# or an editable install of another checkout); beside the copy of this file inside a wheel, src/ does not exist.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

import hydra
from omegaconf import DictConfig

from litlab import CONFIG_DIR
from litlab.cli import drop_null_groups, refuse_missing_launcher
from litlab.whitelist import EXECUTION_WHITELIST


@hydra.main(config_path=str(CONFIG_DIR), config_name="train.yaml", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> float | None:
    """Trains, then tests the best checkpoint; returns `optimized_metric` so that a sweeper can optimise it."""
    from litlab.train import run

    return run(cfg)


if __name__ == "__main__":
    sys.argv[1:] = drop_null_groups(sys.argv[1:])  # `logger=null` turns a group off, as in lightning-hydra-template
    refuse_missing_launcher(sys.argv[1:])  # `hydra/launcher=ray` without its plugin: which pip package
    main()
