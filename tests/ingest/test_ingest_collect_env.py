"""collect_env pastes from real GitHub issues read into exactly the facts their text states."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envcheck.ingest import load
from envcheck.ingest.collect_env import cudnn_candidates
from envcheck.models import Framework, Snapshot

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"
#: the pastes that hold a collect_env report (the rest of the corpus holds other dumps)
ALL = sorted(
    p.name
    for p in FIXTURES.glob("*.txt")
    if re.search(r"^\s*PyTorch version\s*:", p.read_text(encoding="utf-8"), re.M)
)
NAME_A100 = "pytorch-57922_a100_mig_cu102.txt"


def snap(read_fixture: Callable[[str], str], name: str) -> Snapshot:
    report = load(read_fixture(name), name)
    assert report.findings == []
    assert report.snapshot.source == "collect_env"
    assert report.snapshot.paste is not None
    assert {"collect_env", "vllm-collect-env"} & set(report.snapshot.paste.kinds)
    return report.snapshot


def torch_of(s: Snapshot) -> Framework:
    assert s.frameworks is not None
    (torch,) = [f for f in s.frameworks.frameworks if f.name == "torch"]
    return torch


def test_there_are_enough_varied_fixtures() -> None:
    assert len(ALL) >= 7
    manifest = (FIXTURES / "corpus.toml").read_text()
    for name in ALL:
        assert f'file = "{name}"' in manifest, f"{name} has no source in corpus.toml"


def test_a100_mig_old_format(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, NAME_A100)
    torch = torch_of(s)
    assert (torch.version, torch.build, torch.cuda_build) == ("1.8.1+cu102", "cuda", "10.2")
    assert torch.deep is not None and torch.deep.gpu_available is True
    assert s.nvidia is not None and s.nvidia.driver_version == "450.80.02"
    (gpu,) = s.nvidia.gpus or []
    assert gpu.name == "A100-SXM4-40GB" and gpu.mig_mode_current is True
    assert [(m.index, m.slices, m.uuid) for m in gpu.mig_devices or []] == [(0, 3, None)]
    assert gpu.uuid is None and gpu.compute_capability is None  # the paste does not say
    assert s.cuda is None  # nvcc "Could not collect"; the system cuDNN list is not torch's
    assert [(lib.version, lib.origin) for lib in cudnn_candidates(read_fixture(NAME_A100))] == [
        ("8.1.0", "system")
    ]
    assert s.cpu is None  # no CPU section in 1.8's format
    assert s.system is not None and s.system.python is not None and s.system.python.version == "3.8"
    assert s.system.glibc is None and s.system.kernel is None


def test_windows_cpu_wheel_on_rtx(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-122924_windows11_cpu_wheel_rtx4080.txt")
    torch = torch_of(s)
    # torch imported and torch.version.cuda is None ("Could not collect"): a CPU build
    assert (torch.version, torch.build, torch.cuda_build) == ("2.2.2", "cpu", None)
    assert torch.deep is not None and torch.deep.gpu_available is False
    assert torch.plugins == {"torchvision": "0.17.2", "torchaudio": "2.2.2"}
    assert s.nvidia is not None and s.nvidia.driver_version == "551.86"
    assert [g.name for g in s.nvidia.gpus or []] == ["NVIDIA GeForce RTX 4080 Laptop GPU"]
    assert s.cuda is not None and s.cuda.nvcc_version == "12.4.99" and s.cuda.runtime_version is None
    assert s.system is not None
    assert (s.system.os, s.system.distro, s.system.arch) == (
        "Windows",
        "Microsoft Windows 11 Education",
        "x86_64",
    )
    assert s.system.glibc is None and s.system.kernel is None and s.system.container is None
    assert s.cpu is not None
    assert (s.cpu.model, s.cpu.vendor, s.cpu.mhz_max, s.cpu.arch) == (
        "13th Gen Intel(R) Core(TM) i9-13980HX", "GenuineIntel", 2200.0, "x86_64",
    )  # fmt: skip
    assert s.cpu.cores is None and s.cpu.threads is None  # WMI's query does not say
    assert s.frameworks is not None and s.frameworks.nvidia_wheels is None


def test_windows_cuda_wheel_with_toolkit_cudnn(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-51858_windows11_gtx1050ti_cu117.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build, torch.cuda_build) == ("2.0.1+cu117", "cuda", "11.7")
    assert s.nvidia is not None and s.nvidia.driver_version == "535.98"
    assert s.cuda is not None and s.cuda.nvcc_version == "11.7.64"
    assert s.cuda.libraries is None
    (lib,) = cudnn_candidates(read_fixture("pytorch-51858_windows11_gtx1050ti_cu117.txt"))
    assert lib.soname == "cudnn_ops_train64_8.dll" and lib.origin == "toolkit" and lib.version is None
    assert s.cpu is not None and s.cpu.model == "Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz"


def test_windows_new_cpu_format_after_a_warning(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-137846_windows11_cpu_xpu_format.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build) == ("2.8.0.dev20250528+cpu", "cpu")
    assert s.nvidia is None and s.cuda is None  # "No CUDA" is not a fact about the machine
    assert s.cpu is not None and s.cpu.model == "12th Gen Intel(R) Core(TM) i7-1270P"
    assert s.cpu.vendor == "GenuineIntel" and s.cpu.arch == "x86_64"


def test_macos_arm64_in_backticks(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-49924_macos_arm64_torch18.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build) == ("1.8.0a0+c068180", "cpu")
    assert torch.plugins == {"torchvision": "0.9.0a0+83171d6"}
    assert s.system is not None and (s.system.os, s.system.distro, s.system.arch) == (
        "Darwin",
        "macOS 11.1",
        "arm64",
    )
    assert s.nvidia is None and s.cuda is None


def test_macos_kext_version_is_not_a_driver(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-16999_macos_gtx1060_torch11.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build, torch.cuda_build) == ("1.1.0a0+4335aac", "cuda", "10.0")
    assert torch.deep is not None and torch.deep.gpu_available is True  # "Yes" in 2019
    assert torch.deep.devices == ["GeForce GTX 1060 with Max-Q Design"]
    assert s.nvidia is None  # "Nvidia driver version: 1.1.0" is the CUDA kext, not a driver
    assert s.cuda is not None and s.cuda.nvcc_version == "10.0.130"
    (lib,) = cudnn_candidates(read_fixture("pytorch-16999_macos_gtx1060_torch11.txt"))
    assert lib.soname == "libcudnn.dylib" and lib.version is None
    assert s.system is not None and s.system.os == "Darwin"


def test_2019_format_debian_t4(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-28321_debian9_t4_torch13_old_format.txt")
    torch = torch_of(s)
    # the imported version wins over the stale pip line (torch==1.2.0)
    assert (torch.version, torch.build, torch.cuda_build) == ("1.3.0", "cuda", "10.1")
    assert torch.cudnn_build == "7.6.3"  # from the conda build string py3.7_cuda10.1.243_cudnn7.6.3_0
    assert torch.deep is not None and torch.deep.gpu_available is False  # "No"
    assert s.nvidia is not None and s.nvidia.driver_version == "410.104"
    assert [g.name for g in s.nvidia.gpus or []] == ["Tesla T4"]
    assert s.cuda is not None and s.cuda.nvcc_version == "10.0.130"
    assert s.system is not None and (s.system.os, s.system.distro) == (
        "Linux",
        "Debian GNU/Linux 9.11 (stretch)",
    )


def test_torch_not_importable_but_installed(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-16318_no_torch_2x_p100_2019.txt")
    torch = torch_of(s)
    assert torch.installed and torch.version == "1.0.0a0+db5d313" and torch.build is None
    assert torch.error is not None and "could not import" in torch.error
    assert torch.deep is None
    assert s.nvidia is not None and s.nvidia.driver_version == "390.12"
    assert [(g.index, g.name) for g in s.nvidia.gpus or []] == [
        (0, "Tesla P100-PCIE-16GB"),
        (1, "Tesla P100-PCIE-16GB"),
    ]
    assert s.cuda is not None and s.cuda.libraries is None
    # "Could not collect (Should be v7.4.1.5 for cuda-9.1.85)": a user's note, not a fact
    assert cudnn_candidates(read_fixture("pytorch-16318_no_torch_2x_p100_2019.txt")) == []
    assert s.system is not None and s.system.python is not None and s.system.python.version == "2.7"


def test_rocm_build_on_mi300x(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-180500_rocm_mi300x.txt")
    torch = torch_of(s)
    assert (torch.build, torch.rocm_build, torch.cuda_build) == ("rocm", "7.13.60800-96e30b429c", None)
    assert torch.deep is not None and torch.deep.devices == ["AMD Instinct MI300X (gfx942:sramecc+:xnack-)"]
    assert s.nvidia is None and s.cuda is None
    assert s.cpu is not None and (s.cpu.model, s.cpu.threads) == ("AMD EPYC 9654 96-Core Processor", 384)
    assert s.system is not None and (s.system.glibc, s.system.kernel) == ("2.39", "6.2.0-25-generic")


def test_arch_warning_gives_compute_capability_and_arch_list(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-150733_rtx5090d_cu126_warning.txt")
    torch = torch_of(s)
    assert (torch.version, torch.cuda_build) == ("2.6.0+cu126", "12.6")
    assert torch.arch_list == ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
    assert s.nvidia is not None
    (gpu,) = s.nvidia.gpus or []
    assert (gpu.name, gpu.compute_capability) == ("NVIDIA GeForce RTX 5090 D", "12.0")
    assert s.cuda is None
    cut = cudnn_candidates(read_fixture("pytorch-150733_rtx5090d_cu126_warning.txt"))
    assert [lib.version for lib in cut] == ["9.8.0"]  # the cut-off "/usr/lib/x" line is no library

    h100 = snap(read_fixture, "pytorch-110153_h100_cu117_arch_warning.txt")
    assert h100.nvidia is not None and [g.compute_capability for g in h100.nvidia.gpus or []] == ["9.0"]
    assert "sm_90" not in (torch_of(h100).arch_list or []) and "sm_86" in (torch_of(h100).arch_list or [])


def test_eight_gpus_and_two_cudnn_majors(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "pytorch-150852_8x_h100_centos9.txt")
    assert s.nvidia is not None and s.nvidia.driver_version == "535.154.05"
    assert [(g.index, g.name) for g in s.nvidia.gpus or []] == [(i, "NVIDIA H100") for i in range(8)]
    assert s.cuda is not None and s.cuda.nvcc_version == "12.6.85"
    assert s.cuda.libraries is None  # a cu126 wheel loads its own cuDNN, not these:
    found = cudnn_candidates(read_fixture("pytorch-150852_8x_h100_centos9.txt"))
    assert sorted((lib.version or "", lib.path or "") for lib in found) == [
        ("8.8.0", "/usr/lib64/libcudnn.so.8.8.0"),
        ("9.6.0", "/usr/lib64/libcudnn.so.9.6.0"),
    ]
    assert s.system is not None and (s.system.distro, s.system.glibc) == ("CentOS Stream 9", "2.34")
    assert torch_of(s).version == "2.8.0.dev20250327+cu126"


def test_wsl2(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "vllm-9293_wsl2_rtx4070_laptop.txt")
    assert s.system is not None and s.system.container is not None and s.system.container.wsl is True
    assert s.system.kernel == "5.15.153.1-microsoft-standard-WSL2"
    assert s.nvidia is not None and s.nvidia.driver_version == "551.88"
    assert (torch_of(s).build, torch_of(s).cuda_build) == ("cuda", "12.1")


def test_linux_cpu_build_on_two_rtx3090(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "scale-mae-7_linux_cpu_build_2x_rtx3090.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build) == ("2.1.1", "cpu")
    assert s.nvidia is not None and len(s.nvidia.gpus or []) == 2
    assert s.system is not None and s.system.container is not None and s.system.container.wsl is False


def test_this_machine(read_fixture: Callable[[str], str]) -> None:
    s = snap(read_fixture, "local_debian_cpu_torch213.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build) == ("2.13.0+cpu", "cpu")
    assert s.nvidia is None  # no driver: GPU models and driver both "Could not collect"
    assert s.cuda is not None and s.cuda.nvcc_version == "13.0.88" and s.cuda.libraries is None
    assert s.cpu is not None
    assert (s.cpu.model, s.cpu.sockets, s.cpu.cores, s.cpu.threads, s.cpu.numa_nodes) == (
        "Intel(R) Xeon(R) Processor", 1, 2, 2, 1,
    )  # fmt: skip
    assert s.cpu.flags is not None and {"avx2", "avx512f", "amx_tile"} <= set(s.cpu.flags)
    assert "pdpe1gb" not in s.cpu.flags  # only the flags frameworks care about
    assert s.system is not None and s.system.distro == "Debian GNU/Linux 12 (bookworm)"


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _leaves(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


#: leaves the reader derives or names itself rather than copying from the text
_DERIVED = ("source", ".os", ".build", ".origin", ".installed", ".ok", ".name", ".distribution", ".error",
            ".compute_capability", ".cuda_build", ".wsl", ".mig_mode_current", ".arch", ".index", ".slices",
            ".gpu_available", ".cores", ".sockets")  # fmt: skip


@pytest.mark.parametrize("name", ALL)
def test_every_copied_fact_is_in_the_text(name: str, read_fixture: Callable[[str], str]) -> None:
    """Never invent: each string or number the reader copied appears in the paste."""
    text = read_fixture(name)
    data = snap(read_fixture, name).model_dump(mode="json", exclude_none=True)
    data.pop("paste", None)  # the reader's own account of the paste (kinds, error lines) is checked elsewhere
    leaves = [(p, v) for p, v in _leaves(data) if v not in ([], {}) and not p.endswith(_DERIVED)]
    assert leaves, "nothing was read"
    for path, value in leaves:
        shown = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        assert shown in text, f"{name}: {path}={value!r} is not in the text"


@pytest.mark.frameworks
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_live_collect_env_of_this_interpreter() -> None:
    """Run today's collect_env here and read it back: the format we parse is the current one."""
    from importlib.metadata import version

    out = subprocess.run(
        [sys.executable, "-m", "torch.utils.collect_env"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    s = load(out, "collect_env").snapshot
    torch = torch_of(s)
    assert torch.version == version("torch")
    assert s.system is not None and s.system.python is not None
    assert s.system.python.version == ".".join(map(str, sys.version_info[:3]))
    assert s.cpu is not None and s.cpu.model
