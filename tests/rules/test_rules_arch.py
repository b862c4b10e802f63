"""GPU code coverage: arch-unsupported with NVIDIA's SASS/PTX rules, and the PTX-JIT-only case."""

from __future__ import annotations

from envcheck.models import Gpu


def _gpus(s, name: str, cc: str | None) -> None:
    s.nvidia.gpus = [Gpu(index=0, name=name, compute_capability=cc, memory_total_mib=11264)]


def test_pascal_with_a_cu128_wheel(healthy, judge):
    s = healthy
    _gpus(s, "NVIDIA GeForce GTX 1080 Ti", "6.1")
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.deep = "2.9.0+cu128", "12.8", None
    f = judge(s).one("arch-unsupported")
    assert f.subject == "GPU 0 (NVIDIA GeForce GTX 1080 Ti)"
    assert f.facts["arch_list_from"] == "PyTorch 2.9 cu128 wheel arch list"
    assert f.commands[-1] == "pip install torch==2.9.0 --index-url https://download.pytorch.org/whl/cu126"


def test_cc_from_the_gpu_name_when_a_paste_has_none(healthy, judge):
    s = healthy
    _gpus(s, "NVIDIA GeForce GTX 1080 Ti", None)
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.deep = "2.13.0+cu130", "13.0", None
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "580.95.05", 13000
    f = judge(s).one("arch-unsupported")
    assert f.facts["compute_capability"] == "6.1"
    assert f.commands[-1] == "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"


def test_blackwell_with_an_old_wheel_from_the_imported_arch_list(healthy, judge):
    s = healthy
    _gpus(s, "NVIDIA GeForce RTX 5090", "12.0")
    # torch 2.6.0+cu124 as imported: SASS up to sm_90 and no PTX
    s.frameworks.frameworks[0].version = "2.6.0+cu124"
    s.frameworks.frameworks[0].cuda_build = "12.4"
    s.frameworks.frameworks[0].deep.cuda_build = "12.4"
    s.frameworks.frameworks[0].deep.arch_list = [
        "sm_50",
        "sm_60",
        "sm_70",
        "sm_75",
        "sm_80",
        "sm_86",
        "sm_90",
    ]
    f = judge(s).one("arch-unsupported")
    assert f.facts["arch_list_from"] == "framework (imported)"
    assert "sm_120" in f.summary


def test_jetson_orin_is_not_covered_by_desktop_ampere_sass(healthy, judge):
    s = healthy
    _gpus(s, "Orin (nvgpu)", "8.7")
    s.frameworks.frameworks[0].deep.arch_list = ["sm_80", "sm_86"]
    assert len(judge(s).of("arch-unsupported")) == 1
    s.frameworks.frameworks[0].deep.arch_list = ["sm_80", "sm_86", "sm_87"]
    assert judge(s).of("arch-unsupported") == []


def test_ada_runs_ampere_sass(healthy, judge):
    s = healthy
    _gpus(s, "NVIDIA L4", "8.9")
    v = judge(s)
    assert v.of("arch-unsupported") == []
    assert v.of("arch-ptx-jit") == []


def test_arch_skips_without_compute_capability(healthy, judge):
    _gpus(healthy, "Mystery GPU 9000", None)
    v = judge(healthy)
    assert v.of("arch-unsupported") == []
    assert "compute capability" in v.skipped["arch-unsupported"]


def test_arch_skips_without_arch_list(healthy, judge):
    torch = healthy.frameworks.frameworks[0]
    torch.version, torch.deep = "2.7.1+cu118", None
    torch.cuda_build = "11.8"  # no source recorded for 2.7 cu118's arch list
    v = judge(healthy)
    assert "arch list" in v.skipped["arch-unsupported"]


def test_jax_floor_for_cuda13_plugin(healthy, judge, jax_fw):
    s = healthy
    _gpus(s, "Tesla V100-SXM2-16GB", "7.0")
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "580.95.05", 13000
    s.frameworks.frameworks[2] = jax_fw()
    f = next(f for f in judge(s).of("arch-unsupported") if f.facts["framework"] == "jax")
    assert f.commands == ["pip uninstall -y jax-cuda13-plugin", 'pip install -U "jax[cuda12]"']


# --------------------------------------------------------------------------- arch-ptx-jit


def test_ptx_only_coverage_is_info_on_a_new_driver(healthy, judge):
    s = healthy
    _gpus(s, "NVIDIA H100 80GB HBM3", "9.0")
    s.frameworks.frameworks[0].deep.arch_list = ["sm_80", "sm_86", "compute_86"]
    f = judge(s).one("arch-ptx-jit")
    assert f.severity.value == "info"
    assert f.facts["covering"] == ["compute_86"]


def test_ptx_jit_needs_the_toolkit_driver(healthy, judge):
    s = healthy
    _gpus(s, "NVIDIA H100 80GB HBM3", "9.0")
    s.frameworks.frameworks[0].deep.arch_list = ["sm_80", "sm_86", "compute_86"]
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "535.54.03", 12020
    f = judge(s).one("arch-ptx-jit")
    assert f.severity.value == "error"
    assert f.facts["driver_for_jit"] == "560.28.03"  # the CUDA 12.6 GA driver


def test_identical_gpus_make_one_finding(healthy, judge):
    s = healthy
    s.nvidia.gpus = [
        Gpu(index=i, name="NVIDIA GeForce GTX 1080 Ti", compute_capability="6.1") for i in range(4)
    ]
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.deep = "2.9.0+cu128", "12.8", None
    f = judge(s).one("arch-unsupported")
    assert f.subject == "GPUs 0, 1, 2, 3 (NVIDIA GeForce GTX 1080 Ti)"


def test_cuda_wheel_on_a_machine_without_gpu_has_nothing_to_cover(no_gpu, judge):
    torch = no_gpu.frameworks.frameworks[0]
    torch.build, torch.cuda_build, torch.version = "cuda", "12.6", "2.7.1+cu126"
    v = judge(no_gpu)
    assert v.of("arch-unsupported") == []
    assert "arch-unsupported" not in v.skipped
