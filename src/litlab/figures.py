"""Pictures for TensorBoard's Images tab: matplotlib figures and image grids."""

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # figures are rendered off-screen: training machines have no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def confusion_matrix_figure(matrix: Tensor, title: str = "", class_names: Sequence[str] | None = None) -> Figure:
    """Plots a confusion matrix, rows true and columns predicted, normalised per true class.

    Counts are written in the cells for up to 20 classes; beyond that the colours alone stay readable.
    """
    counts = matrix.detach().cpu().float()
    rates = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    n = counts.shape[0]
    size = min(4 + 0.45 * n, 14)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 20:
        names = list(class_names) if class_names else [str(i) for i in range(n)]
        ax.set_xticks(range(n), names, rotation=90 if max(map(len, names)) > 2 else 0)
        ax.set_yticks(range(n), names)
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    int(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    fig.tight_layout()
    return fig


def _image_loggers(loggers: Sequence, method: str) -> list:
    """The experiments (TensorBoard's SummaryWriter) of the loggers that can show pictures."""
    experiments = [getattr(logger, "experiment", None) for logger in loggers]
    return [experiment for experiment in experiments if hasattr(experiment, method)]


def log_figure(loggers: Sequence, tag: str, figure: Figure, step: int) -> None:
    """Sends a figure to every logger that shows images (TensorBoard), then frees it."""
    for experiment in _image_loggers(loggers, "add_figure"):
        experiment.add_figure(tag, figure, global_step=step, close=False)
    plt.close(figure)


def image_grid(images: Tensor, nrow: int) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] as one (3, H', W') grid in [0, 1], `nrow` images per row."""
    return make_grid(images.detach().cpu().clamp(-1, 1), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


def log_image(loggers: Sequence, tag: str, image: Tensor, step: int) -> None:
    """Sends an image (C, H, W) in [0, 1] to every logger that shows images (TensorBoard)."""
    for experiment in _image_loggers(loggers, "add_image"):
        experiment.add_image(tag, image, global_step=step)
