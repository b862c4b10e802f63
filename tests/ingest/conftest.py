"""A realistic envcheck Report for the diff, redaction and markdown tests.

The values follow a real 2-GPU A100 machine (names, bus ids, driver and library versions as
NVML and the wheels report them); the personal ones (host, user, tokens, UUIDs) are planted so
that the redaction tests can prove they are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from envcheck.models import (
    ContainerInfo,
    CpuInfo,
    CudaInfo,
    CudaLibrary,
    DiskInfo,
    DiskUsage,
    Ecc,
    Finding,
    Framework,
    FrameworksInfo,
    Gpu,
    GpuProcess,
    MemoryInfo,
    MigDevice,
    NvidiaInfo,
    Pcie,
    ProbeTiming,
    PythonEnv,
    Report,
    Severity,
    SkippedRule,
    Snapshot,
    SystemInfo,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"

UUID0 = "GPU-5c3b6f0e-1d2a-4c8b-9e7f-0a1b2c3d4e5f"
UUID1 = "GPU-9f8e7d6c-5b4a-4321-8fed-cba987654321"
MIG0 = "MIG-11112222-3333-4444-5555-666677778888"
SECRETS = {
    "host": "gpu-node-17.corp.example.com",
    "user": "alice",
    "hf": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "gh": "ghp_0123456789abcdefABCDEF0123456789abcd",
    "wandb": "3f9c2a1b7d8e4f6a0b1c2d3e4f5a6b7c8d9e0f1a",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "proxy_password": "s3cretPass",
    "ip": "10.20.30.40",
    "ip6": "fe80::1ff:fe23:4567:890a",
    "serial0": "1324020012345",
    "serial1": "1324020067890",
    "email": "alice@example.com",
}


def make_report() -> Report:
    """A report as envcheck writes it for a 2-GPU A100 box with a CPU-only torch installed."""
    home = f"/home/{SECRETS['user']}"
    gpus = [
        Gpu(
            index=0, name="NVIDIA A100-SXM4-80GB", uuid=UUID0, bus_id="00000000:07:00.0",
            serial=SECRETS["serial0"], memory_total_mib=81920, memory_used_mib=1203,
            compute_capability="8.0", pcie=Pcie(gen_current=4, gen_max=4, width_current=16, width_max=16),
            power_limit_w=400.0, power_draw_w=61.3, temperature_c=31, utilization_gpu_pct=0,
            ecc=Ecc(mode_current=True, volatile_uncorrected=0), mig_mode_current=True,
            mig_devices=[MigDevice(index=0, uuid=MIG0, memory_total_mib=9728, slices=1)],
            processes=[GpuProcess(pid=4242, name=f"python {home}/train.py --token {SECRETS['gh']}",
                                  used_memory_mib=1100)],
        ),
        Gpu(
            index=1, name="NVIDIA A100-SXM4-80GB", uuid=UUID1, bus_id="00000000:0F:00.0",
            serial=SECRETS["serial1"], memory_total_mib=81920, memory_used_mib=4,
            compute_capability="8.0", pcie=Pcie(gen_current=4, gen_max=4, width_current=16, width_max=16),
            temperature_c=29,
        ),
    ]  # fmt: skip
    snapshot = Snapshot(
        system=SystemInfo(
            os="Linux", distro="Ubuntu 22.04.4 LTS", kernel="5.15.0-105-generic", arch="x86_64",
            glibc="2.35", hostname=SECRETS["host"],
            python=PythonEnv(version="3.11.9", implementation="CPython",
                             executable=f"{home}/.venv/bin/python", prefix=f"{home}/.venv", kind="venv"),
            container=ContainerInfo(runtime=None, kubernetes=False, wsl=False),
            env={
                "CUDA_VISIBLE_DEVICES": f"{UUID0},{UUID1}",
                "LD_LIBRARY_PATH": f"/usr/local/cuda-12.4/lib64:{home}/opt/nccl/lib",
                "HF_TOKEN": SECRETS["hf"],
                "WANDB_API_KEY": SECRETS["wandb"],
                "AWS_ACCESS_KEY_ID": SECRETS["aws"],
                "HTTPS_PROXY": f"http://bob:{SECRETS['proxy_password']}@proxy.corp:3128",
                "MASTER_ADDR": SECRETS["ip"],
                "NCCL_SOCKET_ADDR": SECRETS["ip6"],
                "GIT_AUTHOR_EMAIL": SECRETS["email"],
                "USER": SECRETS["user"],
                "HOME": home,
            },
            uptime_s=86400.5,
        ),
        cpu=CpuInfo(model="AMD EPYC 7763 64-Core Processor", vendor="AuthenticAMD", arch="x86_64", sockets=2,
                    cores=128, threads=256, mhz_current=2450.0, flags=["avx", "avx2", "fma"], numa_nodes=8),
        memory=MemoryInfo(total_bytes=2 * 2**40, available_bytes=1900 * 2**30, shm_total_bytes=64 * 2**30),
        disk=DiskInfo(disks=[DiskUsage(label="home", path=home, total_bytes=2**40, free_bytes=2**39)]),
        nvidia=NvidiaInfo(driver_version="535.104.05", cuda_driver_version=12020, gpus=gpus),
        cuda=CudaInfo(
            nvcc_version="12.4.131", runtime_version=12040, driver_version=12020,
            libraries=[CudaLibrary(name="cudnn", soname="libcudnn.so.9", version="9.1.0",
                                   path=f"{home}/.venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
                                   origin="wheel")],
        ),
        frameworks=FrameworksInfo(
            frameworks=[Framework(name="torch", installed=True, distribution="torch", version="2.3.1+cpu",
                                  build="cpu", location=f"{home}/.venv/lib/python3.11/site-packages/torch")],
            nvidia_wheels={"nvidia-cudnn-cu12": "9.1.0.70", "nvidia-nccl-cu12": "2.20.5"},
        ),
    )  # fmt: skip
    findings = [
        Finding(
            id="cpu-only-wheel", severity=Severity.ERROR,
            summary="torch 2.3.1+cpu is a CPU build, but 2 NVIDIA GPUs are present",
            facts={"torch.version": "2.3.1+cpu", "gpus": 2},
            fix="Install the CUDA 12.1 build of torch 2.3.1.",
            commands=["pip uninstall -y torch",
                      "pip install torch==2.3.1 --index-url https://download.pytorch.org/whl/cu121"],
            subject="torch",
        ),
        Finding(
            id="small-shm", severity=Severity.WARNING,
            summary="/dev/shm is 64 MiB | DataLoader workers may crash",
            fix="Give the container more shared memory.", commands=["docker run --shm-size=16g ..."],
        ),
    ]  # fmt: skip
    return Report(
        tool_version="0.1.0",
        created_at="2026-11-22T00:00:00+00:00",
        snapshot=snapshot,
        findings=findings,
        skipped=[SkippedRule(id="tpu-holder", reason="tpu unknown")],
        timings=[ProbeTiming(name="nvidia", seconds=0.084)],
    )


@pytest.fixture
def report() -> Report:
    return make_report()


@pytest.fixture
def secrets() -> dict[str, str]:
    return dict(SECRETS, uuid0=UUID0, uuid1=UUID1, mig0=MIG0)


@pytest.fixture
def read_fixture() -> Callable[[str], str]:
    def read(name: str) -> str:
        return (FIXTURES / name).read_text(encoding="utf-8")

    return read
