"""The one place that reads litlab checkpoints: safely, with the trust check once, and errors a user can act on.

Every consumer (eval.py, predict.py, export.py, the GAN judge, the distillation teacher) opens a checkpoint
with `CheckpointFile.open` and rebuilds what it needs from it: the LightningModule, the datamodule, the bare
network, or the plain description of the data that predicting needs. Checkpoints are read with
`weights_only=True` (no pickled code runs), and only litlab's own classes are rebuilt from the names inside
them, since a checkpoint may come from anywhere.

The writing side, `litlab.checkpoints.record.litlab_record`, is what `LitlabModule.on_save_checkpoint` stores
under `checkpoint["litlab"]`.
"""

import inspect
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning import LightningDataModule, LightningModule
from torch import nn

from litlab.checkpoints.record import offline_net_spec
from litlab.data.pixels import PixelConvention, checkpoint_pixels
from litlab.whitelist import NET_WHITELIST, TRUSTED_PACKAGES, NetworkTargetError, is_network

# What each option that takes a checkpoint should be given: the end of every error sentence about it.
HINTS = {
    "ckpt_path": "pass ckpt_path=<run dir>/checkpoints/<file>.ckpt written by litlab's train.py "
    "(training prints where it saved the best checkpoint)",
    "model.classifier_ckpt": "train one with `python train.py experiment=mnist_cnn hydra.run.dir=logs/mnist_cnn_judge` "
    "and point model.classifier_ckpt at its best checkpoint, or set model.classifier_ckpt=null to skip the evaluation",
    "model.teacher_ckpt": "point model.teacher_ckpt at a litlab classifier checkpoint, such as one written by "
    "experiment=kd_teacher_linear",
}


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not a litlab checkpoint; the message says what to pass."""


def _in_brief(err: BaseException) -> str:
    """The error's class and whole message on one line (Hydra's messages span several lines)."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _accepted(cls: type, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    """The saved hyperparameters that `cls` takes, as Lightning's `load_from_checkpoint` passes them."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(hparams or {})
    return {name: value for name, value in (hparams or {}).items() if name in parameters}


