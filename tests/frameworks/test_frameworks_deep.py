"""``--deep``: each framework imported in its own child; crashes, hangs and import errors become data."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck import _child
from envcheck.models import Framework, FrameworksInfo
from envcheck.probes import ProbeContext, deep, frameworks


def _ctx(env: dict[str, str], timeout: float = 60) -> ProbeContext:
    return ProbeContext(env=env, timeout=timeout, deep=True, deep_timeout=timeout)


def test_torch_that_segfaults_on_import(fixtures: Path, marker: str, make_env) -> None:
    env = make_env(PYTHONPATH=str(fixtures / "crash_torch"), ENVCHECK_MARK=marker)
    result = deep.run_one(_ctx(env), "torch")
    assert result.ok is False
    assert result.error == "crashed: SIGSEGV during import"
    assert result.gpu_available is None and result.devices == []


def test_torch_that_hangs_on_import(fixtures: Path, marker: str, make_env) -> None:
    env = make_env(PYTHONPATH=str(fixtures / "hang_torch"), ENVCHECK_MARK=marker)
    result = deep.run_one(_ctx(env, timeout=2), "torch")
    assert result.ok is False
    assert result.error is not None and result.error.startswith("timed out after 2s")
    # the marker fixture then checks that the child and its process group are gone


def test_torch_that_raises_on_import(fixtures: Path, make_env) -> None:
    env = make_env(PYTHONPATH=str(fixtures / "importerror_torch"))
    result = deep.run_one(_ctx(env), "torch")
    assert result.ok is False
    assert result.error == (
        "ImportError during import: libcudnn.so.9: cannot open shared object file: No such file or directory"
    )
    assert result.import_seconds is None


@pytest.mark.frameworks
def test_one_crash_does_not_stop_the_others(fixtures: Path, marker: str, make_env) -> None:
    """A segfaulting torch next to the real jax: jax's child still answers."""
    pytest.importorskip("jax.version")
    env = make_env(PYTHONPATH=str(fixtures / "crash_torch"), ENVCHECK_MARK=marker)
    info = FrameworksInfo(
        frameworks=[
            Framework(name="torch", installed=True),
            Framework(name="jax", installed=True),
            Framework(name="tensorflow", installed=False),
        ]
    )
    deep.attach(_ctx(env), info)
    torch, jax, tf = info.frameworks
    assert torch.deep is not None and torch.deep.ok is False and "SIGSEGV" in (torch.deep.error or "")
    assert jax.deep is not None and jax.deep.ok is True, jax.deep
    assert jax.deep.devices == ["cpu:0"] and jax.deep.gpu_available is False
    assert tf.deep is None  # not installed: nothing to import


@pytest.mark.frameworks
@pytest.mark.slow
def test_real_frameworks_deep(make_env) -> None:
    """torch 2.13.0+cpu, tensorflow-cpu 2.21.0 and jax 0.10.2 imported for real, in parallel: CPU only."""
    pytest.importorskip("torch.version")
    info = frameworks.probe(_ctx(make_env(), timeout=180))
    fw = {f.name: f for f in info.frameworks}
    for name in ("torch", "tensorflow", "jax"):
        d = fw[name].deep
        assert d is not None and d.ok, (name, d)
        assert d.gpu_available is False and d.device_count == 0, name
        assert d.version == fw[name].version, name
        assert d.import_seconds is not None and d.seconds is not None and d.import_seconds <= d.seconds
        assert d.loaded_libraries == [], (name, d.loaded_libraries)  # CPU builds map no CUDA library
    assert fw["torch"].deep.devices == ["cpu"]  # type: ignore[union-attr]
    assert fw["torch"].deep.arch_list == []  # type: ignore[union-attr]
    assert fw["torch"].deep.cuda_build is None  # type: ignore[union-attr]
    assert fw["tensorflow"].deep.devices == ["CPU:0"]  # type: ignore[union-attr]
    assert fw["jax"].deep.devices == ["cpu:0"]  # type: ignore[union-attr]


