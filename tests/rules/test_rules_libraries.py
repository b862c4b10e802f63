"""CUDA user-space rules: cuDNN versions, LD_LIBRARY_PATH shadowing, nvcc of another major."""

from __future__ import annotations

from envcheck.models import CudaToolkit, FrameworkDevices, LoadedLibrary

# --------------------------------------------------------------------------- cudnn-mismatch


def test_torch_loading_an_older_cudnn_minor(healthy, judge):
    s = healthy
    s.frameworks.frameworks[0].deep.cudnn_loaded = "90100"  # 9.1.0 loaded, built with 9.5.1
    f = judge(s).one("cudnn-mismatch")
    assert f.facts["cudnn_built"] == "9.5.1" and f.facts["cudnn_loaded"] == "9.1.0"
    assert f.commands == ['pip install "nvidia-cudnn-cu12>=9.5,<10"']


def test_tensorflow_built_with_cudnn9_loading_cudnn8(healthy, judge, tensorflow_fw):
    s = healthy
    s.frameworks.frameworks[1] = tensorflow_fw(
        deep=FrameworkDevices(ok=True, gpu_available=True, device_count=1, cudnn_loaded="8.9.7")
    )
    f = next(f for f in judge(s).of("cudnn-mismatch") if f.subject == "tensorflow")
    assert f.facts["cudnn_built"] == "9" and f.facts["cudnn_loaded"] == "8.9.7"


def test_newer_cudnn_minor_is_fine(healthy, judge):
    healthy.frameworks.frameworks[0].deep.cudnn_loaded = "91000"  # 9.10.0 >= 9.5
    assert judge(healthy).of("cudnn-mismatch") == []


def test_static_wheel_version_is_used_without_deep(healthy, judge):
    s = healthy
    s.frameworks.frameworks[0].deep = None
    s.frameworks.nvidia_wheels["nvidia-cudnn-cu12"] = "8.9.7.29"  # another package downgraded it
    f = judge(s).one("cudnn-mismatch")
    assert f.facts["loaded_from"] == "nvidia-cudnn-cu12 wheel"


def test_cudnn_unknown_skips(healthy, judge):
    s = healthy
    torch = s.frameworks.frameworks[0]
    torch.deep, torch.cudnn_build, torch.version = None, None, None
    s.frameworks.nvidia_wheels = {}
    s.cuda.libraries = []
    assert "cuDNN" in judge(s).skipped["cudnn-mismatch"]


# --------------------------------------------------------------------------- ld-library-path-shadow


def test_ld_library_path_with_a_system_cuda(healthy, judge):
    s = healthy
    s.system.env["LD_LIBRARY_PATH"] = "/usr/local/cuda-11.8/lib64:/opt/intel/lib"
    f = judge(s).one("ld-library-path-shadow")
    assert f.severity.value == "warning"
    assert f.facts["entries_to_remove"] == ["/usr/local/cuda-11.8/lib64"]
    assert f.commands == ['export LD_LIBRARY_PATH="/opt/intel/lib"']


def test_ld_library_path_that_was_actually_loaded_is_an_error(healthy, judge):
    s = healthy
    s.system.env["LD_LIBRARY_PATH"] = "/opt/conda/lib"
    s.frameworks.frameworks[0].deep.loaded_libraries = [
        LoadedLibrary(
            soname="libcusparse.so.12", path="/opt/conda/lib/libcusparse.so.12", origin="ld_library_path"
        ),
        LoadedLibrary(
            soname="libcudnn.so.9",
            path="/venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
            origin="wheel",
        ),
    ]
    f = judge(s).one("ld-library-path-shadow")
    assert f.severity.value == "error"
    assert f.facts["loaded_from_ld_library_path"] == ["/opt/conda/lib/libcusparse.so.12"]
    assert f.commands == ["unset LD_LIBRARY_PATH"]


def test_ld_library_path_unset_without_wheels_or_not_cuda(healthy, judge):
    assert judge(healthy).of("ld-library-path-shadow") == []
    healthy.system.env["LD_LIBRARY_PATH"] = "/usr/lib64:/opt/intel/oneapi/lib"
    assert judge(healthy).of("ld-library-path-shadow") == []
    healthy.system.env["LD_LIBRARY_PATH"] = "/usr/local/cuda/lib64"
    healthy.frameworks.nvidia_wheels = {}
    assert judge(healthy).of("ld-library-path-shadow") == []


# --------------------------------------------------------------------------- cuda-toolkit-mismatch


def test_nvcc_of_another_major_is_info_with_the_matching_toolkit(healthy, judge):
    s = healthy
    s.cuda.nvcc_version = "11.8.89"
    s.cuda.toolkits = [
        CudaToolkit(path="/usr/local/cuda-11.8", version="11.8.0"),
        CudaToolkit(path="/usr/local/cuda-12.6", version="12.6.3"),
    ]
    f = judge(s).one("cuda-toolkit-mismatch")
    assert f.severity.value == "info"
    assert f.commands == ["export CUDA_HOME=/usr/local/cuda-12.6 PATH=/usr/local/cuda-12.6/bin:$PATH"]


def test_nvcc_same_major_or_cpu_torch_is_fine(healthy, no_gpu, judge):
    healthy.cuda.nvcc_version = "12.4.131"
    assert judge(healthy).of("cuda-toolkit-mismatch") == []
    # this machine: nvcc 13.0 and a CPU torch
    assert judge(no_gpu).of("cuda-toolkit-mismatch") == []


def test_nvcc_facts_missing_skip(healthy, judge):
    healthy.cuda.nvcc_on_path = None
    healthy.cuda.nvcc_versions = None
    assert "nvcc" in judge(healthy).skipped["cuda-toolkit-mismatch"]
