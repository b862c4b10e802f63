"""A real Docker engine for the image tests, started once per session by scripts/docker-engine.sh.

dockerd runs under its own temp dir (data root, exec root, socket) with the flags that work on
machines without a bridge or iptables, and is stopped by its PID at the end of the session. When
it cannot start (no root, no packages, no kernel support) the engine tests skip with the reason
printed; every other test in tests/images needs no engine.

The base image is a debootstrap Debian rootfs imported as ``local/debian-bookworm:minbase``; the
rootfs tarball is cached under ~/.cache/mlrig/ between runs (never in the repository).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPT = REPO / "scripts" / "docker-engine.sh"
BASE_TAG = "local/debian-bookworm:minbase"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"images_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fakes = _load("_fakes")


@dataclass(frozen=True)
class Engine:
    host: str
    directory: Path
    pid: int
    #: a docker CLI for helper builds (any version talks to the daemon)
    docker: str


def _skip(reason: str) -> None:
    message = f"Docker engine tests skipped: {reason}"
    print(message, file=sys.stderr)
    pytest.skip(message)


def _pip_wheel(out: Path, requirements: list[str], *, timeout: float, failure: str) -> None:
    """``pip wheel`` the requirements into ``out``; skip with ``failure`` and pip's last line if it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(out), *requirements],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        _skip(f"{failure}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """dockerd under a temp dir; DOCKER_HOST points at it for the whole session."""
    if os.environ.get("MLRIG_SKIP_ENGINE_TESTS"):
        _skip("MLRIG_SKIP_ENGINE_TESTS is set")
    directory = Path(tempfile.mkdtemp(prefix="mlrig-engine.", dir="/tmp"))  # short: unix socket paths
    try:
        proc = subprocess.run(
            [str(SCRIPT), "start", str(directory)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _skip(f"scripts/docker-engine.sh start did not finish: {exc}")
    if proc.returncode != 0:
        _skip(f"scripts/docker-engine.sh start failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    pid = int((directory / "dockerd.pid").read_text().strip())
    docker = next((p for p in ("/usr/bin/docker", "/usr/local/bin/docker") if Path(p).exists()), "docker")
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKER_HOST", values["DOCKER_HOST"])
    try:
        yield Engine(values["DOCKER_HOST"], directory, pid, docker)
    finally:
        mp.undo()
        subprocess.run(
            [str(SCRIPT), "stop", str(directory)], capture_output=True, text=True, timeout=120, check=False
        )
        assert not _pid_alive(pid), f"dockerd {pid} still running after stop"


@pytest.fixture(scope="session")
def base_image(engine: Engine) -> str:
    """The debootstrap base (built once, ~2 min; then cached as a tarball under ~/.cache/mlrig)."""
    proc = subprocess.run(
        [str(SCRIPT), "base-image", BASE_TAG],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env={**os.environ, "DOCKER_HOST": engine.host},
    )
    if proc.returncode != 0:
        _skip(f"no base image: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return BASE_TAG


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mlrig's own wheel and its dependencies (plus numpy), so images install envcheck offline."""
    out = tmp_path_factory.mktemp("wheelhouse")
    from provision.images import _data

    numpy = f"numpy=={_data.pin('numpy')[0]}"
    _pip_wheel(out, [str(REPO), numpy], timeout=600, failure="could not build mlrig's wheelhouse")
    return out


@pytest.fixture(scope="session")
def torch_cpu_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The torch CPU wheel the test suite uses and its dependencies (from pip's configured sources)."""
    out = tmp_path_factory.mktemp("torch-wheels")
    _pip_wheel(out, ["torch==2.13.0+cpu"], timeout=900, failure="no torch 2.13.0+cpu wheel reachable")
    return sorted(out.glob("*.whl"))


@pytest.fixture(scope="session")
def fake_cuda(engine: Engine, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny local bases with NVIDIA's env conventions: a matching CUDA 12.6 one and a wrong 12.4 one."""
    work = tmp_path_factory.mktemp("fake-cuda")
    return {
        "12.6": fakes.fake_cuda_base(
            engine.docker, base_image, "local/fake-cuda:12.6.3-base", "12.6.3", None, work
        ),
        "12.4": fakes.fake_cuda_base(
            engine.docker, base_image, "local/fake-cuda:12.4.1-base", "12.4.1", None, work
        ),
        "12.6-devel": fakes.fake_cuda_base(
            engine.docker, base_image, "local/fake-cuda:12.6.3-cudnn-devel", "12.6.3", "9.5.1.17", work
        ),
    }


@pytest.fixture(scope="session")
def fake_torch_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fakes.fake_torch_wheel(tmp_path_factory.mktemp("fake-torch"))
