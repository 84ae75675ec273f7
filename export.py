"""Entry point: `python export.py ckpt_path=PATH format=onnx|pt2` (see configs/export.yaml and the README).

The @hydra.main function lives in this file (Hydra's shell completion looks for it here), and the training
stack is imported inside it, so that `--help` and `--cfg` answer without loading torch.
"""

import hydra
from omegaconf import DictConfig

from litlab.utils.cli import accept_null_groups
from litlab.utils.whitelist import EXECUTION_WHITELIST


@accept_null_groups  # `logger=null` turns a config group off, as in train.py
@hydra.main(config_path="configs", config_name="export.yaml", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> None:
    from litlab.export import run

    run(cfg)


if __name__ == "__main__":
    main()
