"""Fixtures for the NVIDIA probe: a fake NVML fed by recorded machines, and fake host trees."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# the helpers live next to this file under names no other test area uses
sys.path.insert(0, str(Path(__file__).resolve().parent))

from nvidia_captures import load_machine
from nvidia_fake_nvml import FakeNvml

from envcheck import _nvml
from envcheck.probes import ProbeContext


class Host:
    """A fake filesystem root with the /sys, /proc and /dev entries the NVIDIA probe reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for d in ("sys/bus/pci/devices", "sys/module", "proc/self", "dev", "bin"):
            (root / d).mkdir(parents=True, exist_ok=True)

    def write(self, path: str, text: str) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def pci(
        self, address: str, device: str, driver: str | None, vendor: str = "0x10de", cls: str = "0x030200"
    ) -> None:
        dev = self.root / "sys/bus/pci/devices" / address
        dev.mkdir(parents=True)
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "device").write_text(device + "\n")
        (dev / "class").write_text(cls + "\n")
        if driver:
            drv = self.root / "sys/bus/pci/drivers" / driver
            drv.mkdir(parents=True, exist_ok=True)
            (dev / "driver").symlink_to(drv)

    def nvidia_driver(self, version: str) -> None:
        """What a loaded proprietary module shows in /proc and /sys."""
        self.write(
            "/proc/driver/nvidia/version",
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Sun May 12 19:39:15 UTC 2024\n"
            "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n",
        )
        self.write("/sys/module/nvidia/version", version + "\n")
        self.write(
            "/proc/modules",
            "nvidia_uvm 4956160 0 - Live 0x0 (POE)\nnvidia 54104064 3 nvidia_uvm, Live 0x0 (POE)\n",
        )
        for node in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0"):
            self.write(f"/dev/{node}", "")
        self.write(
            "/proc/self/maps",
            "7f2a3c000000-7f2a3c200000 r-xp 00000000 08:01 1234567    "
            f"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{version}\n",
        )

    def process(self, pid: int, argv0: str, comm: str | None = None) -> None:
        self.write(f"/proc/{pid}/cmdline", argv0 + "\0--flag\0")
        self.write(f"/proc/{pid}/comm", (comm or Path(argv0).name)[:15] + "\n")

    def command(self, name: str, script: str) -> Path:
        """An executable on this host's PATH."""
        exe = self.write(f"/bin/{name}", "#!/bin/sh\n" + script + "\n")
        exe.chmod(0o755)
        return exe

    def ctx(self, timeout: float = 2.0) -> ProbeContext:
        return ProbeContext(root=self.root, env={"PATH": str(self.root / "bin")}, timeout=timeout)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[FakeNvml], FakeNvml]]:
    """Put a FakeNvml behind envcheck._nvml for one test."""

    def put(fake: FakeNvml) -> FakeNvml:
        monkeypatch.setattr(_nvml._state, "backend", fake)
        return fake

    yield put


@pytest.fixture
def machine(install: Callable[[FakeNvml], FakeNvml]) -> Callable[..., FakeNvml]:
    """``machine("capture", topology="topo.txt")``: a FakeNvml answering as that recorded machine."""

    def make(capture: str, topology: str | None = None) -> FakeNvml:
        return install(FakeNvml(load_machine(capture, topology)))

    return make