def test_loaded_libraries_come_from_the_childs_memory_map(tmp_path: Path, fake_libs: Path, make_env) -> None:
    """A framework that loads CUDA libraries: the child's /proc/self/maps names them and their origin."""
    pkg_root = tmp_path / "loader_torch"
    (pkg_root / "torch").mkdir(parents=True)
    (pkg_root / "torch" / "__init__.py").write_text(
        "import ctypes, os\n"
        "for n in ('libcudnn.so.9', 'libcuda.so.1'):\n"
        "    ctypes.CDLL(os.path.join(os.environ['FAKE_LIBS'], n))\n"
        "__version__ = '2.6.0+cu124'\n"
    )
    env = make_env(PYTHONPATH=str(pkg_root), FAKE_LIBS=str(fake_libs), LD_LIBRARY_PATH=str(fake_libs))
    result = deep.run_one(_ctx(env), "torch")
    # the stand-in has no torch.cuda API: the device query fails, the import and the map do not
    assert result.ok is False and result.error is not None and "during device query" in result.error
    assert result.import_seconds is not None
    libs = {lib.soname: lib for lib in result.loaded_libraries}
    assert set(libs) == {"libcudnn.so.9", "libcuda.so.1"}
    assert libs["libcudnn.so.9"].path == str(fake_libs / "libcudnn.so.9")
    assert libs["libcudnn.so.9"].origin == "ld_library_path"
    assert result.cudnn_loaded == "9.1.0"  # asked of the mapped libcudnn itself


def test_to_devices_decodes_jax_style_integers() -> None:
    res = _child.ChildResult(
        True,
        {
            "ok": True,
            "version": "0.7.2",
            "import_seconds": 1.25,
            "gpu_available": True,
            "device_count": 2,
            "devices": ["cuda:0 NVIDIA H100 80GB HBM3", "cuda:1 NVIDIA H100 80GB HBM3"],
            "cuda_build": 12080,
            "cudnn_build": 90800,
            "cudnn_loaded": 90300,
            "libraries": ["/v/site-packages/nvidia/cudnn/lib/libcudnn.so.9.3.0", "/usr/lib/libc.so.6"],
        },
        seconds=2.0,
    )
    d = deep.to_devices(res, lambda p: "wheel")
    assert (d.cuda_build, d.cudnn_build, d.cudnn_loaded) == ("12.8", "9.8.0", "9.3.0")
    assert [(lib.soname, lib.origin) for lib in d.loaded_libraries] == [("libcudnn.so.9", "wheel")]
    assert d.ok and d.device_count == 2 and d.import_seconds == 1.25


def test_children_run_at_the_same_time(tmp_path: Path, marker: str, make_env) -> None:
    """A rendezvous: fake torch and jax each wait for the other's flag file; run in sequence, both would
    time out, run in parallel both meet and report the agreed ImportError."""
    pkgs = tmp_path / "pkgs"
    for mine, other in (("torch", "jax"), ("jax", "torch")):
        (pkgs / mine).mkdir(parents=True)
        (pkgs / mine / "__init__.py").write_text(
            "import os, time\n"
            f"open(os.path.join({str(tmp_path)!r}, {mine!r} + '.flag'), 'w').close()\n"
            f"while not os.path.exists(os.path.join({str(tmp_path)!r}, {other!r} + '.flag')):\n"
            "    time.sleep(0.05)\n"
            "raise ImportError('met the other child')\n"
        )
    info = FrameworksInfo(
        frameworks=[Framework(name="torch", installed=True), Framework(name="jax", installed=True)]
    )
    deep.attach(_ctx(make_env(PYTHONPATH=str(pkgs), ENVCHECK_MARK=marker), timeout=30), info)
    for fw in info.frameworks:
        assert fw.deep is not None and fw.deep.error == "ImportError during import: met the other child", (
            fw.deep
        )
