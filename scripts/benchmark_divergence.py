"""What the non-finite-loss check (litlab.callbacks.DivergenceGuard) costs a training step.

    python scripts/benchmark_divergence.py [--steps 20000] [--device cpu|cuda] [--results-page divergence]

Prints, per training step: the guard's own cost (its `on_train_batch_end`, the host reading the flag every
50 steps), the cost of the naive check it replaces (`torch.isfinite(loss).item()` every step, a host sync
on a GPU), and a real step of the mnist_cnn model (CNN 32-64 conv, 128 dense, batch 128 of 28x28 images,
Adam, forward + backward + step) for scale. Each figure is the best of 5 rounds. The figures also go to
docs/results/divergence.md (`--results-page`), stamped with the command, commit and machine.
"""

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from litlab.callbacks import DivergenceGuard
from litlab.models.nets import CNN
from litlab.reports.results_page import markdown_table, write_results_page

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of(rounds: int, fn, steps: int, device: torch.device) -> float:
    """Seconds per step, best of `rounds`."""
    times = []
    for _ in range(rounds):
        sync(device)
        start = time.perf_counter()
        fn(steps)
        sync(device)
        times.append((time.perf_counter() - start) / steps)
    return min(times)


def duration(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--results-page", default="divergence", help="the page of docs/results/ ('' for none)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1)

    loss = torch.tensor(0.7, device=device)
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision)
    trainer = SimpleNamespace(global_step=0, current_epoch=0, optimizers=[], strategy=strategy)
    guard = DivergenceGuard(check_every_n_steps=50)
    guard.on_train_start(trainer, None)

    def guarded(steps: int) -> None:
        for step in range(steps):
            guard.on_train_batch_end(trainer, None, loss, None, step)

    def naive(steps: int) -> None:
        for _ in range(steps):
            if not torch.isfinite(loss).item():
                raise FloatingPointError

    net = CNN(in_channels=1, image_size=28, num_classes=10, conv_channels=[32, 64], dense_units=[128]).to(device)
    optimizer = torch.optim.Adam(net.parameters())
    x, y = torch.randn(128, 1, 28, 28, device=device), torch.randint(0, 10, (128,), device=device)

    def train_step(steps: int) -> None:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            optimizer.step()

    guard_s = best_of(5, guarded, args.steps, device)
    naive_s = best_of(5, naive, args.steps, device)
    step_s = best_of(5, train_step, max(args.steps // 1000, 10), device)
    print(f"device                      {device}")
    print(f"guard per step              {guard_s * 1e6:8.1f} us")
    print(f"naive .item() per step      {naive_s * 1e6:8.1f} us")
    print(f"mnist_cnn training step     {step_s * 1e6:8.1f} us")
    print(f"guard share of a step       {100 * guard_s / step_s:8.2f} %")
    if args.results_page:
        rows = [
            ["`DivergenceGuard` (the host reads its flag every 50 steps)", duration(guard_s)],
            ["the naive check, `torch.isfinite(loss).item()` every step", duration(naive_s)],
            ["a mnist_cnn training step (forward, backward, Adam), for scale", duration(step_s)],
        ]
        body = (
            f"Cost per training step on `{device}`, one torch thread, best of 5 rounds of {args.steps:,} steps "
            f"(the training step: best of 5 rounds of {max(args.steps // 1000, 10)} steps).\n\n"
            + markdown_table(["what", "per step"], rows)
            + f"\n\nThe guard's share of a training step: {100 * guard_s / step_s:.4f}%."
        )
        path = write_results_page(args.results_page, "What the divergence guard costs a step", body)
        print(f"results page: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
