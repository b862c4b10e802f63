"""The layers below NVML (PCI, kernel module, device nodes) on fake trees, and on this machine."""

from __future__ import annotations

import ctypes.util
import glob
import subprocess
import sys
from pathlib import Path

import pynvml
import pytest
from nvidia_fake_nvml import FakeNvml

from envcheck.models import PciDevice
from envcheck.probes import ProbeContext, nvidia


def test_pci_devices_with_their_drivers(host, install):
    host.pci("0000:01:00.0", "0x1180", driver="nouveau")
    host.pci("0000:01:00.1", "0x0e0a", driver="snd_hda_intel", cls="0x040300")
    host.pci("0000:41:00.0", "0x2330", driver="nvidia")
    host.pci("0000:81:00.0", "0x20b5", driver="vfio-pci")
    host.pci("0000:00:1f.0", "0x1234", driver="ahci", vendor="0x8086")
    host.write("/proc/modules", "nouveau 2863104 1 - Live 0x0\nnvidia 54104064 0 - Live 0x0 (POE)\n")
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED))

    info = nvidia.probe(host.ctx())

    assert info.pci_devices == [
        PciDevice(
            address="0000:01:00.0",
            vendor_id="0x10de",
            device_id="0x1180",
            class_id="0x030200",
            driver="nouveau",
        ),
        PciDevice(
            address="0000:01:00.1",
            vendor_id="0x10de",
            device_id="0x0e0a",
            class_id="0x040300",
            driver="snd_hda_intel",
        ),
        PciDevice(
            address="0000:41:00.0",
            vendor_id="0x10de",
            device_id="0x2330",
            class_id="0x030200",
            driver="nvidia",
        ),
        PciDevice(
            address="0000:81:00.0",
            vendor_id="0x10de",
            device_id="0x20b5",
            class_id="0x030200",
            driver="vfio-pci",
        ),
    ]
    assert info.kernel_module is not None
    assert (info.kernel_module.loaded, info.kernel_module.nouveau_loaded) == (True, True)


def test_kernel_module_version_and_device_nodes(host, install):
    host.nvidia_driver("550.54.14")
    for node in ("nvidia10", "nvidia2", "nvidia-caps/nvidia-cap1", "nvidia-modeset"):
        host.write(f"/dev/{node}", "")
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_UNKNOWN))

    info = nvidia.probe(host.ctx())

    module = info.kernel_module
    assert module is not None
    assert (module.loaded, module.version, module.nouveau_loaded) == (True, "550.54.14", False)
    assert (
        module.banner
        == "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Sun May 12 19:39:15 UTC 2024"
    )
    assert info.device_nodes == [
        "/dev/nvidia0", "/dev/nvidia2", "/dev/nvidia10", "/dev/nvidia-caps", "/dev/nvidia-modeset",
        "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidiactl",
    ]  # fmt: skip
    assert info.dxg is False


def test_open_kernel_module_banner_without_sysfs_version(host, install):
    host.write(
        "/proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Thu Feb 27 18:12:40 UTC 2025\n",
    )
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_UNKNOWN))

    module = nvidia.probe(host.ctx()).kernel_module

    assert module is not None and (module.loaded, module.version) == (True, "570.124.06")


def test_wsl2_has_dxg_and_no_nvidia_nodes(host, install):
    host.write("/dev/dxg", "")
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))

    info = nvidia.probe(host.ctx())

    assert (info.device_nodes, info.dxg) == ([], True)
    assert info.kernel_module is not None and info.kernel_module.loaded is False  # /sys/module says so


def test_unreadable_proc_and_sys_files_become_reasons(host, install):
    # a directory where a file should be fails to read with a real OSError, even for root
    (host.root / "proc/driver/nvidia/version").mkdir(parents=True)
    (host.root / "proc/modules").symlink_to(host.root / "proc/modules")  # a symlink loop
    (host.root / "sys/module").rmdir()
    (host.root / "sys/bus/pci/devices").rmdir()
    (host.root / "dev").rmdir()
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))

    info = nvidia.probe(host.ctx())

    gaps = info.unavailable or {}
    assert gaps["kernel_module"] == f"cannot read {host.root}/proc/driver/nvidia/version: Is a directory"
    assert gaps["pci"] == "cannot list /sys/bus/pci/devices: No such file or directory"
    assert gaps["device_nodes"] == "cannot list /dev: No such file or directory"
    assert info.pci_devices is None and info.device_nodes is None and info.dxg is None
    assert info.kernel_module is not None and info.kernel_module.loaded is None  # cannot tell
    assert info.nvml is not None and info.nvml.code == 12  # the NVML layer still ran


def _machine_has_nvidia() -> bool:
    vendors = (Path(p).read_text().strip() for p in glob.glob("/sys/bus/pci/devices/*/vendor"))
    return any(v == "0x10de" for v in vendors) or ctypes.util.find_library("nvidia-ml") is not None


@pytest.mark.skipif(_machine_has_nvidia(), reason="describes a machine without NVIDIA hardware or driver")
def test_this_machine_no_gpu_no_module_nvml_library_not_found():
    info = nvidia.probe(ProbeContext())

    assert info.error is None
    assert info.pci_devices == []
    assert info.kernel_module is not None
    assert (info.kernel_module.loaded, info.kernel_module.version) == (False, None)
    assert info.device_nodes == []
    assert info.nvml is not None
    assert (info.nvml.ok, info.nvml.code, info.nvml.name) == (False, 12, "NVML_ERROR_LIBRARY_NOT_FOUND")
    assert info.nvml.message is not None and "libnvidia-ml.so.1" in info.nvml.message
    assert info.gpus is None and info.nvml_library is None


@pytest.mark.skipif(_machine_has_nvidia(), reason="describes a machine without the NVML library")
def test_missing_library_is_known_without_importing_pynvml():
    code = (
        "import sys\n"
        "from envcheck.probes import ProbeContext, nvidia\n"
        "info = nvidia.probe(ProbeContext())\n"
        "print(info.nvml.code, 'pynvml' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)

    assert out.stdout.split() == ["12", "False"]


def test_an_unexpected_error_in_one_layer_costs_only_that_layer(host, install):
    host.pci("0000:41:00.0", "0x2330", driver="nvidia")
    (host.root / "sys/bus/pci/devices/0000:41:00.0/vendor").write_bytes(b"\xff\xfe garbage")  # not UTF-8
    host.nvidia_driver("535.183.01")
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH))

    info = nvidia.probe(host.ctx())

    assert info.pci_devices is None
    assert (info.unavailable or {})["pci"].startswith("UnicodeDecodeError:")
    assert info.kernel_module is not None and info.kernel_module.version == "535.183.01"
    assert info.device_nodes is not None and "/dev/nvidia0" in info.device_nodes
    assert info.nvml is not None and info.nvml.code == 18
