"""Snapshots for rule tests: a healthy one-GPU machine that each test breaks in one place.

The healthy machine: one A100-SXM4-80GB (CC 8.0) on driver 570.124.06 (CUDA 12.8) under
Ubuntu 22.04, torch 2.7.1+cu126 from its wheels (imported with --deep), 256 GiB RAM, 64 GiB
/dev/shm, PCIe Gen4 x16, clean ECC, a TPU-less bare-metal host. Values follow the recorded A100
captures in ../shared/reference/nvidia-smi.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from envcheck.models import (
    ContainerInfo,
    CudaInfo,
    CudaLibrary,
    Ecc,
    Finding,
    Framework,
    FrameworkDevices,
    FrameworksInfo,
    Gpu,
    KernelModule,
    MemoryInfo,
    NvidiaInfo,
    NvmlStatus,
    PciDevice,
    Pcie,
    PythonEnv,
    Snapshot,
    SystemInfo,
    TpuInfo,
)
from envcheck.rules import REGISTRY, evaluate

GIB = 1024**3
TORCH_SITE = "/venv/lib/python3.11/site-packages"


def a100(index: int = 0) -> Gpu:
    return Gpu(
        index=index,
        name="NVIDIA A100-SXM4-80GB",
        uuid=f"GPU-4f1f8e1c-0b5e-4b0f-9d59-7c1f2a3b4c5{index}",
        bus_id=f"00000000:{7 + index:02X}:00.0",
        memory_total_mib=81920,
        memory_used_mib=4,
        compute_capability="8.0",
        pcie=Pcie(gen_current=4, gen_max=4, width_current=16, width_max=16, gen_device_max=4),
        temperature_c=31,
        power_draw_w=62.0,
        power_limit_w=400.0,
        ecc=Ecc(
            mode_current=True,
            volatile_uncorrected=0,
            aggregate_uncorrected=0,
            remapped_pending=False,
            remapped_failure=False,
            retired_pages_pending=False,
        ),
        mig_mode_current=False,
        mig_mode_pending=False,
        mig_devices=[],
        throttle_reasons=["gpu_idle"],
    )


def torch_cuda(version: str = "2.7.1+cu126", cuda: str = "12.6", cudnn: str = "9.5.1.17") -> Framework:
    return Framework(
        name="torch",
        installed=True,
        distribution="torch",
        version=version,
        location=f"{TORCH_SITE}/torch",
        build="cuda",
        cuda_build=cuda,
        cudnn_build=cudnn,
        deep=FrameworkDevices(
            ok=True,
            version=version,
            gpu_available=True,
            device_count=1,
            devices=["cuda:0"],
            cuda_build=cuda,
            cudnn_build="90501",
            cudnn_loaded="90501",
            arch_list=["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
        ),
    )


def tensorflow_cuda(**fields: Any) -> Framework:
    """TensorFlow 2.18.0 from its pip wheel, built with CUDA 12.5.1 and cuDNN 9; ``fields`` override."""
    base: dict[str, Any] = {
        "name": "tensorflow",
        "installed": True,
        "distribution": "tensorflow",
        "version": "2.18.0",
        "build": "cuda",
        "cuda_build": "12.5.1",
        "cudnn_build": "9",
    }
    return Framework(**(base | fields))


def jax_build(cuda: str | None = "13", **fields: Any) -> Framework:
    """JAX 0.10.2 with jaxlib and the jax-cuda<cuda>-plugin (the CUDA major); ``cuda=None``: the CPU build."""
    base: dict[str, Any] = {
        "name": "jax",
        "installed": True,
        "distribution": "jax",
        "version": "0.10.2",
        "build": "cuda" if cuda else "cpu",
        "cuda_build": cuda,
        "plugins": {"jaxlib": "0.10.2"} | ({f"jax-cuda{cuda}-plugin": "0.10.2"} if cuda else {}),
    }
    return Framework(**(base | fields))


def healthy_snapshot() -> Snapshot:
    return Snapshot(
        system=SystemInfo(
            os="Linux",
            distro="Ubuntu 22.04.4 LTS",
            kernel="5.15.0-105-generic",
            arch="x86_64",
            glibc="2.35",
            python=PythonEnv(version="3.11.9", implementation="CPython", kind="venv"),
            container=ContainerInfo(runtime=None, kubernetes=False, wsl=False),
            env={},
        ),
        memory=MemoryInfo(total_bytes=256 * GIB, available_bytes=240 * GIB, shm_total_bytes=64 * GIB),
        nvidia=NvidiaInfo(
            pci_devices=[
                PciDevice(
                    address="0000:07:00.0",
                    vendor_id="0x10de",
                    device_id="0x20b2",
                    class_id="0x030200",
                    driver="nvidia",
                )
            ],
            kernel_module=KernelModule(loaded=True, version="570.124.06", nouveau_loaded=False),
            device_nodes=["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"],
            dxg=False,
            nvml=NvmlStatus(ok=True, code=0),
            nvml_library="/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.124.06",
            driver_version="570.124.06",
            cuda_driver_version=12080,
            gpus=[a100(0)],
            fabric_manager=None,
        ),
        cuda=CudaInfo(
            toolkits=[],
            nvcc_on_path=[],
            nvcc_version=None,
            nvcc_versions={},
            libraries=[
                CudaLibrary(
                    name="cudnn",
                    soname="libcudnn.so.9",
                    version="9.5.1",
                    path=f"{TORCH_SITE}/nvidia/cudnn/lib/libcudnn.so.9",
                    origin="wheel",
                ),
                CudaLibrary(
                    name="cuda",
                    soname="libcuda.so.1",
                    version="12.8",
                    path="/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                    origin="system",
                ),
            ],
            runtime_version=12060,
            driver_version=12080,
            device_count_code=0,
            device_count=1,
            cu_init_code=0,
        ),
        tpu=TpuInfo(pci_devices=[], accel_nodes=[], vfio_nodes=[], holders=[], holders_complete=True),
        frameworks=FrameworksInfo(
            frameworks=[
                torch_cuda(),
                Framework(name="tensorflow", installed=False),
                Framework(name="jax", installed=False),
            ],
            nvidia_wheels={"nvidia-cudnn-cu12": "9.5.1.17", "nvidia-cuda-runtime-cu12": "12.6.77"},
        ),
    )


def no_gpu_machine() -> Snapshot:
    """This development machine: no NVIDIA GPU or driver, a CUDA 13.0 toolkit, torch CPU."""
    s = healthy_snapshot()
    assert s.nvidia is not None and s.cuda is not None and s.frameworks is not None
    s.nvidia = NvidiaInfo(
        pci_devices=[],
        kernel_module=KernelModule(loaded=False, nouveau_loaded=False),
        device_nodes=[],
        dxg=False,
        nvml=NvmlStatus(ok=False, code=12, name="LIBRARY_NOT_FOUND"),
        gpus=None,
    )
    s.cuda = CudaInfo(
        toolkits=[],
        nvcc_version="13.0.88",
        nvcc_on_path=["/usr/local/cuda-13.0/bin/nvcc"],
        libraries=[
            CudaLibrary(
                name="cudart",
                soname="libcudart.so.13",
                version="13.0",
                path="/usr/local/cuda-13.0/lib64/libcudart.so.13",
                origin="toolkit",
            )
        ],
        runtime_version=13000,
        driver_version=0,
        device_count_code=35,
        cu_init_code=None,
    )
    s.frameworks.frameworks[0] = Framework(
        name="torch", installed=True, distribution="torch", version="2.13.0+cpu", build="cpu"
    )
    s.frameworks.nvidia_wheels = {}
    return s


class Verdicts:
    """What the rules said about a Snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.findings, skipped = evaluate(snapshot)
        self.skipped: dict[str, str] = {k.id: k.reason for k in skipped}
        self.ids = {f.id for f in self.findings}

    def of(self, rule_id: str) -> list[Finding]:
        assert rule_id in REGISTRY, f"unknown rule id {rule_id}"
        return [f for f in self.findings if f.id == rule_id]

    def one(self, rule_id: str) -> Finding:
        found = self.of(rule_id)
        assert len(found) == 1, (
            f"expected one {rule_id}, got {found} (all: {self.ids}, skipped: {self.skipped})"
        )
        return found[0]


@pytest.fixture
def healthy() -> Snapshot:
    return healthy_snapshot()


@pytest.fixture
def no_gpu() -> Snapshot:
    return no_gpu_machine()


@pytest.fixture
def judge() -> Callable[[Snapshot], Verdicts]:
    return Verdicts


@pytest.fixture
def gpu() -> Callable[[int], Gpu]:
    return a100


@pytest.fixture
def tensorflow_fw() -> Callable[..., Framework]:
    return tensorflow_cuda


@pytest.fixture
def jax_fw() -> Callable[..., Framework]:
    return jax_build
