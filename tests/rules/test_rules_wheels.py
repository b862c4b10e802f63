"""Framework-build rules: CPU wheels on GPU machines (with the exact reinstall line), Python
outside the wheel's range, CUDA builds that see no GPU, TensorFlow without CUDA libraries."""

from __future__ import annotations

from envcheck.models import Framework, FrameworkDevices, Gpu


def _cpu_torch(version: str) -> Framework:
    return Framework(name="torch", installed=True, distribution="torch", version=version, build="cpu")


def _gpu(name: str, cc: str | None) -> Gpu:
    return Gpu(index=0, name=name, compute_capability=cc, memory_total_mib=24576)


# --------------------------------------------------------------------------- cpu-only-wheel


def test_cpu_torch_on_a100_with_r535_gets_the_cu124_build(healthy, judge):
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "535.54.03", 12020
    s.frameworks.frameworks[0] = _cpu_torch("2.6.0+cpu")
    f = judge(s).one("cpu-only-wheel")
    assert f.subject == "torch"
    assert f.commands == [
        "pip uninstall -y torch",
        "pip install torch==2.6.0 --index-url https://download.pytorch.org/whl/cu124",
    ]


def test_cpu_torch_on_pascal_gets_cu126_not_cu130(healthy, judge):
    s = healthy
    s.nvidia.gpus = [_gpu("NVIDIA GeForce GTX 1080 Ti", "6.1")]
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "580.95.05", 13000
    s.frameworks.frameworks[0] = _cpu_torch("2.13.0+cpu")
    f = judge(s).one("cpu-only-wheel")
    assert f.commands[-1] == "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
    assert "6.1" in f.fix


def test_cpu_torch_on_rtx_5090_prefers_a_build_with_sass_for_it(healthy, judge):
    s = healthy
    s.nvidia.gpus = [_gpu("NVIDIA GeForce RTX 5090", "12.0")]
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "570.124.06", 12080
    s.frameworks.frameworks[0] = _cpu_torch("2.7.0+cpu")
    # 2.7: cu118 has no 12.0 code, cu126 has no 12.0 code, cu128 has sm_120 (experimental but the only fit)
    f = judge(s).one("cpu-only-wheel")
    assert f.commands[-1] == "pip install torch==2.7.0 --index-url https://download.pytorch.org/whl/cu128"


def test_cpu_tensorflow_is_replaced_by_and_cuda(healthy, judge):
    s = healthy
    s.frameworks.frameworks[1] = Framework(
        name="tensorflow", installed=True, distribution="tensorflow-cpu", version="2.18.0", build="cpu"
    )
    f = judge(s).one("cpu-only-wheel")
    assert f.subject == "tensorflow"
    assert f.commands == ["pip uninstall -y tensorflow-cpu", 'pip install "tensorflow[and-cuda]==2.18.0"']


def test_cpu_jax_gets_the_plugin_the_driver_runs(healthy, judge, jax_fw):
    s = healthy
    s.frameworks.frameworks[2] = jax_fw(cuda=None)
    assert judge(s).one("cpu-only-wheel").commands == ['pip install -U "jax[cuda12]"']
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "580.95.05", 13000
    assert judge(s).one("cpu-only-wheel").commands == ['pip install -U "jax[cuda13]"']


def test_cpu_wheel_without_a_gpu_is_fine(no_gpu, healthy, judge):
    assert judge(no_gpu).of("cpu-only-wheel") == []
    assert judge(healthy).of("cpu-only-wheel") == []


def test_cpu_wheel_skips_when_gpu_presence_unknown(no_gpu, judge):
    s = no_gpu
    s.nvidia = None
    v = judge(s)
    assert v.of("cpu-only-wheel") == []
    assert "NVIDIA GPU" in v.skipped["cpu-only-wheel"]


def test_cpu_wheel_from_version_tag_when_build_facts_missing(healthy, judge):
    s = healthy
    s.frameworks.frameworks[0] = Framework(name="torch", installed=True, version="2.6.0+cpu")
    assert len(judge(s).of("cpu-only-wheel")) == 1


# --------------------------------------------------------------------------- python-unsupported


def test_python_outside_the_release_range(healthy, judge):
    s = healthy
    s.system.python.version = "3.14.1"
    s.frameworks.frameworks[0].version = "2.5.1+cu124"
    s.frameworks.frameworks[0].cuda_build = "12.4"
    f = judge(s).one("python-unsupported")
    assert f.facts["supported"] == "3.9-3.13"  # the cp39..cp313 wheels on PyPI
    assert f.commands == ['pip install "torch==2.9.*"']


def test_python_too_new_for_tensorflow_points_to_the_first_release_that_has_it(healthy, judge):
    s = healthy
    s.system.python.version = "3.12.3"
    s.frameworks.frameworks[1] = Framework(
        name="tensorflow", installed=True, distribution="tensorflow-cpu", version="2.15.1", build="cpu"
    )
    f = judge(s).one("python-unsupported")
    assert f.subject == "tensorflow"
    assert f.commands == ['pip install "tensorflow-cpu==2.16.*"']


def test_python_inside_the_range(healthy, judge):
    assert judge(healthy).of("python-unsupported") == []


def test_python_unknown_skips(healthy, judge):
    healthy.system.python = None
    assert "python-unsupported" in judge(healthy).skipped


# --------------------------------------------------------------------------- framework-no-gpu


def test_cuda_torch_that_sees_no_gpu(healthy, judge):
    s = healthy
    s.frameworks.frameworks[0].deep = FrameworkDevices(
        ok=True, gpu_available=False, device_count=0, cuda_build="12.6"
    )
    f = judge(s).one("framework-no-gpu")
    assert f.facts["nvml_gpus"] == 1


def test_framework_no_gpu_needs_deep(healthy, judge):
    healthy.frameworks.frameworks[0].deep = None
    v = judge(healthy)
    assert v.of("framework-no-gpu") == []
    assert "--deep" in v.skipped["framework-no-gpu"]


def test_framework_sees_the_gpu(healthy, judge):
    assert judge(healthy).of("framework-no-gpu") == []


# --------------------------------------------------------------------------- cuda-libs-missing


def _tf(s, tf, wheels):
    s.frameworks.frameworks[1] = tf
    s.frameworks.nvidia_wheels = wheels
    s.cuda.libraries = [lib for lib in s.cuda.libraries if lib.name != "cudnn"]
    return s


def test_tensorflow_without_cudnn_anywhere(healthy, judge, tensorflow_fw):
    f = judge(_tf(healthy, tensorflow_fw(), {})).one("cuda-libs-missing")
    assert f.commands == ['pip install "tensorflow[and-cuda]==2.18.0"']


def test_tensorflow_with_cudnn_wheel(healthy, judge, tensorflow_fw):
    assert (
        judge(_tf(healthy, tensorflow_fw(), {"nvidia-cudnn-cu12": "9.3.0.75"})).of("cuda-libs-missing") == []
    )
