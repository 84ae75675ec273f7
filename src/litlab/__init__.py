"""litlab: a Hydra + PyTorch Lightning research template.

Importing the package is cheap on purpose (no torch, no Lightning): the entry files import it to find the
configs, and `--help`, `--cfg`, `--info` and TAB completion must answer without the training stack.

Where things are: in a source checkout (an editable install, or `src/` on the path) the configs and the entry
files are the checkout's, and runs land in its logs/ and read its data/; installed from a wheel, the configs and
entry files travel inside the package (`litlab/configs`, `litlab/entry`) and runs land in the folder the command
is started from. An explicit PROJECT_ROOT still wins, as with lightning-hydra-template's rootutils.
"""

import os
from pathlib import Path

from litlab.folders import register_resolver

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parents[1]
if (_CHECKOUT / "configs").is_dir() and (_CHECKOUT / "src" / "litlab") == PACKAGE_DIR:
    ROOT_DIR, CONFIG_DIR, ENTRY_DIR = _CHECKOUT, _CHECKOUT / "configs", _CHECKOUT
else:
    ROOT_DIR, CONFIG_DIR, ENTRY_DIR = Path.cwd(), PACKAGE_DIR / "configs", PACKAGE_DIR / "entry"
os.environ.setdefault("PROJECT_ROOT", str(ROOT_DIR))

# The configs name run and sweep folders with `${litlab.new_dir:...}`: known before any entry file composes them.
register_resolver()
