"""Judging generated images with a classifier trained on real data: GAN-test accuracy and FID on its features.

GAN-test (Shmelkov et al., 2018, "How good is my GAN?") is the accuracy of a classifier trained on real
images on generated images, against the labels they were generated for. FID is torchmetrics'
FrechetInceptionDistance with the classifier's penultimate layer as the feature extractor, so no Inception
weights are downloaded; its values are on that classifier's scale, not comparable with Inception FIDs.
"""

from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.image.fid import FrechetInceptionDistance

from litlab.checkpoints.load import CheckpointFile
from litlab.data.pixels import TANH, PixelConvention

JUDGE_OPTION = "model.classifier_ckpt"


class ClassifierJudge(nn.Module):
    """A frozen classifier that takes images in [-1, 1] and maps them to its own input convention.

    Generators produce Tanh outputs; the classifier saw its training data's pixel convention (recorded in its
    checkpoint: MNIST's standardised values), so images are converted from one to the other on the way in.

    Args:
        net: the classifier network; its last nn.Linear gives the logits, the input of that layer the features.
        pixels: the pixel convention of the classifier's training data.
    """

    def __init__(self, net: nn.Module, pixels: PixelConvention):
        super().__init__()
        linears = [module for module in net.modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise ValueError(
                f"The classifier {type(net).__name__} has no nn.Linear output layer to take features from."
            )
        self.net = net.requires_grad_(False)
        self.num_features = linears[-1].in_features
        self.num_classes = linears[-1].out_features
        self.pixels = pixels
        self._captured: Tensor | None = None
        linears[-1].register_forward_hook(self._capture)
        self.train(False)

    def _capture(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        self._captured = inputs[0]

    def train(self, mode: bool = True) -> "ClassifierJudge":
        # Always in eval mode (batch norm statistics, no dropout), whatever the surrounding module does.
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """The classifier's logits for images in [-1, 1]."""
        return self.net(TANH.convert(images, self.pixels))

    def features(self, images: Tensor) -> Tensor:
        """The penultimate features (the last linear layer's input) for images in [-1, 1]."""
        self(images)
        return self._captured.flatten(1)


class PenultimateFeatures(nn.Module):
    """The feature extractor torchmetrics' FID calls: (N, C, H, W) in [-1, 1] to (N, num_features)."""

    def __init__(self, judge: ClassifierJudge):
        super().__init__()
        self.judge = judge
        self.num_features = judge.num_features

    def forward(self, images: Tensor) -> Tensor:
        return self.judge.features(images)


def check_judge_path(ckpt_path: str | Path) -> None:
    """Fails before training, not after it, when the judge's checkpoint is missing."""
    CheckpointFile.require(ckpt_path, JUDGE_OPTION)


def load_judge(ckpt_path: str | Path) -> ClassifierJudge:
    """Loads a litlab image-classifier checkpoint (e.g. of `experiment=mnist_cnn`) as a frozen judge.

    The network is rebuilt from the checkpoint's own hyperparameters, read with `weights_only=True`; its
    input convention is the pixel convention the checkpoint recorded.
    """
    checkpoint = CheckpointFile.open(ckpt_path, JUDGE_OPTION)
    net, _ = checkpoint.network()
    pixels = checkpoint.pixels
    if pixels is None:
        raise checkpoint.error("records no pixel convention (its data are not images)")
    return ClassifierJudge(net, pixels)


class GenerationMetrics(nn.Module):
    """GAN-test accuracy and classifier-feature FID, accumulated over batches of real and generated images."""

    def __init__(self, judge: ClassifierJudge):
        super().__init__()
        self.judge = judge
        self.accuracy = MulticlassAccuracy(judge.num_classes, average="micro")
        # normalize=True: inputs are floats (in [-1, 1] here, which the custom extractor expects).
        self.fid = FrechetInceptionDistance(feature=PenultimateFeatures(judge), normalize=True)

    @torch.no_grad()
    def update(self, real: Tensor, fake: Tensor, fake_labels: Tensor) -> None:
        self.accuracy.update(self.judge(fake).argmax(dim=1), fake_labels)
        self.fid.update(real, real=True)
        self.fid.update(fake, real=False)

    def compute(self) -> dict[str, Tensor]:
        return {"gan_test_acc": self.accuracy.compute(), "fid": self.fid.compute()}
