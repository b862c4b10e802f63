"""Host memory, /dev/shm, the cgroup limit, and free disk space: what a data loader runs out of first.

Read straight from /proc and /sys under ``ctx.root`` (fast, and testable on recorded trees).
The cgroup helpers here are shared with the CPU probe, which needs the same hierarchy walk for
``cpu.max``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from envcheck.models import DiskInfo, DiskUsage, MemoryInfo

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: cgroup v1 writes "no limit" as LONG_MAX rounded down to a page (9223372036854771712)
_UNLIMITED = 1 << 62


def read_text(path: Path) -> str:
    """The file's text; raises OSError (missing, unreadable, a directory). Bad bytes never raise."""
    return path.read_text(encoding="utf-8", errors="replace")


def why(exc: OSError) -> str:
    """A short reason for a note: "Permission denied", "Is a directory"."""
    return exc.strerror or type(exc).__name__


# --------------------------------------------------------------------------- mounts and cgroups


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    root: str
    mountpoint: str
    fstype: str
    options: frozenset[str]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040)
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts(ctx: ProbeContext) -> list[Mount]:
    """Mounts of this process; empty when /proc/self/mountinfo cannot be read. Malformed lines are skipped."""
    try:
        text = read_text(ctx.path("/proc/self/mountinfo"))
    except OSError:
        return []
    found: list[Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        head, tail = left.split(), right.split()
        if not sep or len(head) < 5 or len(tail) < 1:
            continue
        opts = set(head[5].split(",")) if len(head) > 5 else set()
        if len(tail) > 2:
            opts |= set(tail[2].split(","))
        found.append(Mount(_unescape(head[3]), _unescape(head[4]), tail[0], frozenset(opts)))
    return found


def _own_cgroups(ctx: ProbeContext) -> list[tuple[str, str, str]]:
    try:
        text = read_text(ctx.path("/proc/self/cgroup"))
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            rows.append((parts[0], parts[1], parts[2]))
    return rows


def cgroup_dirs(ctx: ProbeContext, controller: str) -> tuple[int, list[Path]] | None:
    """(cgroup version, this process's cgroup dirs for ``controller`` from leaf up to the mount root).

    A limit set on any ancestor applies too, so callers take the tightest value along the list.
    v1 is used when a v1 hierarchy carries the controller (hybrid hosts), v2 otherwise. Works in
    containers whether or not they have their own cgroup namespace. None when nothing is found.
    """
    table = mounts(ctx)
    own = _own_cgroups(ctx)
    v1_path = next((p for _, ctrls, p in own if controller in ctrls.split(",")), None)
    v1_mount = next((m for m in table if m.fstype == "cgroup" and controller in m.options), None)
    if v1_path is not None:
        if v1_mount is None:  # no mountinfo: the usual place
            return 1, _chain(ctx, "/", f"/sys/fs/cgroup/{controller}", v1_path)
        return 1, _chain(ctx, v1_mount.root, v1_mount.mountpoint, v1_path)
    v2_path = next((p for h, ctrls, p in own if h == "0" and ctrls == ""), None)
    v2_mount = next((m for m in table if m.fstype == "cgroup2"), None)
    if v2_path is None and v2_mount is None:
        return None
    mount_root, mountpoint = (v2_mount.root, v2_mount.mountpoint) if v2_mount else ("/", "/sys/fs/cgroup")
    return 2, _chain(ctx, mount_root, mountpoint, v2_path or "/")


def _chain(ctx: ProbeContext, mount_root: str, mountpoint: str, cgroup_path: str) -> list[Path]:
    base = ctx.path(mountpoint)
    rel = cgroup_path
    if mount_root != "/" and (rel == mount_root or rel.startswith(mount_root.rstrip("/") + "/")):
        rel = rel[len(mount_root) :]
    leaf = base / rel.lstrip("/")
    if not os.path.isdir(leaf):  # a namespaced or foreign view: the mount itself is our cgroup
        leaf = base
    dirs = [leaf]
    rel_parts = PurePosixPath(leaf.relative_to(base)).parts if leaf != base else ()
    for i in range(len(rel_parts) - 1, -1, -1):
        dirs.append(base.joinpath(*rel_parts[:i]))
    return dirs


def _int_or_none(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def cgroup_memory_limit(ctx: ProbeContext) -> int | None:
    """The tightest cgroup memory limit on this process in bytes, or None when unlimited or unknown."""
    found = cgroup_dirs(ctx, "memory")
    if found is None:
        return None
    version, dirs = found
    name = "memory.max" if version == 2 else "memory.limit_in_bytes"
    limits = []
    for d in dirs:
        try:
            value = _int_or_none(read_text(d / name))  # "max" (v2 unlimited) gives None
        except OSError:
            continue
        if value is not None and 0 < value < _UNLIMITED:
            limits.append(value)
    return min(limits) if limits else None


def cgroup_cpu_quota(ctx: ProbeContext) -> float | None:
    """CPUs' worth of time the cgroup allows (quota / period, tightest along the tree), None if unlimited."""
    found = cgroup_dirs(ctx, "cpu")
    if found is None:
        return None
    version, dirs = found
    quotas = []
    for d in dirs:
        try:
            if version == 2:
                fields = read_text(d / "cpu.max").split()
                quota = _int_or_none(fields[0]) if fields else None
                period = _int_or_none(fields[1]) if len(fields) > 1 else 100_000
            else:
                quota = _int_or_none(read_text(d / "cpu.cfs_quota_us"))
                period = _int_or_none(read_text(d / "cpu.cfs_period_us"))
        except OSError:
            continue
        if quota is not None and period and quota > 0:
            quotas.append(quota / period)
    return min(quotas) if quotas else None


# --------------------------------------------------------------------------- memory


def _meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes per key ("MemTotal: 24684084 kB" -> 25276502016)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if not fields or not fields[0].isdigit():
            continue
        unit = 1024 if len(fields) > 1 and fields[1].lower() == "kb" else 1
        values[key.strip()] = int(fields[0]) * unit
    return values


_SIZE = re.compile(r"^(\d+)([kmgt]?)$", re.IGNORECASE)


def _tmpfs_size(option: str) -> int | None:
    m = _SIZE.match(option)
    if not m:
        return None
    return int(m.group(1)) * 1024 ** "_kmgt".index((m.group(2) or "_").lower())


def _shm(ctx: ProbeContext, ram_total: int | None) -> tuple[int | None, int | None]:
    """(/dev/shm total, free) in bytes.

    statvfs when /dev/shm is a mount point here (the live machine); otherwise the size= option
    of its mountinfo line (recorded trees). A tmpfs mounted without size= gets the kernel's
    default of half the RAM, and the kernel then omits size= from mountinfo.
    """
    path = ctx.path("/dev/shm")
    if os.path.ismount(path):
        try:
            st = os.statvfs(path)
            return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        except OSError:
            pass
    entry = next((m for m in reversed(mounts(ctx)) if m.mountpoint == "/dev/shm"), None)
    if entry is not None:
        sizes = [o.split("=", 1)[1] for o in entry.options if o.startswith("size=")]
        if sizes:
            return _tmpfs_size(sizes[0]), None
        if entry.fstype == "tmpfs" and ram_total is not None:
            return ram_total // 2, None
        return None, None
    if os.path.isdir(path) and ctx.root == Path("/"):  # no mount: shm lives on the root filesystem
        try:
            st = os.statvfs(path)
            return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        except OSError:
            pass
    return None, None


def probe(ctx: ProbeContext) -> MemoryInfo:
    """RAM and swap from /proc/meminfo, /dev/shm size and free space, the cgroup memory limit."""
    notes: list[str] = []
    info: dict[str, int] = {}
    try:
        info = _meminfo(read_text(ctx.path("/proc/meminfo")))
        if "MemTotal" not in info:
            notes.append("/proc/meminfo has no MemTotal line")
    except OSError as exc:
        notes.append(f"cannot read /proc/meminfo: {why(exc)}")
    total = info.get("MemTotal")
    available = info.get("MemAvailable")
    if available is None and "MemFree" in info:  # kernels before 3.14 have no MemAvailable
        available = info["MemFree"] + info.get("Buffers", 0) + info.get("Cached", 0)
    swap_total = info.get("SwapTotal")
    swap_free = info.get("SwapFree")
    swap_used = swap_total - swap_free if swap_total is not None and swap_free is not None else None
    shm_total, shm_free = _shm(ctx, total)
    return MemoryInfo(
        total_bytes=total,
        available_bytes=available,
        swap_total_bytes=swap_total,
        swap_used_bytes=swap_used,
        shm_total_bytes=shm_total,
        shm_free_bytes=shm_free,
        cgroup_limit_bytes=cgroup_memory_limit(ctx),
        error="; ".join(notes) or None,
    )


# --------------------------------------------------------------------------- disk


def _usage(label: str, path: Path) -> tuple[DiskUsage, int | None]:
    try:
        st = os.statvfs(path)
        dev = os.stat(path).st_dev
    except OSError as exc:
        return DiskUsage(label=label, path=str(path), error=why(exc)), None
    usage = DiskUsage(
        label=label,
        path=str(path),
        total_bytes=st.f_blocks * st.f_frsize,
        free_bytes=st.f_bavail * st.f_frsize,  # what an unprivileged user can still write
    )
    return usage, dev


def probe_disk(ctx: ProbeContext) -> DiskInfo:
    """Free space where the job runs (cwd) and where caches land (home); one row on a shared filesystem."""
    cwd, cwd_dev = _usage("cwd", ctx.cwd)
    home, home_dev = _usage("home", ctx.home)
    if cwd_dev is not None and cwd_dev == home_dev:
        return DiskInfo(disks=[cwd.model_copy(update={"label": "cwd, home"})])
    return DiskInfo(disks=[cwd, home])
