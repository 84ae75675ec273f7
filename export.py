"""Entry point: `python export.py ckpt_path=PATH format=onnx|pt2` (see configs/export.yaml and the README).

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
from litlab.cli import drop_null_groups
from litlab.whitelist import EXECUTION_WHITELIST


@hydra.main(config_path=str(CONFIG_DIR), config_name="export.yaml", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> None:
    """Exports a classifier checkpoint to ONNX or torch.export's .pt2, checked against PyTorch."""
    from litlab.export import run

    run(cfg)


if __name__ == "__main__":
    sys.argv[1:] = drop_null_groups(sys.argv[1:])  # `logger=null` turns a group off, as in lightning-hydra-template
    main()
