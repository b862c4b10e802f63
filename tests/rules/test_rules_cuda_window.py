"""Verdicts that hang on the CUDA release a build was made with, on hand-built Snapshots: a build
whose CUDA does not know the GPU is arch-unsupported even when PTX would nominally JIT or its arch
list is unknown, and a driver older than a pre-CUDA-11 build needs is driver-too-old."""

from __future__ import annotations

from envcheck.models import Framework, FrameworkDevices, Gpu

CU124_ARCHS = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "compute_90"]


def _gpu(s, name: str, cc: str | None) -> None:
    s.nvidia.gpus = [Gpu(index=0, name=name, compute_capability=cc, memory_total_mib=32607)]


def _torch(s, version: str, cuda: str, arch_list: list[str] | None = None) -> Framework:
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.cudnn_build = version, cuda, None
    deep = FrameworkDevices(ok=True, version=version, cuda_build=cuda, arch_list=arch_list)
    torch.deep = deep if arch_list else None
    return torch


def _rtx5090_on_r570(s) -> None:
    _gpu(s, "NVIDIA GeForce RTX 5090", "12.0")
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "570.124.04", 12080
    s.cuda.driver_version = 12080
    s.system.python.version = "3.12.9"


def test_ptx_of_an_old_cuda_build_does_not_rescue_blackwell(healthy, judge):
    s = healthy
    _rtx5090_on_r570(s)
    _torch(s, "2.6.0+cu124", "12.4", CU124_ARCHS)
    v = judge(s)
    f = v.one("arch-unsupported")
    assert f.summary.endswith("built with CUDA 12.4, compute capability 12.0 needs CUDA >= 12.8")
    assert f.facts["cuda_for_this_gpu"] == ">= 12.8"
    assert f.facts["arch_list"] == CU124_ARCHS
    # the fix is a build whose CUDA knows Blackwell and that driver 570 runs: the newest cu128/cu129
    assert f.commands == [
        "pip uninstall -y torch",
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu129",
    ]
    assert "needs driver >= 580.65.06" in f.fix  # what a driver upgrade would unlock
    assert v.of("arch-ptx-jit") == []  # no "runs through PTX JIT" next to it


