"""Host rules: containers without GPU plumbing or that lost it, /dev/shm, RAM vs GPU memory; TPU."""

from __future__ import annotations

from envcheck.models import ContainerInfo, Gpu, KernelModule, NvmlStatus, PciDevice, TpuHolder

GIB = 1024**3


def _docker_without_gpus(s):
    s.system.container = ContainerInfo(runtime="docker", kubernetes=False, wsl=False, markers=["/.dockerenv"])
    s.nvidia.nvml = NvmlStatus(ok=False, code=12, name="LIBRARY_NOT_FOUND")
    s.nvidia.device_nodes = []
    s.nvidia.kernel_module = KernelModule(
        loaded=True, version="570.124.06"
    )  # the host's module shows through
    s.nvidia.gpus = None
    s.nvidia.driver_version = None
    s.nvidia.cuda_driver_version = None
    s.cuda.driver_version = 0
    return s


# --------------------------------------------------------------------------- container-no-gpu


def test_docker_started_without_gpus(healthy, judge):
    v = judge(_docker_without_gpus(healthy))
    f = v.one("container-no-gpu")
    assert f.commands[-1] == "docker run --gpus all ..."
    assert "NVIDIA GPU on the PCI bus" in f.facts["signs_of_gpu_intent"]
    assert v.of("no-driver") == []  # the host has a driver; the container lacks the plumbing


def test_kubernetes_pod_without_gpu_limit(healthy, judge):
    s = _docker_without_gpus(healthy)
    s.system.container.kubernetes = True
    f = judge(s).one("container-no-gpu")
    assert "nvidia.com/gpu" in f.fix


def test_cpu_container_is_fine(no_gpu, judge):
    s = no_gpu
    s.system.container = ContainerInfo(runtime="docker", kubernetes=False)
    assert judge(s).of("container-no-gpu") == []


def test_container_with_gpus_is_fine(healthy, judge):
    healthy.system.container = ContainerInfo(runtime="docker")
    assert judge(healthy).of("container-no-gpu") == []


def test_container_lost_gpu_after_daemon_reload(healthy, judge):
    s = healthy
    s.system.container = ContainerInfo(runtime="docker")
    s.nvidia.nvml = NvmlStatus(ok=False, code=999, name="UNKNOWN", message="Unknown Error")
    f = judge(s).one("container-gpu-lost")
    assert "create-dev-char-symlinks" in f.commands[0]
    healthy.system.container = ContainerInfo(runtime=None)
    assert judge(healthy).of("container-gpu-lost") == []


# --------------------------------------------------------------------------- small-shm


def test_docker_default_shm(healthy, judge):
    healthy.memory.shm_total_bytes = 64 * 2**20
    healthy.system.container = ContainerInfo(runtime="docker")
    f = judge(healthy).one("small-shm")
    assert "64 MiB" in f.summary
    assert f.commands[0].startswith("docker run --ipc=host")


def test_shm_large_enough_or_unknown(healthy, judge):
    healthy.memory.shm_total_bytes = 2 * GIB
    assert judge(healthy).of("small-shm") == []
    healthy.memory.shm_total_bytes = None
    assert "/dev/shm" in judge(healthy).skipped["small-shm"]


# --------------------------------------------------------------------------- ram-below-2x-vram


def test_ram_below_vram_is_a_warning(healthy, judge, gpu):
    healthy.nvidia.gpus = [gpu(i) for i in range(8)]  # 640 GiB of GPU memory
    healthy.memory.total_bytes = 512 * GIB
    f = judge(healthy).one("ram-below-2x-vram")
    assert f.severity.value == "warning"
    assert "1280 GiB" in f.fix


def test_ram_between_1x_and_2x_is_info(healthy, judge, gpu):
    healthy.memory.total_bytes = 128 * GIB  # one 80 GiB GPU
    assert judge(healthy).one("ram-below-2x-vram").severity.value == "info"


def test_ram_twice_vram_is_fine(healthy, judge):
    assert judge(healthy).of("ram-below-2x-vram") == []


def test_cgroup_limit_counts_as_the_ram(healthy, judge):
    healthy.memory.cgroup_limit_bytes = 32 * GIB
    assert judge(healthy).one("ram-below-2x-vram").facts["ram_bytes"] == 32 * GIB


def test_vram_from_the_spec_table_for_a_pasted_gpu_name(healthy, judge):
    healthy.nvidia.gpus = [Gpu(index=0, name="NVIDIA A100-SXM4-80GB")]  # collect_env gives names only
    healthy.memory.total_bytes = 100 * GIB
    f = judge(healthy).one("ram-below-2x-vram")
    assert "spec table" in f.facts["gpus"][0]


def test_vram_unknown_skips(healthy, judge):
    healthy.nvidia.gpus = [Gpu(index=0, name="Mystery GPU")]
    assert "memory" in judge(healthy).skipped["ram-below-2x-vram"]


# --------------------------------------------------------------------------- TPU


def _tpu_vm(s):
    s.nvidia.pci_devices = []
    s.tpu.pci_devices = [PciDevice(address="0000:00:04.0", vendor_id="0x1ae0", device_id="0x0063")]
    s.tpu.generation = "v5e"
    s.tpu.accel_nodes = ["/dev/accel0"]
    return s


def test_tpu_held_by_another_process(healthy, judge):
    s = _tpu_vm(healthy)
    s.tpu.holders = [TpuHolder(pid=4242, command="python train.py", device="/dev/accel0")]
    f = judge(s).one("tpu-busy")
    assert f.commands == ["kill 4242"]


def test_tpu_free(healthy, judge):
    assert judge(_tpu_vm(healthy)).of("tpu-busy") == []


def test_stale_libtpu_lockfile(healthy, judge):
    s = _tpu_vm(healthy)
    s.tpu.lockfile = "/tmp/libtpu_lockfile"
    assert judge(s).one("tpu-stale-lock").commands == ["rm -f /tmp/libtpu_lockfile"]
    s.tpu.holders_complete = False
    assert "root" in judge(s).skipped["tpu-stale-lock"]
    s.tpu.holders = [TpuHolder(pid=1, device="/dev/accel0")]
    assert judge(s).of("tpu-stale-lock") == []


def test_jax_without_libtpu_on_a_tpu_vm(healthy, judge):
    from envcheck.models import Framework

    s = _tpu_vm(healthy)
    s.frameworks.frameworks[2] = Framework(
        name="jax", installed=True, version="0.10.2", build="cpu", plugins={"jaxlib": "0.10.2"}
    )
    assert judge(s).one("tpu-no-libtpu").commands == ['pip install -U "jax[tpu]"']
    s.frameworks.frameworks[2].plugins["libtpu"] = "0.0.21"
    assert judge(s).of("tpu-no-libtpu") == []