class CheckpointFile:
    """A litlab checkpoint read with `weights_only=True`, and what can be rebuilt from it.

    Args:
        path: the checkpoint file.
        option: the setting the user gave the path with (`ckpt_path`, `model.teacher_ckpt`, ...), named in errors.
    """

    def __init__(self, path: Path, option: str, content: dict[str, Any]):
        self.path, self.option, self.content = path, option, content
        self.record: dict[str, Any] = content.get("litlab") or {}

    @classmethod
    def open(cls, path: str | Path, option: str = "ckpt_path", mmap: bool = False) -> "CheckpointFile":
        """Reads the checkpoint at `path`, or raises a CheckpointError that says what is wrong and what to pass.

        Everything rebuilt from it comes from what this one read holds. `mmap=True` maps the tensors instead of
        reading them: for checking a checkpoint that Lightning reads again to resume from.
        """
        path = Path(path).expanduser()
        reader = cls(path, option, {})
        if not path.is_file():
            raise reader.error("does not exist")
        try:
            content = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as err:
            if "global" in str(err).lower():  # torch names the class or function it refused to unpickle
                raise reader.error(
                    "holds pickled Python objects besides tensors and plain values, which litlab never loads "
                    "(weights_only=True)"
                ) from None
            raise reader.error(f"is corrupt or not a PyTorch checkpoint ({type(err).__name__})") from None
        # torch reads the archive with its own zip reader (RuntimeError, OSError on a file cut short); a file
        # that is no archive goes to the legacy unpickler, which fails on its first bytes (EOFError, KeyError).
        except (RuntimeError, OSError, EOFError, KeyError, ValueError) as err:
            raise reader.error(f"is corrupt or not a PyTorch checkpoint ({type(err).__name__})") from None
        if not isinstance(content, dict) or "state_dict" not in content:
            raise reader.error("holds no Lightning state_dict")
        return cls(path, option, content)

    @classmethod
    def require(cls, path: str | Path, option: str = "ckpt_path") -> None:
        """Raises the "does not exist" sentence now, before a long run that would need the file at its end."""
        if not Path(path).expanduser().is_file():
            raise cls(Path(path).expanduser(), option, {}).error("does not exist")

    def error(self, problem: str) -> CheckpointError:
        """The one sentence for a problem with this checkpoint: what is wrong, then what to pass instead."""
        hint = HINTS.get(self.option, f"point {self.option} at a .ckpt file written by litlab's train.py")
        return CheckpointError(f"Checkpoint {self.option}='{self.path}' {problem}: {hint}.")

    def _foreign_network(self, target: str, key: str) -> CheckpointError:
        return self.error(
            f"names the network {target!r} (under {key}), which is none of the networks litlab rebuilds from a "
            "checkpoint (litlab's, torchvision's and those of TRUSTED_PACKAGES in litlab's whitelist module)"
        )

    def litlab_class(self, key: str, base: type) -> type:
        """The class the record names under `key` ("module", "datamodule"), if it is litlab's own and a `base`."""
        name = self.record.get(key)
        kind = base.__name__
        # The name comes from the file, which may come from anywhere: only litlab's own classes are trusted, and
        # those of the packages the user trusts (TRUSTED_PACKAGES).
        if not isinstance(name, str) or not name.startswith(("litlab.", *(f"{p}." for p in TRUSTED_PACKAGES))):
            raise self.error(
                f"does not name a litlab {kind} (found {name!r}); litlab rebuilds only its own classes and those "
                "of TRUSTED_PACKAGES (litlab's whitelist module)"
            )
        try:
            found = get_class(name)
        except (ImportError, AttributeError, ValueError) as err:
            raise self.error(
                f"names {name}, which this version of litlab does not have ({type(err).__name__})"
            ) from None
        if not (isinstance(found, type) and issubclass(found, base)):
            raise self.error(f"names {name}, which is not a {kind}")
        return found

    @property
    def module_name(self) -> str:
        """The LightningModule's class name, for messages (e.g. "ImageClassifier")."""
        return str(self.record.get("module") or "?").rsplit(".", 1)[-1]

    def module(self) -> LightningModule:
        """The LightningModule, rebuilt from the checkpoint's hyperparameters and weights (on the CPU).

        Built from the content already read, as Lightning's `load_from_checkpoint` builds it (constructor
        from the hyperparameters, `on_load_checkpoint`, then the weights), without reading the file again.
        """
        module_cls = self.litlab_class("module", LightningModule)
        try:
            module = module_cls(**_accepted(module_cls, self.content.get("hyper_parameters")))
            module.on_load_checkpoint(self.content)
            module.load_state_dict(self.content["state_dict"])
        except NetworkTargetError as err:
            raise self._foreign_network(err.target, f"hyper_parameters.{err.key}") from None
        except (RuntimeError, TypeError, KeyError, ValueError, InstantiationException) as err:
            raise self.error(f"could not be rebuilt as {module_cls.__name__} ({_in_brief(err)})") from None
        return module

    def datamodule(self) -> LightningDataModule:
        """The datamodule the model was trained with, rebuilt from the data settings saved in the checkpoint."""
        datamodule_cls = self.litlab_class("datamodule", LightningDataModule)
        try:
            datamodule = datamodule_cls(**_accepted(datamodule_cls, self.content.get("datamodule_hyper_parameters")))
            state = self.content.get(datamodule_cls.__qualname__)
            if state:
                datamodule.load_state_dict(state)
        except (RuntimeError, TypeError, KeyError, ValueError) as err:
            raise self.error(f"could not rebuild its {datamodule_cls.__name__} ({_in_brief(err)})") from None
        return datamodule

    def network(self) -> tuple[nn.Module, dict[str, Any]]:
        """The bare network of a classifier checkpoint (`hyper_parameters.net`) with its trained weights, and its spec.

        No LightningModule is rebuilt, so the trust check is on the network class: litlab's or torchvision's
        (NET_WHITELIST). Pretrained-weight downloads are pinned off: the checkpoint holds the trained weights.
        """
        spec = (self.content.get("hyper_parameters") or {}).get("net")
        if not isinstance(spec, Mapping):
            raise self.error(
                f"holds no network spec (hyper_parameters.net): it is a {self.module_name}, not an image classifier"
            )
        target = str(spec.get("_target_"))
        if not is_network(target):
            raise self._foreign_network(target, "hyper_parameters.net")
        spec = offline_net_spec(spec)
        state = {
            key.removeprefix("net.").replace("_orig_mod.", ""): value
            for key, value in self.content["state_dict"].items()
            if key.startswith("net.")
        }
        try:
            net = instantiate(spec, _execution_whitelist_=NET_WHITELIST)
            net.load_state_dict(state)
        except (RuntimeError, TypeError, KeyError, ValueError, InstantiationException) as err:
            raise self.error(f"holds weights that do not fit its network {target} ({_in_brief(err)})") from None
        return net.eval(), spec

    @property
    def pixels(self) -> PixelConvention | None:
        """The pixel convention of the training data (None for text); see `litlab.data.pixels`."""
        return checkpoint_pixels(self.content)

    @property
    def data(self) -> dict[str, Any]:
        """What the data defined, as plain values (see `data_record`): image size, channels, class names,
        tokenisation, and the pixel statistics `mean` and `std` of the recorded pixel convention."""
        data = self.record.get("data")
        data = dict(data) if isinstance(data, Mapping) else {}
        pixels = self.pixels
        if pixels is not None:
            data.update(pixels.record())
        return data
