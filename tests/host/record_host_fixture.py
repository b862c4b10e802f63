"""Record the /proc, /sys, /dev and /etc files the host probes read into a fixture tree.

Usage: ``python tests/host/record_host_fixture.py tests/fixtures/host/<name>`` on the machine to
record. Only the small text files the system, cpu, memory and tpu probes read are copied (device
nodes and marker files become empty files, symlinks stay symlinks), so a tree is a few kB and
holds nothing but what the probes would see. Review it for private data before committing.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

from envcheck.probes import ProbeContext
from envcheck.probes.memory import cgroup_dirs

FILES = (
    "/etc/os-release",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/uptime",
    "/proc/self/mountinfo",
    "/proc/self/cgroup",
    "/proc/self/status",
    "/proc/1/cgroup",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/arch",
    "/sys/devices/system/node/online",
)
GLOBS = (
    "/sys/devices/system/cpu/cpu[0-9]*/online",
    "/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id",
    "/sys/devices/system/cpu/cpu[0-9]*/topology/core_id",
    "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq",
    "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq",
    "/sys/bus/pci/devices/*/vendor",
    "/sys/bus/pci/devices/*/device",
    "/sys/bus/pci/devices/*/class",
)
#: presence is the fact: recorded as empty files
MARKERS = ("/.dockerenv", "/run/.containerenv", "/tmp/libtpu_lockfile", "/dev/accel[0-9]*", "/dev/vfio/*")
CGROUP_FILES = ("memory.max", "memory.limit_in_bytes", "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us")


def _copy(src: str, dest_root: Path) -> None:
    dest = dest_root / src.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        dest.write_bytes(Path(src).read_bytes())
    except OSError as exc:
        print(f"skip {src}: {exc.strerror}", file=sys.stderr)


def record(dest_root: Path) -> None:
    """Copy this machine's probe inputs under ``dest_root``."""
    for path in FILES:
        _copy(path, dest_root)
    for pattern in GLOBS:
        for path in glob.glob(pattern):
            _copy(path, dest_root)
    for dev in glob.glob("/sys/bus/pci/devices/*"):
        link = Path(dev) / "driver"
        if link.is_symlink():
            target = dest_root / dev.lstrip("/") / "driver"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(link))
    for pattern in MARKERS:
        for path in glob.glob(pattern):
            marker = dest_root / path.lstrip("/")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    for node in glob.glob("/sys/devices/system/node/node[0-9]*"):
        (dest_root / node.lstrip("/")).mkdir(parents=True, exist_ok=True)
    if os.path.isdir("/var/run/secrets/kubernetes.io"):
        (dest_root / "var/run/secrets/kubernetes.io").mkdir(parents=True, exist_ok=True)
    live = ProbeContext()
    for controller in ("memory", "cpu"):
        found = cgroup_dirs(live, controller)
        for d in found[1] if found else []:
            for name in CGROUP_FILES:
                if (d / name).is_file():
                    _copy(str(d / name), dest_root)
    shutil.rmtree(dest_root / "proc/self/fd", ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: record_host_fixture.py DEST_DIR")
    record(Path(sys.argv[1]))
