"""Broken machines: unreadable, missing, misplaced and malformed files only blank their own fields."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envcheck.models import Section
from envcheck.probes import ProbeContext, cpu, memory, system, tpu

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "host"
PROBES: dict[str, Callable[[ProbeContext], Section]] = {
    "system": system.probe,
    "cpu": cpu.probe,
    "memory": memory.probe,
    "disk": memory.probe_disk,
    "tpu": tpu.probe,
}


def copy_tree(name: str, dest: Path) -> Path:
    root = dest / name
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    return root


def files_of(name: str) -> list[str]:
    base = FIXTURES / name
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and not p.is_symlink())


def replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "surprise").write_text("a directory where a file should be\n")


@pytest.mark.parametrize("rel", files_of("local-kvm-xeon") + files_of("tpu-v4-8-vm"))
def test_any_file_replaced_by_a_directory_never_raises(tmp_path: Path, rel: str) -> None:
    name = "local-kvm-xeon" if (FIXTURES / "local-kvm-xeon" / rel).exists() else "tpu-v4-8-vm"
    root = copy_tree(name, tmp_path)
    replace_with_directory(root / rel)
    ctx = ProbeContext(root=root, env={})
    for probe_name, probe in PROBES.items():
        section = probe(ctx)
        assert isinstance(section, Section), probe_name


def test_cpuinfo_as_a_directory_is_a_note_not_a_crash(tmp_path: Path) -> None:
    root = copy_tree("local-kvm-xeon", tmp_path)
    replace_with_directory(root / "proc/cpuinfo")
    info = cpu.probe(ProbeContext(root=root, env={}))
    assert info.error == "cannot read /proc/cpuinfo: Is a directory"
    assert (info.model, info.flags, info.mhz_current) == (None, None, None)
    # sysfs still answers what it can: topology and NUMA do not need cpuinfo
    assert (info.sockets, info.cores, info.threads, info.numa_nodes) == (1, 2, 2, 1)
    assert info.arch == "x86_64"  # from /proc/sys/kernel/arch


def test_meminfo_as_a_directory_keeps_shm_and_cgroup(tmp_path: Path) -> None:
    root = copy_tree("docker-cgroup2-shm64m", tmp_path)
    (root / "proc/meminfo").mkdir()
    info = memory.probe(ProbeContext(root=root, env={}))
    assert info.error == "cannot read /proc/meminfo: Is a directory"
    assert info.total_bytes is None and info.available_bytes is None
    assert info.shm_total_bytes == 64 * 1024 * 1024
    assert info.cgroup_limit_bytes == 4 * 1024**3


def test_malformed_contents(tmp_path: Path) -> None:
    root = copy_tree("local-kvm-xeon", tmp_path)
    (root / "proc/cpuinfo").write_bytes(b"\xff\xfe garbage without colons\n\x00\x01\n")
    (root / "proc/meminfo").write_text("MemTotal: lots kB\nMemFree 12 kB\n")
    (root / "proc/uptime").write_text("not-a-number\n")
    (root / "sys/devices/system/node/online").write_text("zero-one\n")
    (root / "sys/devices/system/node/node0").mkdir(exist_ok=True)
    (root / "proc/self/status").write_text("Cpus_allowed_list:\tx-y\n")
    (root / "proc/self/mountinfo").write_text("this is not mountinfo\n\n - \n")
    (root / "etc/os-release").write_text("=\n\x00\x00\n")
    (root / "sys/fs/cgroup/cpu/cpu.cfs_quota_us").write_text("fifty\n")
    ctx = ProbeContext(root=root, env={})
    c = cpu.probe(ctx)
    assert c.error == "/proc/cpuinfo has no processor entries"
    assert (c.model, c.flags, c.mhz_current) == (None, None, None)
    assert (c.threads, c.cores) == (2, 2)  # sysfs topology still answers
    assert c.numa_nodes == 1  # malformed node/online: counted from the node0 directory instead
    m = memory.probe(ctx)
    assert m.error == "/proc/meminfo has no MemTotal line" and m.total_bytes is None
    assert m.shm_total_bytes is None  # no usable mountinfo line for /dev/shm
    s = system.probe(ctx)
    assert (s.uptime_s, s.distro) == (None, None)
    assert s.kernel == "6.18.44-fc-v669"  # its own file is intact


def test_tmpfs_size_units_and_odd_cgroup_values(tmp_path: Path) -> None:
    root = tmp_path / "odd"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mountinfo").write_text(
        "24 1 0:6 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
        "25 24 0:23 / /dev/shm rw,relatime - tmpfs shm rw,size=2g,mode=1777\n"
    )
    (root / "proc/self/cgroup").write_text("0::/\n")
    (root / "sys/fs/cgroup").mkdir(parents=True)
    (root / "sys/fs/cgroup/memory.max").write_text("max\n")
    (root / "sys/fs/cgroup/cpu.max").write_text("\n")
    ctx = ProbeContext(root=root, env={})
    info = memory.probe(ctx)
    assert info.shm_total_bytes == 2 * 1024**3
    assert info.cgroup_limit_bytes is None
    assert memory.cgroup_cpu_quota(ctx) is None


def test_empty_root_gives_empty_sections(tmp_path: Path) -> None:
    ctx = ProbeContext(root=tmp_path, env={}, cwd=tmp_path / "gone", home=tmp_path)
    c = cpu.probe(ctx)
    assert c.error == "cannot read /proc/cpuinfo: No such file or directory"
    assert (c.model, c.threads, c.numa_nodes, c.usable_cpus) == (None, None, None, None)
    m = memory.probe(ctx)
    assert m.total_bytes is None and m.cgroup_limit_bytes is None and m.shm_total_bytes is None
    s = system.probe(ctx)
    assert (s.kernel, s.distro, s.hostname, s.arch, s.uptime_s) == (None, None, None, None, None)
    assert s.container is not None and s.container.runtime is None
    t = tpu.probe(ctx)
    assert (t.pci_devices, t.accel_nodes, t.holders, t.error) == (None, [], None, None)
    d = memory.probe_disk(ctx)
    assert [(u.label, u.error) for u in d.disks] == [("cwd", "No such file or directory"), ("home", None)]


# --------------------------------------------------------------------------- chmod 000, as a real user


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A copy of the recorded VM in a directory an unprivileged user can walk (pytest's tmp is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="envcheck-host-"))
    try:
        root = copy_tree("local-kvm-xeon", base)
        for p in [base, *root.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() else 0))
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_unprivileged(probe: Callable[[ProbeContext], Section], ctx: ProbeContext) -> dict[str, object]:
    """The probe's section as dict, run by a non-root user (forked and setuid(nobody) when we are root)."""
    if os.geteuid() != 0:
        return probe(ctx).model_dump()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, run the probe, send the JSON back, never return into pytest
        code = 0
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_fd, probe(ctx).model_dump_json().encode())
        except BaseException as exc:
            os.write(write_fd, json.dumps({"child_exception": repr(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    return result


def test_chmod_000_cpuinfo_and_meminfo(shared_tree: Path) -> None:
    (shared_tree / "proc/cpuinfo").chmod(0)
    (shared_tree / "proc/meminfo").chmod(0)
    ctx = ProbeContext(root=shared_tree, env={})
    c = run_unprivileged(cpu.probe, ctx)
    assert c["error"] == "cannot read /proc/cpuinfo: Permission denied"
    assert (c["model"], c["flags"], c["sockets"], c["numa_nodes"]) == (None, None, 1, 1)
    m = run_unprivileged(memory.probe, ctx)
    assert m["error"] == "cannot read /proc/meminfo: Permission denied"
    assert m["total_bytes"] is None and m["shm_total_bytes"] == 24684084 * 1024


def test_chmod_000_cgroup_and_sysfs(shared_tree: Path) -> None:
    (shared_tree / "sys/fs/cgroup/memory").chmod(0)
    (shared_tree / "sys/devices/system/cpu").chmod(0)
    (shared_tree / "sys/bus/pci/devices").chmod(0)
    ctx = ProbeContext(root=shared_tree, env={})
    m = run_unprivileged(memory.probe, ctx)
    assert m["error"] is None and m["cgroup_limit_bytes"] is None and m["total_bytes"] == 24684084 * 1024
    c = run_unprivileged(cpu.probe, ctx)
    assert (c["threads"], c["cores"], c["model"]) == (2, 2, "Intel(R) Xeon(R) Processor")  # cpuinfo suffices
    t = run_unprivileged(tpu.probe, ctx)
    assert t["pci_devices"] is None and t["error"] == "cannot list PCI devices: Permission denied"


def test_holders_of_other_users_are_marked_incomplete(shared_tree: Path) -> None:
    tpu_root = shared_tree.parent / "tpu"
    shutil.copytree(FIXTURES / "tpu-v4-8-vm", tpu_root, symlinks=True)
    for p in [tpu_root, *tpu_root.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() else 0))
    (tpu_root / "proc/4242/fd").chmod(0o700)  # another user's process, as /proc shows it to us
    t = run_unprivileged(tpu.probe, ProbeContext(root=tpu_root, env={}))
    assert t["holders"] == [] and t["holders_complete"] is False