def test_cu128_build_with_blackwell_sass_is_fine(healthy, judge):
    s = healthy
    _rtx5090_on_r570(s)
    _torch(s, "2.7.1+cu128", "12.8", ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"])
    v = judge(s)
    assert v.of("arch-unsupported") == [] and v.of("arch-ptx-jit") == []


def test_blackwell_on_r580_gets_the_newest_release(healthy, judge):
    s = healthy
    _rtx5090_on_r570(s)
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "580.95.05", 13000
    s.cuda.driver_version = 13000
    _torch(s, "2.6.0+cu124", "12.4", CU124_ARCHS)
    f = judge(s).one("arch-unsupported")
    assert f.commands[-1] == "pip install torch==2.15.0 --index-url https://download.pytorch.org/whl/cu132"


def test_old_release_from_the_tables_moves_to_its_own_cuda_11_variant(healthy, judge):
    # torch 1.8.1+cu102 on an A100: the PyPI wheel's arch list (read from it) stops at sm_70 and
    # CUDA 10.2 predates 8.0; 1.8.1 also shipped +cu111 (pytorch.org's previous-versions page)
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "450.80.02", 11000
    s.cuda.driver_version = 11000
    s.system.python.version = "3.8.10"
    _torch(s, "1.8.1+cu102", "10.2")
    f = judge(s).one("arch-unsupported")
    assert (
        f.facts["arch_list"] == ["sm_37", "sm_50", "sm_60", "sm_70"] and f.facts["framework_cuda"] == "10.2"
    )
    assert "compute capability 8.0 needs CUDA >= 11.0" in f.summary
    assert (
        f.commands[-1]
        == "pip install torch==1.8.1+cu111 -f https://download.pytorch.org/whl/torch_stable.html"
    )
    assert "not verified against the wheel" in f.fix  # the cu111 row is a hand row


def test_unknown_arch_list_but_cuda_too_old(healthy, judge):
    # torch 0.4.1 is older than the tables (they start at 1.0): its arch list is unknown, its CUDA is not
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "450.80.02", 11000
    s.cuda.driver_version = 11000
    s.system.python.version = "3.6.9"
    _torch(s, "0.4.1", "9.0")
    f = judge(s).one("arch-unsupported")
    assert f.facts["arch_list"] is None and f.facts["framework_cuda"] == "9.0"
    assert "compute capability 8.0 needs CUDA >= 11.0" in f.summary
    # older than the tables: no jump to a release they pick; the driver's reach is named instead
    assert f.commands == [] and "older than envcheck's tables (1.0..2.15)" in f.fix


def test_same_major_binary_compatibility_is_not_flagged(healthy, judge):
    # torch 1.13.1+cu117 carries sm_86 SASS, which runs on Ada (8.9): CUDA 11.7 predates 8.9 but
    # its libraries carry sm_80/sm_86 code that runs there
    s = healthy
    _gpu(s, "NVIDIA GeForce RTX 4090", "8.9")
    _torch(s, "1.13.1+cu117", "11.7", ["sm_37", "sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86"])
    assert judge(s).of("arch-unsupported") == []


def test_hopper_needs_cuda_11_8_even_without_an_arch_list(healthy, judge):
    s = healthy
    _gpu(s, "NVIDIA H100 80GB HBM3", "9.0")
    _torch(s, "2.0.1+cu117", "11.7")
    f = judge(s).one("arch-unsupported")
    assert "compute capability 9.0 needs CUDA >= 11.8" in f.summary


def test_known_cuda_without_arch_list_still_skips(healthy, judge):
    # a CUDA that knows the GPU says nothing about which archs a build compiled: no verdict
    s = healthy
    _torch(s, "1.13.1+cu116", "11.6")  # a hand row (pytorch.org): its arch list is not known
    v = judge(s)
    assert v.of("arch-unsupported") == []
    assert "arch list" in v.skipped["arch-unsupported"]


def test_cuda_13_build_on_volta(healthy, judge):
    s = healthy
    _gpu(s, "Tesla V100-SXM2-32GB", "7.0")
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "580.95.05", 13000
    _torch(s, "2.13.0+cu130", "13.0")
    f = judge(s).one("arch-unsupported")
    assert f.facts["cuda_too_old_or_new"] == "CUDA 12.9 was the last release for compute capability 7.0"
    assert f.commands[-1] == "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"


def test_tensorflow_without_a_build_for_blackwell(healthy, judge, tensorflow_fw):
    s = healthy
    _rtx5090_on_r570(s)
    s.frameworks.frameworks[0] = Framework(name="torch", installed=False)
    s.frameworks.frameworks[1] = tensorflow_fw()
    f = judge(s).one("arch-unsupported")
    assert "compute capability 12.0 needs CUDA >= 12.8" in f.summary
    assert f.commands == []  # no TensorFlow in the tables is built with CUDA >= 12.8
    assert "build TensorFlow from source" in f.fix


def test_jax_is_judged_only_when_its_cuda_minor_is_known(healthy, judge, jax_fw):
    s = healthy
    _rtx5090_on_r570(s)
    s.frameworks.frameworks[0] = Framework(name="torch", installed=False)
    jax = jax_fw(cuda="12")
    s.frameworks.frameworks[2] = jax
    assert judge(s).of("arch-unsupported") == []  # any 12.x: the plugin may well be >= 12.8
    jax.deep = FrameworkDevices(ok=True, version="0.10.2", cuda_build="12.3")
    f = judge(s).one("arch-unsupported")
    assert "built with CUDA 12.3" in f.summary


# --------------------------------------------------------------------------- driver before CUDA 11


def _t4_torch13(s, driver: str) -> None:
    _gpu(s, "Tesla T4", "7.5")
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = driver, None
    s.cuda.driver_version = None
    s.system.python.version = "3.7.4"
    _torch(s, "1.3.0", "10.1")


def test_driver_410_cannot_run_a_cuda_10_1_build(healthy, judge):
    s = healthy
    _t4_torch13(s, "410.104")
    f = judge(s).one("driver-too-old")
    assert f.summary == (
        "torch 1.3.0 needs CUDA 10.1; driver 410.104 supports CUDA 10.0 (by NVIDIA's driver table)"
    )
    assert f.facts["family_floor"] == "418.39"
    assert "CUDA 10.1 needs >= 418.39" in f.fix
    # no torch in the tables runs on this driver, so the driver is the fix
    assert f.commands == ["sudo apt-get install -y nvidia-driver-580", "sudo reboot"]


def test_driver_at_the_10_1_floor_is_enough(healthy, judge):
    s = healthy
    _t4_torch13(s, "418.39")
    assert judge(s).of("driver-too-old") == []
    s.nvidia.driver_version = "410.104"
    s.frameworks.frameworks[0].cuda_build = "10.0"  # the same driver runs a CUDA 10.0 build
    assert judge(s).of("driver-too-old") == []
