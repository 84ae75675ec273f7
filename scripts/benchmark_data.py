"""One MNIST training epoch of the same MLP, three ways, in one run: how much does the input pipeline cost?

    python scripts/benchmark_data.py [--data-dir DIR] [--rounds 3] [--epochs 3] [--tv-workers 0] [--results-page NAME]

1. plain: a hand-written PyTorch loop over in-memory tensors (the floor);
2. litlab: our MNISTDataModule and ImageClassifier (all its metrics) under a Lightning Trainer with the
   template's speed measures (`NoProfiler` and the others of src/litlab/speed.py);
   (also printed: lightning-bare, our datamodule with a stock LightningModule that only computes the loss,
   under a stock Trainer: what Lightning costs before litlab's savings; and litlab-no-speedups, way 2 with
   litlab's speed measures off, as `speedups=false` runs it: what the measures of src/litlab/speed.py save);
3. torchvision: `MNIST(transform=ToTensor()+Normalize())` through a DataLoader, sample by sample via PIL.

The MLP is 784-64-128-64-10 with batch norm, batch size 64, Adam. It reads the real MNIST subset beside
the repository when present, otherwise writes generated MNIST idx files to a temporary folder. The ways
take turns for `--rounds` rounds of `--epochs` epochs each; each way's fastest epoch counts (the first of
a round pays for warm-up). All ways share one process after `speed.apply()`, which, on a machine without NVIDIA's
NVML library, drops the per-call NVML probe that `import lightning` turns on (see src/litlab/speed.py):
left on, it would slow the plain loop's Adam by about 0.15 ms a step too. The last lines are the
epoch-time ratios `speedup_vs_torchvision` (torchvision / litlab), `overhead_vs_plain` (litlab / plain) and
`speedups_saving` (litlab-no-speedups / litlab). The table also goes to docs/results/data-pipeline.md
(`--results-page`), stamped with the command, commit and machine.
"""

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.profilers import Profiler
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import MNIST

from litlab import speed
from litlab.data import MNISTDataModule
from litlab.data.synthetic import write_mnist
from litlab.models import ImageClassifier
from litlab.models.nets import MLP
from litlab.models.optim import ADAM
from litlab.reports.results_page import markdown_table, write_results_page

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist-subset"
BATCH = 64
NET = {
    "_target_": "litlab.models.nets.MLP",
    "in_channels": 1,
    "image_size": 28,
    "num_classes": 10,
    "hidden_sizes": [64, 128, 64],
    "batch_norm": True,
}
WAYS = {
    "plain": "plain PyTorch loop over in-memory tensors",
    "lightning-bare": "stock Lightning: litlab's datamodule, a LightningModule that only computes the loss",
    "litlab": "litlab: its datamodule and `ImageClassifier` (loss, accuracy), `NoProfiler`",
    "litlab-no-speedups": "litlab with its speed measures off (`speedups=false`)",
    "torchvision": "torchvision `MNIST(transform=...)` through a DataLoader",
}


def make_net() -> MLP:
    return MLP(1, 28, 10, hidden_sizes=[64, 128, 64], batch_norm=True)


