"""Entry point: `python eval.py ckpt_path=PATH [key=value ...]` (see configs/eval.yaml and the README).

The evaluation stack (torch, Lightning) is imported inside the task function, once a run starts: `--help`,
`--cfg job`, `--info` and TAB completion (which runs this file on every TAB) answer without it. Hydra's bash
completion completes only files that hold their `@hydra.main` themselves, hence the decorator here.
"""

import hydra
from omegaconf import DictConfig

from litlab import CONFIG_DIR
from litlab.utils.cli import accept_null_groups
from litlab.utils.whitelist import EXECUTION_WHITELIST


@accept_null_groups  # `logger=null` turns a config group off, as in lightning-hydra-template
@hydra.main(config_path=str(CONFIG_DIR), config_name="eval.yaml", execution_whitelist=EXECUTION_WHITELIST)
def main(cfg: DictConfig) -> None:
    """Tests a checkpoint; the model, and unless `data=` is given the data, are rebuilt from it."""
    from litlab.eval import run

    run(cfg)


if __name__ == "__main__":
    main()
