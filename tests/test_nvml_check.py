"""litlab drops torch's NVML-based CUDA check only where the NVML library cannot load."""

import ctypes

import pytest

import litlab

VAR = "PYTORCH_NVML_BASED_CUDA_CHECK"


def _no_library(name):
    raise OSError(f"{name}: cannot open shared object file")


@pytest.mark.parametrize(("cdll", "kept"), [(_no_library, False), (lambda name: object(), True)])
def test_the_check_goes_only_without_nvml(cdll, kept, monkeypatch):
    monkeypatch.setenv(VAR, "1")
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    litlab._drop_nvml_check_without_nvml()
    assert (VAR in litlab.os.environ) is kept


def test_an_unset_check_stays_unset(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.setattr(ctypes, "CDLL", _no_library)
    litlab._drop_nvml_check_without_nvml()
    assert VAR not in litlab.os.environ
