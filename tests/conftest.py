import os
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from torchvision.datasets import CIFAR10, CIFAR100

from litlab.data.synthetic import write_mnist
from tests.helpers.checkpoints import cgan_model, cyclegan_model, digits_classifier, word2vec_model
from tests.helpers.datasets import patch_cifar_checksums, write_cifar
from tests.helpers.postgres import create_database, start_postgres, stop_postgres

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-subset"


def pytest_configure(config):
    # Under pytest-xdist (`make test`) each worker takes its share of the cores: torch's default, a thread per
    # core in every worker, would have the workers' threads wait for each other.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // workers))


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data_dir holding generated MNIST idx files (600 train, 200 test images, 10 learnable classes)."""
    return write_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def _cifar10_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10")
    return root, write_cifar(root, num_classes=10)


@pytest.fixture(scope="session")
def _cifar100_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar100")
    return root, write_cifar(root, num_classes=100, n_train=2000, n_test=400)


@pytest.fixture
def cifar10_root(_cifar10_files, monkeypatch) -> Path:
    """A data_dir holding generated CIFAR-10 pickled batches that torchvision's CIFAR10 accepts."""
    root, checksums = _cifar10_files
    patch_cifar_checksums(monkeypatch, CIFAR10, checksums)
    return root


@pytest.fixture
def cifar100_root(_cifar100_files, monkeypatch) -> Path:
    """A data_dir holding generated CIFAR-100 pickled files that torchvision's CIFAR100 accepts."""
    root, checksums = _cifar100_files
    patch_cifar_checksums(monkeypatch, CIFAR100, checksums)
    return root


@pytest.fixture
def shared_mnist() -> Path:
    """The real MNIST subset beside the repository; tests using it skip when it is absent."""
    if not (SHARED_MNIST / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real MNIST subset not found at {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def classifier_ckpt(tmp_path_factory) -> Path:
    """A digits CNN checkpoint from a real training run, alone in its folder."""
    return digits_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="session")
def word2vec_ckpt(tmp_path_factory) -> Path:
    """A word2vec checkpoint trained on the planted-topics corpus, alone in its folder."""
    return word2vec_model(tmp_path_factory.mktemp("word2vec"))


@pytest.fixture(scope="session")
def cgan_ckpt(tmp_path_factory, mnist_root) -> Path:
    """A conditional-GAN checkpoint trained briefly on the generated MNIST, alone in its folder."""
    return cgan_model(tmp_path_factory.mktemp("cgan"), mnist_root)


@pytest.fixture(scope="session")
def cyclegan_ckpt(tmp_path_factory, mnist_root) -> Path:
    """A CycleGAN checkpoint (digits to MNIST) trained briefly, alone in its folder."""
    return cyclegan_model(tmp_path_factory.mktemp("cyclegan"), mnist_root)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the whole session, stopped at its end.

    Where it cannot start, the tests using it skip with the reason; on CI (CI=true) they fail instead, so
    that a broken set-up never passes as skipped tests.
    """
    try:
        server = start_postgres()
    except Exception as err:
        reason = f"PostgreSQL could not start here ({type(err).__name__}: {err})"
        if isinstance(err, ImportError):
            reason = "pgserver is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests")
        pytest.skip(reason)
    yield server
    stop_postgres(server)


@pytest.fixture
def postgres_url(postgres) -> str:
    """The SQLAlchemy URL of a new, empty database on the session's PostgreSQL server (one per test)."""
    return create_database(postgres)
