"""Grad-CAM heatmaps (captum's LayerGradCam) of a classifier's last conv layer, drawn over the images."""

from pathlib import Path

import torch
from captum.attr import LayerAttribution, LayerGradCam
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import move_data_to_device, rank_zero_only
from matplotlib.figure import Figure
from torch import Tensor, nn

from litlab.figures import log_figure


def last_conv(model: nn.Module) -> nn.Conv2d:
    """The last `nn.Conv2d` among the model's modules (a factorized CNN's last 1 x k convolution)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer: Grad-CAM needs a convolutional network.")
    return convs[-1]


def gradcam(model: nn.Module, images: Tensor, layer: nn.Module | None = None) -> tuple[Tensor, Tensor]:
    """Grad-CAM of each image for its predicted class, upsampled to the image and scaled to [0, 1] per image.

    Returns the heatmaps (N, H, W) and the predicted classes (N,). The model must be in eval mode.
    """
    layer = layer or last_conv(model)
    # Lightning's test loop runs under inference mode, in which nothing has a gradient.
    with torch.inference_mode(False), torch.enable_grad():
        images = images.clone().requires_grad_(True)
        preds = model(images).argmax(dim=1)
        attribution = LayerGradCam(model, layer).attribute(images, target=preds, relu_attributions=True)
        heat = LayerAttribution.interpolate(attribution, tuple(images.shape[-2:]), "bilinear").detach()
    heat = heat.sum(dim=1)
    peak = heat.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    return heat / peak, preds.detach()


def gradcam_figure(
    images: Tensor, heatmaps: Tensor, preds: Tensor, labels: Tensor, class_names: list[str] | None = None
) -> Figure:
    """A grid of images ((N, C, H, W) in [0, 1]) with their heatmaps overlaid, titled predicted / true class."""
    n = len(images)
    cols = min(n, 8)
    rows = -(-n // cols)
    # Built without pyplot, so no GUI backend is ever touched.
    fig = Figure(figsize=(1.6 * cols, 2.0 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    names = class_names or [str(i) for i in range(int(max(preds.max(), labels.max())) + 1)]
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        image = images[i].permute(1, 2, 0).clamp(0.0, 1.0).cpu()
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0, vmax=1.0)
        ax.imshow(heatmaps[i].cpu(), cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        right = bool(preds[i] == labels[i])
        ax.set_title(f"{names[preds[i]]} / {names[labels[i]]}", fontsize=8, color="black" if right else "red")
    fig.suptitle("Grad-CAM, predicted / true class", fontsize=9)
    fig.tight_layout()
    return fig


class GradCAM(Callback):
    """After testing, draws Grad-CAM heatmaps of the predicted class for the first test images.

    The grid goes to TensorBoard (`test/gradcam`) and to a PNG. Use it in training runs (add it to
    `callbacks`) or on a checkpoint: `python eval.py ckpt_path=... +callbacks=gradcam`.

    Args:
        num_images: how many test images to draw.
        layer: dotted name of the layer to explain, relative to the module (for example `net.features.4`);
            None takes the last conv layer.
        path: the PNG to write (None: only TensorBoard).
    """

    def __init__(self, num_images: int = 16, layer: str | None = None, path: str | None = None):
        if num_images < 1:
            raise ValueError(f"num_images must be a positive integer, got {num_images}.")
        self.num_images = num_images
        self.layer = layer
        self.path = Path(path) if path else None

    @rank_zero_only
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ValueError("Grad-CAM draws its images from the test split: call trainer.test with a datamodule.")
        raw_images, labels = [], []
        for batch_images, batch_labels in datamodule.test_dataloader():
            raw_images.append(batch_images)
            labels.append(batch_labels)
            if sum(map(len, raw_images)) >= self.num_images:
                break
        raw = torch.cat(raw_images)[: self.num_images]
        labels = torch.cat(labels)[: self.num_images]
        images, _ = datamodule.on_after_batch_transfer(move_data_to_device((raw, labels), pl_module.device), 0)
        layer = pl_module.get_submodule(self.layer) if self.layer else None
        pl_module.eval()
        heatmaps, preds = gradcam(pl_module, images, layer)
        # The model's own inputs are drawn, mapped back to [0, 1] with the pixel convention of its data.
        shown = pl_module.pixels.to_unit(images) if pl_module.pixels is not None else raw.float() / 255.0
        figure = gradcam_figure(shown.detach(), heatmaps, preds.cpu(), labels, pl_module.hparams.get("class_names"))
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(self.path)
        log_figure(trainer.loggers, "test/gradcam", figure, trainer.global_step)
