"""litlab: a Hydra + PyTorch Lightning research template.

Importing the package is cheap on purpose (no torch, no Lightning): the entry files import it to find the
configs, and `--help`, `--cfg`, `--info` and TAB completion must answer without the training stack.
"""

import os
from pathlib import Path

from litlab.folders import register_resolver

# The configs address logs/ and data/ from the repository root (`paths.root_dir`), wherever the
# command is started; an explicit PROJECT_ROOT still wins, as with lightning-hydra-template's rootutils.
ROOT_DIR = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT_DIR / "configs"
os.environ.setdefault("PROJECT_ROOT", str(ROOT_DIR))

# The configs name run and sweep folders with `${litlab.new_dir:...}`: known before any entry file composes them.
register_resolver()
