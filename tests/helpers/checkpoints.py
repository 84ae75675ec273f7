"""Checkpoints written by real short training runs, each copied alone into a folder of its own."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from litlab import ROOT_DIR
from litlab.train import train
from tests.helpers.config import train_config
from tests.helpers.corpus import write_topic_corpus

QUIET = [
    "logger=csv",
    "callbacks.model_summary=null",
    "callbacks.early_stopping=null",
    "+trainer.enable_progress_bar=false",
]


def train_alone(overrides: list[str], root: Path) -> Path:
    """Trains with `overrides` under root/train and copies the last checkpoint to root/alone/model.ckpt.

    The copy has nothing beside it (no run folder, no config), as a checkpoint sent to someone else.
    """
    _, objects = train(train_config([*QUIET, *overrides], root / "train"))
    alone = root / "alone"
    alone.mkdir()
    saved = objects["trainer"].checkpoint_callback
    return Path(shutil.copy(saved.best_model_path or saved.last_model_path, alone / "model.ckpt"))


def digits_classifier(root: Path) -> Path:
    """The default experiment (a CNN on the 8x8 scikit-learn digits), trained to about 95% test accuracy."""
    return train_alone(["trainer.max_epochs=5", "test=false"], root)


def word2vec_model(root: Path) -> Path:
    """word2vec on a corpus of four planted topics (tests.helpers.corpus)."""
    corpus = write_topic_corpus(root / "corpus.txt")
    return train_alone(
        [
            "experiment=word2vec_corpus",
            f"data.corpus={corpus}",
            "data.min_count=1",
            "data.batch_size=2048",
            "model.embedding_dim=16",
            "model.projector_words=0",
            "model.vectors_file=null",
            "trainer.max_epochs=4",
            "test=false",
        ],
        root,
    )


def tiny_cgan(mnist_root: Path) -> list[str]:
    """experiment=cgan_mnist made tiny: narrow networks, three batches of the generated MNIST."""
    return [
        "experiment=cgan_mnist",
        f"paths.data_dir={mnist_root}",
        "data.download=false",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        "model.generator.base_channels=8",
        "model.discriminator.base_channels=8",
    ]


def tiny_cyclegan(mnist_root: Path) -> list[str]:
    """experiment=cyclegan_digits_mnist made tiny: narrow networks, 48 images a domain, two batches."""
    return [
        "experiment=cyclegan_digits_mnist",
        f"paths.data_dir={mnist_root}",
        "data.download=false",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "data.max_images=48",
        "model.generator.base_channels=4",
        "model.generator.num_blocks=1",
        "model.discriminator.base_channels=4",
    ]


def cgan_model(root: Path, mnist_root: Path) -> Path:
    """A tiny conditional GAN (no judge, no test)."""
    return train_alone([*tiny_cgan(mnist_root), "model.classifier_ckpt=null", "test=false"], root)


def cyclegan_model(root: Path, mnist_root: Path) -> Path:
    """A tiny CycleGAN, digits to MNIST (no judge, no test)."""
    return train_alone([*tiny_cyclegan(mnist_root), "model.classifier_ckpt=null", "test=false"], root)


def run_entry_point(script: str, overrides: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python <script> <overrides>` as a user runs it, from `cwd`, with its output captured."""
    return subprocess.run(
        [sys.executable, str(ROOT_DIR / script), *overrides],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT_DIR / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )
