"""The host probes on /proc and /sys trees of real machines (provenance: tests/fixtures/host/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envcheck.probes import ProbeContext, cpu, memory, system, tpu

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "host"
KIB = 1024


def ctx_for(name: str, env: dict[str, str] | None = None) -> ProbeContext:
    return ProbeContext(root=FIXTURES / name, env=env or {})


def copy_tree(name: str, dest: Path) -> Path:
    """A writable copy of a fixture tree (symlinks kept as symlinks)."""
    root = dest / name
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    return root


# --------------------------------------------------------------------------- this machine, recorded


def test_local_vm_cpu() -> None:
    info = cpu.probe(ctx_for("local-kvm-xeon"))
    assert info.error is None
    assert (info.model, info.vendor, info.arch) == ("Intel(R) Xeon(R) Processor", "GenuineIntel", "x86_64")
    assert (info.sockets, info.cores, info.threads) == (1, 2, 2)
    assert info.mhz_current == 2600.0 and info.mhz_max is None  # no cpufreq in this VM
    assert info.flags is not None
    wanted = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8"}
    assert wanted <= set(info.flags)
    assert info.numa_nodes == 1
    # cfs_quota_us is -1 (unlimited): usable CPUs are the affinity list of the recorded process
    assert (info.usable_cpus, info.cgroup_cpu_quota) == (2, None)


def test_local_vm_memory_and_cgroup_v1() -> None:
    info = memory.probe(ctx_for("local-kvm-xeon"))
    assert info.error is None
    assert info.total_bytes == 24684084 * KIB
    assert info.available_bytes == 24232736 * KIB
    assert (info.swap_total_bytes, info.swap_used_bytes) == (0, 0)
    assert info.shm_total_bytes == 24684084 * KIB  # mountinfo size=24684084k
    assert info.shm_free_bytes is None  # a recorded tree has no live statvfs
    # memory.limit_in_bytes is LONG_MAX rounded to a page all the way up: no limit
    assert info.cgroup_limit_bytes is None


def test_local_vm_system() -> None:
    info = system.probe(ctx_for("local-kvm-xeon"))
    assert info.distro == "Debian GNU/Linux 12 (bookworm)"
    assert (info.kernel, info.arch, info.hostname) == ("6.18.44-fc-v669", "x86_64", "vm")
    assert info.uptime_s == 539.5
    assert info.container is not None
    assert info.container.runtime == "docker"
    assert info.container.markers == ["/.dockerenv"]
    assert (info.container.kubernetes, info.container.wsl) == (False, False)


def test_local_vm_has_no_tpu() -> None:
    info = tpu.probe(ctx_for("local-kvm-xeon"))
    assert info.pci_devices == [] and info.accel_nodes == [] and info.vfio_nodes == []
    assert info.generation is None and info.lockfile is None
    assert info.holders is None  # nothing to hold: /proc is not scanned at all


# --------------------------------------------------------------------------- other machines


def test_two_socket_sapphire_rapids() -> None:
    info = cpu.probe(ctx_for("xeon-8462y-2s-amx"))
    assert info.model == "Intel(R) Xeon(R) Platinum 8462Y+"
    assert (info.sockets, info.cores, info.threads, info.numa_nodes) == (2, 64, 128, 2)
    assert info.mhz_max == 4100.0 and info.mhz_current is None
    assert info.flags == [
        "sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni", "avx512f", "avx512cd", "avx512bw", "avx512dq",
        "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    ]  # fmt: skip


def test_epyc_runner_cpu_memory_system() -> None:
    ctx = ctx_for("epyc-7763-gha-runner")
    c = cpu.probe(ctx)
    assert (c.model, c.vendor, c.arch) == ("AMD EPYC 7763 64-Core Processor", "AuthenticAMD", "x86_64")
    assert (c.sockets, c.cores, c.threads) == (1, 2, 4)
    assert c.mhz_current == 3222.3
    assert c.flags == ["sse4_2", "avx", "f16c", "fma", "avx2"]  # Zen 3: no AVX-512, no AMX
    m = memory.probe(ctx)
    assert (m.total_bytes, m.available_bytes) == (16378532 * KIB, 15577804 * KIB)
    assert (m.swap_total_bytes, m.swap_used_bytes) == (3145724 * KIB, 0)
    assert m.shm_total_bytes == 16378532 * KIB // 2  # tmpfs without size=: half the RAM, df said 7.9G
    s = system.probe(ctx)
    assert (s.distro, s.kernel, s.hostname) == ("Ubuntu 24.04.3 LTS", "6.14.0-1017-azure", "runnervmjduv7")
    assert s.container is not None and s.container.runtime is None and s.container.markers == []


def test_grace_aarch64() -> None:
    info = cpu.probe(ctx_for("grace-neoverse-v2"))
    assert (info.arch, info.vendor, info.model) == ("aarch64", "ARM", "Neoverse-V2")
    assert (info.sockets, info.cores, info.threads) == (1, 72, 72)
    assert info.flags == ["asimd", "fphp", "asimdhp", "asimddp", "atomics", "sve", "sve2", "bf16", "svebf16",
                          "i8mm", "svei8mm"]  # fmt: skip
    assert info.mhz_current is None and info.mhz_max is None  # no cpu MHz on arm64, no cpufreq captured


def test_docker_cgroup_v2_limits_and_small_shm() -> None:
    ctx = ctx_for("docker-cgroup2-shm64m")
    m = memory.probe(ctx)
    assert m.shm_total_bytes == 64 * 1024 * 1024
    assert m.cgroup_limit_bytes == 4 * 1024**3
    assert m.total_bytes is None and m.error == "cannot read /proc/meminfo: No such file or directory"
    c = cpu.probe(ctx)
    assert c.cgroup_cpu_quota == 1.5
    assert c.usable_cpus == 2  # 1.5 CPUs of time can keep 2 threads busy part-time
    s = system.probe(ctx)
    assert s.container is not None
    assert s.container.runtime == "docker"
    assert s.container.markers == ["/.dockerenv", "root filesystem is overlay"]


def test_container_without_dockerenv_is_still_seen(tmp_path: Path) -> None:
    """cgroup v2 shows "0::/" in /proc/1/cgroup, so the overlay root is what gives a container away."""
    root = copy_tree("docker-cgroup2-shm64m", tmp_path)
    (root / ".dockerenv").unlink()
    info = system.container(ProbeContext(root=root, env={}))
    assert (info.runtime, info.markers) == ("unknown", ["root filesystem is overlay"])
    (root / "run").mkdir()
    (root / "run/.containerenv").write_text('engine="podman-4.9.3"\n')
    assert system.container(ProbeContext(root=root, env={})).runtime == "podman"


def test_pid1_environ_and_kubernetes(tmp_path: Path) -> None:
    root = copy_tree("docker-cgroup2-shm64m", tmp_path)
    (root / ".dockerenv").unlink()
    (root / "proc/1/environ").write_bytes(b"PATH=/usr/bin\0container=podman\0HOME=/root\0")
    (root / "var/run/secrets/kubernetes.io/serviceaccount").mkdir(parents=True)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    info = system.container(ProbeContext(root=root, env=env))
    assert info.runtime == "podman" and info.kubernetes is True
    assert "/proc/1/environ container=podman" in info.markers
    assert "KUBERNETES_SERVICE_HOST set" in info.markers
    assert "/var/run/secrets/kubernetes.io" in info.markers


def test_cgroup_v1_container_paths(tmp_path: Path) -> None:
    """Docker on cgroup v1 without a cgroup namespace: /proc/self/cgroup names the host path."""
    root = tmp_path / "v1"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    (root / "proc/1").mkdir()
    (root / "proc/1/cgroup").write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    (root / "proc/self/mountinfo").write_text(
        "30 25 0:26 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"
        "31 25 0:27 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
    )
    (root / "sys/fs/cgroup/memory").mkdir(parents=True)
    (root / "sys/fs/cgroup/memory/memory.limit_in_bytes").write_text("2147483648\n")
    (root / "sys/fs/cgroup/cpu,cpuacct").mkdir(parents=True)
    (root / "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us").write_text("50000\n")
    (root / "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us").write_text("100000\n")
    ctx = ProbeContext(root=root, env={})
    assert memory.cgroup_memory_limit(ctx) == 2 * 1024**3
    assert memory.cgroup_cpu_quota(ctx) == 0.5
    assert system.container(ctx).runtime == "docker"


def test_parent_cgroup_limit_applies(tmp_path: Path) -> None:
    """A limit on an ancestor (a systemd slice) binds the leaf too: the tightest one is reported."""
    root = tmp_path / "v2"
    leaf = root / "sys/fs/cgroup/user.slice/job.scope"
    leaf.mkdir(parents=True)
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text("0::/user.slice/job.scope\n")
    (root / "proc/self/mountinfo").write_text("25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    (leaf / "memory.max").write_text("max\n")
    (leaf / "cpu.max").write_text("max 100000\n")
    (root / "sys/fs/cgroup/user.slice/memory.max").write_text("1073741824\n")
    (root / "sys/fs/cgroup/user.slice/cpu.max").write_text("300000 100000\n")
    ctx = ProbeContext(root=root, env={})
    assert memory.cgroup_memory_limit(ctx) == 1024**3
    assert memory.cgroup_cpu_quota(ctx) == 3.0


def test_wsl2_kernel() -> None:
    info = system.container(ctx_for("wsl2-kernel"))
    assert info.wsl is True and info.runtime is None
    assert info.markers == ["kernel 5.15.167.4-microsoft-standard-WSL2"]


# --------------------------------------------------------------------------- TPU


def test_tpu_v4_vm_with_holder() -> None:
    env = {"TPU_ACCELERATOR_TYPE": "v4-8", "TPU_WORKER_ID": "0", "HOME": "/home/me"}
    info = tpu.probe(ctx_for("tpu-v4-8-vm", env))
    assert info.error is None
    assert info.pci_devices is not None
    assert [d.address for d in info.pci_devices] == [f"0000:00:0{i}.0" for i in (4, 5, 6, 7)]  # not gVNIC
    assert {d.name for d in info.pci_devices} == {"TPU v4"}
    assert info.generation == "v4"
    assert info.accel_nodes == ["/dev/accel0", "/dev/accel1", "/dev/accel2", "/dev/accel3"]
    assert info.lockfile == "/tmp/libtpu_lockfile"
    assert info.env == {"TPU_ACCELERATOR_TYPE": "v4-8", "TPU_WORKER_ID": "0"}
    assert info.holders is not None and info.holders_complete is True
    assert {(h.pid, h.device) for h in info.holders} == {
        (4242, "/dev/accel0"), (4242, "/dev/accel1"), (4242, "/dev/accel2"), (4242, "/dev/accel3"),
        (4242, "/tmp/libtpu_lockfile"),
    }  # fmt: skip
    assert {h.command for h in info.holders} == {"python3 train.py"}


def test_tpu_v6e_vfio_with_stale_lock() -> None:
    info = tpu.probe(ctx_for("tpu-v6e-vfio-stale-lock"))
    assert info.generation == "v6e"
    assert info.accel_nodes == []
    assert info.vfio_nodes == ["/dev/vfio/0", "/dev/vfio/1", "/dev/vfio/2", "/dev/vfio/3", "/dev/vfio/vfio"]
    assert info.lockfile == "/tmp/libtpu_lockfile"
    assert info.holders == []  # the lock file is there but nobody holds it: a stale lock


@pytest.mark.parametrize(
    ("subsystem", "accelerator_type", "expected"),
    [("0x004e", None, "v2"), ("0x004f", None, "v3"), (None, "v3-8", "v3"), (None, None, "v2/v3")],
)
def test_tpu_v2_v3_share_an_id(
    tmp_path: Path, subsystem: str | None, accelerator_type: str | None, expected: str
) -> None:
    dev = tmp_path / "sys/bus/pci/devices/0000:00:04.0"
    dev.mkdir(parents=True)
    (dev / "vendor").write_text("0x1ae0\n")
    (dev / "device").write_text("0x0027\n")
    (dev / "class").write_text("0xff0000\n")
    if subsystem:
        (dev / "subsystem_device").write_text(subsystem + "\n")
    env = {"TPU_ACCELERATOR_TYPE": accelerator_type} if accelerator_type else {}
    info = tpu.probe(ProbeContext(root=tmp_path, env=env))
    assert info.generation == expected
    assert info.pci_devices is not None and len(info.pci_devices) == 1


# --------------------------------------------------------------------------- environment


def test_relevant_env_keeps_stack_variables_and_drops_secrets() -> None:
    env = {
        "CUDA_VISIBLE_DEVICES": "1,0",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_VAR_region": "us-east-1",  # Terraform, not TensorFlow
        "TF_TOKEN_app_terraform_io": "secret",
        "XLA_FLAGS": "--xla_gpu_enable_triton_gemm=false",
        "TPU_VISIBLE_DEVICES": "0",
        "NCCL_DEBUG": "INFO",
        "CUDA_INJECTION64_PATH": "/opt/nsight/libinject.so",
        "HF_TOKEN": "hf_secret",
        "NCCL_SECRET_KEY": "x",
        "HOME": "/root",
        "PATH": "/usr/bin",
    }
    assert system.relevant_env(env) == {
        "CUDA_INJECTION64_PATH": "/opt/nsight/libinject.so",
        "CUDA_VISIBLE_DEVICES": "1,0",
        "LD_LIBRARY_PATH": "/usr/local/cuda/lib64",
        "NCCL_DEBUG": "INFO",
        "NVIDIA_VISIBLE_DEVICES": "all",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TPU_VISIBLE_DEVICES": "0",
        "XLA_FLAGS": "--xla_gpu_enable_triton_gemm=false",
    }


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ("home = /usr/bin\nimplementation = CPython\nuv = 0.5.11\nversion_info = 3.12.8\n", "uv"),
        ("home = /usr/bin\nvirtualenv = 20.26.6\nversion_info = 3.11.7\n", "virtualenv"),
        ("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.7\n", "venv"),
        (None, "venv"),  # a venv whose pyvenv.cfg vanished is still a venv
    ],
)
def test_env_kind_of_venvs(tmp_path: Path, cfg: str | None, expected: str) -> None:
    prefix = tmp_path / "env"
    prefix.mkdir()
    if cfg is not None:
        (prefix / "pyvenv.cfg").write_text(cfg)
    assert system.env_kind(prefix, Path("/usr"), {}) == expected


def test_env_kind_conda_and_system(tmp_path: Path) -> None:
    conda = tmp_path / "miniforge3"
    (conda / "conda-meta").mkdir(parents=True)
    assert system.env_kind(conda, conda, {}) == "conda"
    plain = tmp_path / "usr"
    plain.mkdir()
    assert system.env_kind(plain, plain, {}) == "system"
    assert system.env_kind(plain, plain, {"CONDA_PREFIX": str(plain)}) == "conda"
