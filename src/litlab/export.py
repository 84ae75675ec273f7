"""The recipe of an export: `python export.py ckpt_path=PATH format=onnx|pt2` (configs/export.yaml).

A classifier's network is exported with the training normalisation folded in: the exported model takes
float32 images (N, C, H, W) with pixels in [0, 1] and returns logits (N, classes); N is dynamic. TorchScript
is deprecated (torch.jit warns since torch 2.10, Lightning 2.6.1 deprecated `to_torchscript`), so
`format=torchscript` writes torch.export's `.pt2` (load it with `torch.export.load`). The file is checked
against PyTorch's output on the same batch (onnxruntime for ONNX) before the command reports success.
"""

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from litlab.checkpoints.load import CheckpointFile
from litlab.data.pixels import standardise
from litlab.utils.errors import report_errors
from litlab.utils.preflight import before_export, checkpoint_path
from litlab.utils.pylogger import RankedLogger
from litlab.utils.utils import extras, task_context

log = RankedLogger(__name__)

FORMATS = ("onnx", "pt2", "torchscript")
# the tolerances of PyTorch's own ONNX exporter tests
RTOL, ATOL = 1e-3, 1e-5


class StandardisedClassifier(nn.Module):
    """A classifier network with its training normalisation in front: pixels in [0, 1] in, logits out."""

    def __init__(self, net: nn.Module, mean: list[float], std: list[float]):
        super().__init__()
        self.net = net
        self.mean, self.std = list(mean), list(std)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(standardise(images, self.mean, self.std))


def exportable(checkpoint: CheckpointFile) -> tuple[StandardisedClassifier, dict[str, Any]]:
    """The checkpoint's classifier in eval mode with the normalisation folded in, and its description."""
    net, spec = checkpoint.network()
    data = checkpoint.data
    shape = (data["channels"], *data["image_size"]) if "image_size" in data else getattr(net, "input_shape", None)
    if "mean" not in data or shape is None:
        raise checkpoint.error("records neither its input size nor its pixel statistics")
    model = StandardisedClassifier(net, data["mean"], data["std"]).eval()
    num_classes = getattr(net, "num_classes", None)
    description = {
        "checkpoint": str(checkpoint.path),
        "network": spec["_target_"],
        "input": {
            "name": "images",
            "shape": ["batch", *[int(n) for n in shape]],
            "dtype": "float32",
            "pixels": "in [0, 1] (uint8 / 255); the training normalisation (x - mean) / std is inside the model",
            "mean": data["mean"],
            "std": data["std"],
        },
        "output": {"name": "logits", "shape": ["batch", num_classes], "note": "softmax gives the probabilities"},
        "class_names": data.get("class_names") or [str(i) for i in range(num_classes or 0)],
    }
    return model, description


def _dynamic_batch() -> dict[str, dict[int, Any]]:
    return {"images": {0: torch.export.Dim("batch", min=1, max=65536)}}


def export_onnx(model: nn.Module, example: Tensor, path: Path, description: dict[str, Any]) -> Path:
    """One self-contained ONNX file (dynamo exporter, dynamic batch axis), the description in its metadata."""
    # The exporter's optimisation passes log every step at INFO, which Hydra's logging would print.
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=_dynamic_batch(),
        verbose=False,
    )
    program.model.metadata_props["litlab"] = json.dumps(description)
    program.save(str(path), external_data=False)
    return path


def export_pt2(model: nn.Module, example: Tensor, path: Path, description: dict[str, Any]) -> Path:
    """torch.export's program (dynamic batch axis) saved as `.pt2`, the description as an extra file."""
    program = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch())
    torch.export.save(program, str(path), extra_files={"litlab.json": json.dumps(description)})
    return path


def run_exported(path: Path, images: Tensor) -> np.ndarray:
    """The exported file's output for `images`: onnxruntime for `.onnx`, torch.export.load for `.pt2`."""
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"images": images.numpy()})[0]
    return torch.export.load(str(path)).module()(images).detach().numpy()


class ExportPathError(OSError):
    """A file export.py cannot write; the message names it and says what to change."""


def require_writable(path: Path) -> None:
    """Creates `path`'s folder and checks that the file can be written there, before any time goes into exporting.

    Opened for appending, so that a file already there is not cut; a file made by the check is removed again.
    """
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as err:
        raise ExportPathError(
            f"Cannot write {path} ({err.strerror or type(err).__name__}): export into a writable folder, with "
            "hydra.run.dir=<folder> or name=<folder>/<file name> (name= without a suffix)."
        ) from None
    if not existed:
        path.unlink()


def export(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Exports the classifier of `ckpt_path` and checks the file against PyTorch on the same batch."""
    with task_context(cfg):
        ckpt_path = checkpoint_path(cfg, "export.py")
        fmt = str(cfg.format).lower()
        if fmt not in FORMATS:
            raise ValueError(f"Unknown format={cfg.format}: choose onnx or pt2 (torchscript writes pt2).")
        if fmt == "torchscript":
            log.warning(
                "TorchScript is deprecated (torch.jit warns since torch 2.10): writing torch.export's .pt2 instead; "
                "load it with torch.export.load(path).module()."
            )
            fmt = "pt2"
        checkpoint = CheckpointFile.open(ckpt_path)
        model, description = exportable(checkpoint)
        out = Path(cfg.paths.output_dir)
        path, description_path = out / f"{cfg.name}.{fmt}", out / f"{cfg.name}.json"
        for target in (path, description_path):
            require_writable(target)
        example = torch.rand(2, *description["input"]["shape"][1:], generator=torch.Generator().manual_seed(0))
        log.info(f"Exporting {description['network']} from {checkpoint.path} to {path}")
        with torch.no_grad():
            (export_onnx if fmt == "onnx" else export_pt2)(model, example, path, description)
        description_path.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")

        # A batch of another size than the example's shows that the batch axis really is dynamic.
        check = torch.rand(cfg.check_batch, *example.shape[1:], generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = model(check).numpy()
        got = run_exported(path, check)
        max_error = float(np.abs(got - expected).max())
        if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
            raise RuntimeError(
                f"The exported {path.name} differs from PyTorch by up to {max_error:.2e} on the same batch "
                f"(tolerance rtol={RTOL}, atol={ATOL}): report the network {description['network']} as not exportable."
            )
        log.info(
            f"Exported {path.resolve()} ({path.stat().st_size / 1e6:.2f} MB); on a batch of {cfg.check_batch} it "
            f"matches PyTorch within rtol={RTOL}, atol={ATOL} (largest difference {max_error:.2e})."
        )
        return {"path": path, "max_error": max_error, "description": description}, {"cfg": cfg, "model": model}


def run(cfg: DictConfig) -> None:
    """What `python export.py` runs: the check of its checkpoint, extras, then `export`; an error ends it with one
    sentence on the terminal."""
    with report_errors():
        before_export(cfg)
        extras(cfg)
        export(cfg)
