"""CUDA user space: toolkits, nvcc, and the libraries' own version functions, queried in a child."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from envcheck.models import CudaInfo, CudaLibrary
from envcheck.probes import ProbeContext, _libs, cuda


def _lib(info: CudaInfo, name: str) -> CudaLibrary:
    assert info.libraries is not None, info.error
    return next(lib for lib in info.libraries if lib.name == name)


# --------------------------------------------------------------------------- this machine


def test_this_machine_runtime_without_driver(real_cudart: Path, make_env) -> None:
    """diagnostics-anchors (c1)/(d): runtime 13000, cudaDriverGetVersion 0 (no driver), device count 35."""
    info = cuda.probe(ProbeContext(env=make_env(), timeout=30))
    assert info.error is None
    assert info.runtime_version == 13000
    assert info.driver_version == 0  # no driver at all, not "too old"
    assert info.device_count_code == 35 and info.device_count is None
    cudart = _lib(info, "cudart")
    assert cudart.soname == "libcudart.so.13" and cudart.version == "13.0"
    assert cudart.path is not None and Path(cudart.path).resolve() == real_cudart.resolve()
    assert cudart.origin == "toolkit"
    libcuda = _lib(info, "cuda")
    assert libcuda.path is None and libcuda.error == "not found: libcuda.so.1"
    assert info.cu_init_code is None  # never called: there is no libcuda to call it in


def test_this_machine_toolkit_and_nvcc(real_cudart: Path, make_env) -> None:
    info = cuda.probe(ProbeContext(env=make_env(CUDA_HOME="/usr/local/cuda"), timeout=30))
    assert info.usr_local_cuda_target == "/usr/local/cuda-13.0"
    assert info.cuda_home == "/usr/local/cuda"
    assert info.toolkits is not None
    toolkit = next(t for t in info.toolkits if t.path == "/usr/local/cuda-13.0")
    assert toolkit.version is not None and toolkit.version.startswith("13.0")
    assert toolkit.nvcc == "/usr/local/cuda-13.0/bin/nvcc"
    assert [t.path for t in info.toolkits].count(
        "/usr/local/cuda"
    ) == 0  # the symlink is not a second toolkit
    if info.nvcc_on_path:
        assert info.nvcc_version == "13.0.88"
        assert info.nvcc_versions == dict.fromkeys(info.nvcc_on_path, "13.0.88")


# --------------------------------------------------------------------------- search order and origin


def test_ld_library_path_shadows_the_toolkit(real_cudart: Path, tmp_path: Path, make_env) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    shutil.copy(real_cudart, shadow / "libcudart.so.13")
    info = cuda.probe(ProbeContext(env=make_env(LD_LIBRARY_PATH=str(shadow)), timeout=30))
    cudart = _lib(info, "cudart")
    assert cudart.path == str(shadow / "libcudart.so.13")
    assert cudart.origin == "ld_library_path"
    assert cudart.version == "13.0" and info.driver_version == 0


def test_wheel_dir_comes_before_ld_library_path(real_cudart: Path, tmp_path: Path, make_env) -> None:
    site = tmp_path / "site-packages"
    wheel_lib = site / "nvidia" / "cu13" / "lib"
    wheel_lib.mkdir(parents=True)
    shutil.copy(real_cudart, wheel_lib / "libcudart.so.13")
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    shutil.copy(real_cudart, shadow / "libcudart.so.13")
    env = make_env(PYTHONPATH=str(site), LD_LIBRARY_PATH=str(shadow))
    cudart = _lib(cuda.probe(ProbeContext(env=env, timeout=30)), "cudart")
    assert cudart.path == str(wheel_lib / "libcudart.so.13")
    assert cudart.origin == "wheel"


def test_fake_libraries_report_their_own_versions(fake_libs: Path, make_env) -> None:
    info = cuda.probe(ProbeContext(env=make_env(LD_LIBRARY_PATH=str(fake_libs)), timeout=30))
    expected = {"cuda": "12.4", "cudnn": "9.1.0", "nccl": "2.21.5", "cublas": "12.4.5"}
    for name, version in expected.items():
        lib = _lib(info, name)
        assert (lib.version, lib.origin, lib.error) == (version, "ld_library_path", None), name
        assert lib.path is not None and Path(lib.path).parent == fake_libs
    assert info.cu_init_code == 100  # CUDA_ERROR_NO_DEVICE from the stand-in
    assert _lib(info, "nvml").error == "not found: libnvidia-ml.so.1"


def test_a_corrupt_library_file_is_reported(tmp_path: Path, make_env) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "libcudnn.so.9").write_text("not an ELF file\n")
    info = cuda.probe(ProbeContext(env=make_env(LD_LIBRARY_PATH=str(bad)), timeout=30))
    cudnn = _lib(info, "cudnn")
    assert cudnn.path is None and cudnn.version is None
    assert cudnn.error is not None and cudnn.error.startswith("could not load:")
    assert "libcudnn.so.9" in cudnn.error


# --------------------------------------------------------------------------- a driver that crashes or hangs


def test_cuinit_segfault_keeps_the_rest(fake_libs: Path, marker: str, make_env) -> None:
    env = make_env(LD_LIBRARY_PATH=str(fake_libs), ENVCHECK_FAKE_CUINIT="segv", ENVCHECK_MARK=marker)
    info = cuda.probe(ProbeContext(env=env, timeout=30))
    libcuda = _lib(info, "cuda")
    assert libcuda.error == "crashed: SIGSEGV during cuInit"
    assert libcuda.version == "12.4"  # asked before the crash
    assert _lib(info, "cudnn").version == "9.1.0"
    assert info.cu_init_code is None and info.device_count_code is None
    assert info.toolkits is not None  # the in-process part is untouched


def test_cuinit_hang_is_cut_off(fake_libs: Path, marker: str, make_env) -> None:
    env = make_env(LD_LIBRARY_PATH=str(fake_libs), ENVCHECK_FAKE_CUINIT="hang", ENVCHECK_MARK=marker)
    info = cuda.probe(ProbeContext(env=env, timeout=2))
    reasons = [info.error or ""] + [lib.error or "" for lib in info.libraries or []]
    assert any("timed out after 2s" in r for r in reasons), reasons
    assert info.cu_init_code is None
    assert info.nvcc_on_path is not None  # toolkit facts still collected


def test_apply_partial_state_names_the_dying_call() -> None:
    search = _libs.LibrarySearch([], [], [], {}, [])
    state = {
        "pending": "cudaGetDeviceCount",
        "libraries": [
            {
                "name": "cudart",
                "soname": "libcudart.so.12",
                "path": "/opt/x/libcudart.so.12",
                "found": "/opt/x/libcudart.so.12",
                "skipped": [],
                "calls": {"cudaRuntimeGetVersion": [0, 12040], "cudaDriverGetVersion": [0, 12020]},
            }
        ],
    }
    info = CudaInfo()
    cuda.apply_child_state(info, json.loads(json.dumps(state)), "crashed: SIGBUS", search)
    cudart = _lib(info, "cudart")
    assert cudart.error == "crashed: SIGBUS during cudaGetDeviceCount"
    assert (info.runtime_version, info.driver_version, info.device_count_code) == (12040, 12020, None)


def test_no_child_answer_is_unavailable() -> None:
    info = CudaInfo()
    search = _libs.LibrarySearch([], [], [], {}, [])
    cuda.apply_child_state(info, None, "could not start /nope/python: No such file", search)
    assert info.libraries is None
    assert info.error == "library checks unavailable: could not start /nope/python: No such file"


# --------------------------------------------------------------------------- toolkits in a fake root


def _toolkit(root: Path, name: str) -> Path:
    d = root / "usr" / "local" / name
    (d / "bin").mkdir(parents=True)
    (d / "lib64").mkdir()
    return d


def test_toolkits_in_a_fake_root(tmp_path: Path, make_env) -> None:
    new = _toolkit(tmp_path, "cuda-12.4")
    (new / "version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}))
    old = _toolkit(tmp_path, "cuda-10.2")
    (old / "version.txt").write_text("CUDA Version 10.2.89\n")
    bare = _toolkit(tmp_path, "cuda-11.8")  # no version file: the directory name is all there is
    nvcc = bare / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 11.8, V11.8.89'\n")
    nvcc.chmod(0o755)
    os.symlink("cuda-12.4", tmp_path / "usr" / "local" / "cuda")
    ctx = ProbeContext(root=tmp_path, env=make_env(PATH=f"{bare / 'bin'}:/usr/bin:/bin"), timeout=10)
    toolkits = {t.path: t for t in cuda.find_toolkits(ctx)}
    assert set(toolkits) == {"/usr/local/cuda-12.4", "/usr/local/cuda-11.8", "/usr/local/cuda-10.2"}
    assert toolkits["/usr/local/cuda-12.4"].version == "12.4.1"
    assert toolkits["/usr/local/cuda-10.2"].version == "10.2.89"
    assert toolkits["/usr/local/cuda-11.8"].version == "11.8.89"  # from its nvcc
    assert toolkits["/usr/local/cuda-11.8"].nvcc == "/usr/local/cuda-11.8/bin/nvcc"
    assert cuda._usr_local_cuda_target(ctx) == "/usr/local/cuda-12.4"


def test_every_nvcc_on_path_and_a_hanging_one(tmp_path: Path, make_env) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d, body in (
        (a, "echo 'Cuda compilation tools, release 12.4, V12.4.131'"),
        (b, "exec sleep 30"),
        (c, "echo 'Cuda compilation tools, release 11.8, V11.8.89'"),
    ):
        d.mkdir()
        (d / "nvcc").write_text(f"#!/bin/sh\n{body}\n")
        (d / "nvcc").chmod(0o755)
    path = os.pathsep.join([str(a), str(b), str(a), str(c), "/usr/bin", "/bin"])
    assert cuda.which_all("nvcc", path) == [str(a / "nvcc"), str(b / "nvcc"), str(c / "nvcc")]
    env = make_env(PATH=path)
    assert cuda.nvcc_version_of(str(a / "nvcc"), env, 5) == "12.4.131"
    assert cuda.nvcc_version_of(str(b / "nvcc"), env, 0.5) is None


def test_known_encodings() -> None:
    assert cuda.cuda_text(13000) == "13.0" and cuda.cuda_text(0) is None
    assert cuda.cudnn_version(90100) == "9.1.0" and cuda.cudnn_version(8906) == "8.9.6"
    assert cuda.nccl_version(22105) == "2.21.5" and cuda.nccl_version(2708) == "2.7.8"
