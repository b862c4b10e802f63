"""The host probes on the machine the tests run on, checked against independent sources."""

from __future__ import annotations

import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cpuinfo
import psutil
import pytest

from envcheck.probes import ProbeContext, cpu, memory, system, tpu

LIVE = ProbeContext()


def test_cpu_matches_os_and_py_cpuinfo() -> None:
    info = cpu.probe(LIVE)
    assert info.error is None
    assert info.threads == os.cpu_count() == psutil.cpu_count(logical=True)
    assert info.cores == psutil.cpu_count(logical=False)
    assert info.arch == platform.machine()
    reference = cpuinfo.get_cpu_info()  # py-cpuinfo: its own /proc/cpuinfo and cpuid reading
    assert info.model == reference["brand_raw"]
    assert info.flags is not None and set(info.flags) <= set(reference["flags"])
    affinity = len(os.sched_getaffinity(0))
    expected = min(affinity, math.ceil(info.cgroup_cpu_quota)) if info.cgroup_cpu_quota else affinity
    assert info.usable_cpus == expected
    nodes = [p for p in Path("/sys/devices/system/node").glob("node[0-9]*")]
    assert info.numa_nodes == (len(nodes) or None)


def test_memory_matches_psutil() -> None:
    info = memory.probe(LIVE)
    assert info.error is None
    assert info.total_bytes == psutil.virtual_memory().total
    assert info.available_bytes is not None and info.total_bytes is not None
    assert 0 < info.available_bytes <= info.total_bytes
    assert info.swap_total_bytes == psutil.swap_memory().total
    assert info.shm_total_bytes == shutil.disk_usage("/dev/shm").total


def test_disk_matches_shutil_and_dedupes(tmp_path: Path) -> None:
    same = memory.probe_disk(ProbeContext(cwd=tmp_path, home=tmp_path.parent))
    assert [d.label for d in same.disks] == ["cwd, home"]
    usage = shutil.disk_usage(tmp_path)
    (row,) = same.disks
    assert row.total_bytes == usage.total
    assert row.free_bytes is not None and abs(row.free_bytes - usage.free) < 64 * 1024**2
    other = memory.probe_disk(ProbeContext(cwd=tmp_path, home=Path("/dev/shm")))  # tmpfs: another filesystem
    assert [d.label for d in other.disks] == ["cwd", "home"]
    assert other.disks[1].total_bytes == shutil.disk_usage("/dev/shm").total


def test_system_matches_platform() -> None:
    info = system.probe(LIVE)
    assert info.error is None
    assert info.os == platform.system()
    assert info.kernel == platform.release()
    assert info.arch == platform.machine()
    assert info.hostname == socket.gethostname()
    lib, version = platform.libc_ver()
    assert info.glibc == (version if lib == "glibc" else None)
    assert info.uptime_s is not None and info.uptime_s > 0
    assert info.python is not None
    assert (info.python.version, info.python.executable) == (platform.python_version(), sys.executable)
    in_venv = sys.prefix != sys.base_prefix
    assert (info.python.kind in {"venv", "uv", "virtualenv"}) == in_venv
    import pip

    assert info.python.pip_version == pip.__version__
    assert info.container is not None
    assert ("/.dockerenv" in info.container.markers) == os.path.exists("/.dockerenv")


def test_other_interpreter_is_asked_in_a_child() -> None:
    other = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if other is None or os.path.samefile(other, sys.executable):
        pytest.skip("no second interpreter on this machine")
    env, note = system.python_env(ProbeContext(python=other, env={}))
    assert note is None
    out = subprocess.run([other, "-c", "import sys, platform; print(platform.python_version(), sys.prefix)"],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert (env.version, env.prefix) == (out[0], out[1])
    assert env.kind in {"system", "conda", "venv", "uv", "virtualenv"}


def test_broken_and_hanging_interpreters_become_notes(tmp_path: Path) -> None:
    env, note = system.python_env(ProbeContext(python=str(tmp_path / "no-python"), env={}))
    assert env.version is None and note is not None and "no-python" in note
    hang = tmp_path / "hang-python"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    started = time.monotonic()
    env, note = system.python_env(ProbeContext(python=str(hang), env={}, timeout=0.5))
    assert env.version is None and note is not None and "timed out" in note
    assert time.monotonic() - started < 10


def test_tpu_probe_sees_no_google_device_here() -> None:
    info = tpu.probe(LIVE)
    google = [p for p in Path("/sys/bus/pci/devices").glob("*/vendor") if p.read_text().strip() == "0x1ae0"]
    assert info.error is None
    assert info.pci_devices == [] if not google else info.pci_devices is not None
    assert info.accel_nodes == sorted(str(p) for p in Path("/dev").glob("accel[0-9]*"))


def test_find_holders_on_the_real_proc(tmp_path: Path) -> None:
    """A real child holding a file open is found by scanning the real /proc, with its command line."""
    node = tmp_path / "accel9"
    node.write_text("")
    child = subprocess.Popen(["sleep", "30"], stdin=node.open("rb"))  # fd 0 of the child is the "device"
    try:
        deadline = time.monotonic() + 5
        holders: list = []
        while time.monotonic() < deadline:
            holders, _ = tpu.find_holders(LIVE, [str(node)])
            if any(h.pid == child.pid for h in holders):
                break
            time.sleep(0.05)
        mine = [h for h in holders if h.pid == child.pid]
        assert [(h.device, h.command) for h in mine] == [(str(node), "sleep 30")]
    finally:
        child.kill()
        child.wait()
