"""The record litlab writes into every checkpoint (`checkpoint["litlab"]`): the classes that rebuild the run,
the pixel convention of its data, what predicting needs from the data, and the run record that reproduces the
run (`litlab.run_record`), all as plain values (`torch.load(weights_only=True)` reads them).
`litlab.checkpoints.load` is the reading side.
"""

from collections.abc import Mapping
from typing import Any

from lightning import LightningDataModule, LightningModule

from litlab.run_record import RunRecorder


def data_record(datamodule: LightningDataModule | None) -> dict[str, Any] | None:
    """What predicting from the checkpoint alone needs from the data, as plain values.

    The pixel convention is not repeated here: `litlab_record` keeps it once, under "pixels".
    """
    if datamodule is None:
        return None
    hparams = getattr(datamodule, "hparams", {})
    vocab = getattr(datamodule, "vocab", None)
    if vocab is not None:
        return {"lowercase": bool(hparams.get("lowercase", True))}
    if hasattr(datamodule, "num_classes") and hasattr(datamodule, "dims"):
        channels, height, width = (int(n) for n in datamodule.dims)
        names = getattr(datamodule, "class_names", None) or [str(i) for i in range(datamodule.num_classes)]
        return {
            "channels": channels,
            "image_size": [height, width],
            "class_names": [str(name) for name in names],
        }
    if "crop_size" in hparams:
        size = int(hparams["crop_size"])
        return {"image_size": [size, size]}
    return None


def litlab_record(module: LightningModule, datamodule: LightningDataModule | None) -> dict[str, Any]:
    """`checkpoint["litlab"]`: the classes that rebuild the run, the pixel convention of its data, what
    predicting needs from the data, and the run record (None for a module trained outside litlab's tasks)."""
    pixels = getattr(module, "pixels", None)
    recorder = RunRecorder.of(module._trainer)
    return {
        "module": f"{type(module).__module__}.{type(module).__qualname__}",
        "datamodule": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}" if datamodule else None,
        "pixels": pixels.record() if pixels is not None else None,
        "data": data_record(datamodule),
        "run": recorder.record if recorder else None,
    }


def hide_environment(checkpoint: dict[str, Any], trainer: Any) -> None:
    """Masks the run's values from the environment in the checkpoint's hyperparameters (`litlab.masking`)."""
    recorder = RunRecorder.of(trainer)
    if recorder is None:
        return
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if key in checkpoint:
            checkpoint[key] = recorder.hide(checkpoint[key])


def offline_net_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A ResNet spec that rebuilds the same network without loading its pretrained weights again.

    A checkpoint holds the trained weights anyway; pinning the choices the weights implied (stem, ImageNet
    input) lets it be rebuilt offline, without the original download or file.
    """
    spec = dict(spec)
    if spec.get("_target_") not in ("litlab.models.nets.ResNet", "litlab.models.nets.resnet.ResNet"):
        return spec
    pretrained = bool(spec.get("weights"))
    if spec.get("stem", "auto") == "auto":
        spec["stem"] = "imagenet" if pretrained else "cifar"
    if spec.get("imagenet_input") is None:
        spec["imagenet_input"] = pretrained
    spec["weights"] = None
    return spec