def plain_epochs(images: torch.Tensor, labels: torch.Tensor, epochs: int) -> list[float]:
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(images))
        for i in range(0, len(images), BATCH):
            idx = order[i : i + BATCH]
            x = (images[idx].float() / 255.0 - 0.1307) / 0.3081
            loss = F.cross_entropy(net(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def timed(cls: type[L.LightningModule]) -> type[L.LightningModule]:
    """`cls`, recording the wall time of each training epoch in `epoch_times`.

    The module's own hooks time the epoch rather than a Callback: Lightning calls every module hook anyway,
    while each callback adds a dispatch to every per-step hook, a cost the plain loop would not share.
    """

    class Timed(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.epoch_times: list[float] = []

        def on_train_epoch_start(self):
            super().on_train_epoch_start()
            self.epoch_start = time.perf_counter()

        def on_train_epoch_end(self):
            super().on_train_epoch_end()
            self.epoch_times.append(time.perf_counter() - self.epoch_start)

    return Timed


class BareModule(L.LightningModule):
    """The same MLP and loss with nothing else: no metrics, no logging."""

    def __init__(self):
        super().__init__()
        self.net = make_net()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def lightning_epochs(
    data_dir: Path, epochs: int, model: L.LightningModule, profiler: Profiler | None = None
) -> list[float]:
    datamodule = MNISTDataModule(data_dir=str(data_dir), batch_size=BATCH, val_fraction=0.0, download=False)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        profiler=profiler,
    )
    trainer.fit(model, datamodule=datamodule)
    return model.epoch_times


def without_speedups(run: Callable[[], list[float]]) -> list[float]:
    """`run()` with litlab's speed measures off, as `speedups=false` runs a task."""
    speed.apply(False)
    try:
        return run()
    finally:
        speed.apply(True)


def torchvision_epochs(data_dir: Path, epochs: int, workers: int) -> list[float]:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    loader = DataLoader(
        MNIST(str(data_dir), train=True, transform=transform),
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="a folder holding MNIST/raw (default: the subset)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each way in each round")
    parser.add_argument("--tv-workers", type=int, default=0, help="DataLoader workers of the torchvision pipeline")
    parser.add_argument("--results-page", default="data-pipeline", help="the page of docs/results/ ('' for none)")
    args = parser.parse_args()

    data_dir = args.data_dir or (SHARED_MNIST if SHARED_MNIST.exists() else None)
    data_kind = "real MNIST"
    if data_dir is None:
        data_kind = "generated MNIST idx files"
        data_dir = write_mnist(Path(tempfile.mkdtemp()), n_train=14_000, n_test=1_000)
        print(f"real MNIST not found: using generated MNIST in {data_dir}")
    dataset = MNIST(str(data_dir), train=True)
    images, labels = dataset.data.unsqueeze(1), dataset.targets
    print(f"data: {data_dir} ({len(images)} training images), batch {BATCH}, {torch.get_num_threads()} threads")

    load_before = os.getloadavg()
    speed.apply()
    ways = {
        "plain": lambda: plain_epochs(images, labels, args.epochs),
        "lightning-bare": lambda: lightning_epochs(data_dir, args.epochs, timed(BareModule)()),
        "litlab": lambda: lightning_epochs(
            data_dir,
            args.epochs,
            timed(ImageClassifier)(NET, optimizer=ADAM),
            speed.NoProfiler(),
        ),
        "litlab-no-speedups": lambda: without_speedups(
            lambda: lightning_epochs(data_dir, args.epochs, timed(ImageClassifier)(NET, optimizer=ADAM))
        ),
        "torchvision": lambda: torchvision_epochs(data_dir, args.epochs, args.tv_workers),
    }
    torch.manual_seed(0)
    results: dict[str, list[float]] = {name: [] for name in ways}
    # Rounds of every way in turn, so that a busy moment of a shared machine falls on all of them alike.
    for _ in range(args.rounds):
        for name, run in ways.items():
            results[name] += run()
    best = {name: min(times) for name, times in results.items()}
    for name, seconds in best.items():
        epochs = ", ".join(f"{t:.2f}" for t in results[name])
        print(f"{name:15s} {len(images) / seconds:10.0f} images/s   best epoch {seconds:.3f} s   (epochs: {epochs})")
    ratios = {
        "speedup_vs_torchvision": best["torchvision"] / best["litlab"],
        "overhead_vs_plain": best["litlab"] / best["plain"],
        "speedups_saving": best["litlab-no-speedups"] / best["litlab"],
    }
    for name, value in ratios.items():
        print(f"{name}={value:.2f}")
    if args.results_page:
        rows = [[WAYS[name], f"{len(images) / seconds:,.0f}", f"{seconds:.3f} s"] for name, seconds in best.items()]
        body = "\n\n".join(
            [
                f"One training epoch of the MLP 784-64-128-64-10 (batch norm, batch {BATCH}, Adam) on {data_kind} "
                f"({len(images):,} training images), {torch.get_num_threads()} torch threads. The ways took turns for "
                f"{args.rounds} rounds of {args.epochs} epochs; each way's fastest epoch counts.",
                markdown_table(["pipeline", "images/s", "best epoch"], rows),
                "\n".join(f"- `{name}` = {value:.2f}" for name, value in ratios.items())
                + f"\n- load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
                f"after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
                "`speedup_vs_torchvision` is torchvision's epoch over litlab's, `overhead_vs_plain` litlab's over the "
                "plain loop's, `speedups_saving` litlab's without its speed measures over litlab's.",
            ]
        )
        path = write_results_page(args.results_page, "Input pipeline: one MNIST epoch, five ways", body)
        print(f"results page: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
