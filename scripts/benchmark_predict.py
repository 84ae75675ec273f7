"""predict.py on real images: the test split of a classifier's dataset written as PNG files, then predicted.

    python scripts/benchmark_predict.py CKPT [--data-dir ../shared/data/mnist-subset] [--counts 1000 10000]
        [--results-page predict]

For each count, the first N test images are written as PNG files into a temporary folder and
`python predict.py ckpt_path=CKPT inputs=<folder>` runs on them as a separate process. The script prints
the wall time, images per second, the process's peak memory (flat when the prediction writer does its job),
the accuracy against the labels, and the agreement with the model run on the same images through the
training pipeline (its datamodule's normalisation), which should be 100%. With `--results-page NAME` the
table also goes to docs/results/NAME.md, stamped with the command, commit and machine.
"""

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torchvision.io import write_png

from litlab.checkpoints.load import CheckpointFile
from litlab.reports.results_page import markdown_table, write_results_page

ROOT = Path(__file__).resolve().parents[1]


def run_predict(ckpt: Path, folder: Path, out: Path) -> tuple[float, float]:
    """Runs predict.py as its own process (on trainer.accelerator=auto); returns its wall time and the peak
    memory of the processes run so far (counts go up, so an unchanged peak means flat memory)."""
    command = [
        sys.executable,
        str(ROOT / "predict.py"),
        f"ckpt_path={ckpt}",
        f"inputs={folder}",
        f"hydra.run.dir={out}",
        "extras.print_config=false",
        "+trainer.enable_progress_bar=false",
        "show=0",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", type=Path, help="a classifier checkpoint (e.g. of experiment=mnist_cnn)")
    parser.add_argument("--data-dir", help="where its dataset is (default: the data_dir saved in the checkpoint)")
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000], help="test images per run")
    parser.add_argument("--results-page", help="also write the table to docs/results/<this name>.md")
    args = parser.parse_args()

    checkpoint = CheckpointFile.open(args.ckpt)
    datamodule = checkpoint.datamodule()
    if args.data_dir:
        datamodule.hparams.data_dir = args.data_dir
        datamodule.hparams.download = False
    datamodule.setup("test")
    images, labels = datamodule.data_test.images, datamodule.data_test.labels
    model = checkpoint.module().eval()
    with torch.no_grad():
        reference = torch.cat([model(datamodule.normalize(chunk)).argmax(1) for chunk in images.split(1000)])
    names = checkpoint.data["class_names"]

    source = f"{type(datamodule).__name__} test split: {len(images)} images; model {checkpoint.module_name}"
    print(source)
    header = ["images", "wall time", "images/s", "peak memory", "accuracy", "same as the training pipeline"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    rows = []
    for count in args.counts:
        count = min(count, len(images))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp, "images")
            folder.mkdir()
            for i in range(count):
                write_png(images[i], str(folder / f"{i:05d}.png"))
            seconds, peak_mb = run_predict(args.ckpt, folder, Path(tmp, "run"))
            with open(Path(tmp, "run", "predictions.csv"), newline="", encoding="utf-8") as handle:
                predicted = {int(Path(row["input"]).stem): names.index(row["class"]) for row in csv.DictReader(handle)}
        order = torch.tensor([predicted[i] for i in range(count)])
        accuracy = (order == labels[:count]).float().mean().item()
        agreement = (order == reference[:count]).float().mean().item()
        rows.append(
            [f"{count:,}", f"{seconds:.1f} s", f"{count / seconds:,.0f}", f"{peak_mb:,.0f} MB", f"{accuracy:.4f}",
             f"{agreement:.2%}"]
        )  # fmt: skip
        print(markdown_table(header, rows).splitlines()[-1])
    if args.results_page:
        body = (
            f"`predict.py` as a separate process on the first N test images written as PNG files ({source}). "
            "Peak memory is the largest of the predict processes run so far; accuracy is against the labels, the "
            "last column the share of predictions equal to the model's through the training pipeline.\n\n"
            + markdown_table(header, rows)
        )
        path = write_results_page(args.results_page, "predict.py on real images", body)
        print(f"results page: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
