"""Shared pieces for the CUDA / frameworks probe tests: clean environments, fake CUDA libraries."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "frameworks"
TOOLKIT = Path("/usr/local/cuda-13.0")
FAKE_SONAMES = ("libcuda.so.1", "libcudnn.so.9", "libnccl.so.2", "libcublas.so.12")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the variables that steer library and module search."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "CUDA_HOME", "CUDA_PATH", "CONDA_PREFIX")
        and not k.startswith("ENVCHECK_")
    }
    env.update(extra)
    return env


def processes_with_marker(marker: str) -> list[int]:
    """PIDs whose environment holds ``marker``: children a test must not leave behind."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique environment value; after the test no process may still carry it."""
    value = f"envcheck-test-{uuid.uuid4().hex}"
    yield value
    assert processes_with_marker(value) == [], "a child process outlived its timeout"


@pytest.fixture(scope="session")
def fake_libs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of stand-in CUDA libraries compiled from fixtures/frameworks/fake_cuda_libs.c."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in CUDA libraries")
    out = tmp_path_factory.mktemp("fakelibs")
    built = out / "fake.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", str(built), str(FIXTURES / "fake_cuda_libs.c")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for soname in FAKE_SONAMES:
        shutil.copy(built, out / soname)
    built.unlink()
    return out


@pytest.fixture
def real_cudart() -> Path:
    """The CUDA 13.0 toolkit's runtime on this machine (the anchor of diagnostics-anchors (d))."""
    lib = TOOLKIT / "lib64" / "libcudart.so.13"
    if not lib.exists():
        pytest.skip(f"{lib} not installed")
    return lib


@pytest.fixture
def fixtures() -> Path:
    """tests/fixtures/frameworks."""
    return FIXTURES


@pytest.fixture
def make_env() -> Callable[..., dict[str, str]]:
    """``make_env(**extra)``: a clean environment for a probe context (see ``clean_env``)."""
    return clean_env
