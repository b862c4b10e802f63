"""The host around the GPUs: containers without GPU plumbing, /dev/shm, system RAM against GPU
memory (diagnostics-anchors b9, e "smaller gaps"; cost-anchors 4.5)."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.models import Finding, Severity, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules._base import MissingFacts, need, rule

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
GIB = 1024**3
#: below this /dev/shm, PyTorch DataLoader workers and NCCL's shared-memory transport fail
#: ("bus error", "unable to write to file </torch_...>"); Docker's default is 64 MiB
SHM_MIN_BYTES = 1 * GIB


def _wants_gpu(s: Snapshot) -> list[str]:
    """Why we believe this container is meant to have a GPU (empty: no sign of it)."""
    why = []
    if F.gpu_pci(s):
        why.append("NVIDIA GPU on the PCI bus")
    env = s.system.env if s.system else {}
    if env.get("NVIDIA_VISIBLE_DEVICES") not in (None, "", "void", "none"):
        why.append(f"NVIDIA_VISIBLE_DEVICES={env['NVIDIA_VISIBLE_DEVICES']}")
    if s.frameworks:
        why += [
            f"{fw.name} CUDA build" for fw in s.frameworks.frameworks if fw.installed and fw.build == "cuda"
        ]
    return why


@rule(
    "container-no-gpu",
    "running in a container started without GPU access (no /dev/nvidia* or no injected driver libraries)",
    E,
)
def container_no_gpu(s: Snapshot) -> Iterator[Finding]:
    inside = need(F.in_container(s), "container detection")
    if not inside:
        return
    nv = need(s.nvidia, "NVIDIA facts")
    nvml = nv.nvml
    if nvml is not None and nvml.ok:
        return
    nodes = nv.device_nodes
    if nodes is None and nvml is None:
        raise MissingFacts("device nodes and NVML state unknown")
    has_nodes = any(n.startswith("/dev/nvidia") and n[len("/dev/nvidia") :].isdigit() for n in nodes or [])
    missing_lib = nvml is not None and nvml.code == F.NVML_LIBRARY_NOT_FOUND
    if has_nodes and not missing_lib:
        return  # nodes are there and the library loads: another layer's problem
    why = _wants_gpu(s)
    if not why:
        return  # a CPU container: nothing to complain about
    container = s.system.container if s.system else None
    k8s = bool(container and container.kubernetes)
    commands = (
        ["kubectl describe node | grep nvidia.com/gpu  # the pod must set limits nvidia.com/gpu"]
        if k8s
        else [
            "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker",
            "docker run --gpus all ...",
        ]
    )
    yield Finding(
        id="container-no-gpu",
        severity=E,
        summary="this container has no GPU access: "
        + ("no /dev/nvidia* device nodes" if not has_nodes else "the driver libraries were not injected"),
        facts={
            "runtime": container.runtime if container else None,
            "kubernetes": k8s,
            "device_nodes": nodes,
            "nvml": nvml.model_dump(exclude_none=True) if nvml else None,
            "signs_of_gpu_intent": why,
        },
        fix=(
            "Request the GPU from the orchestrator (pod limit nvidia.com/gpu with the NVIDIA device plugin)."
            if k8s
            else "On the host, install nvidia-container-toolkit, configure the Docker runtime, restart "
            "Docker, "
            "and start the container with --gpus all (a snap-installed Docker is a known trap)."
        ),
        commands=commands,
    )


@rule(
    "container-gpu-lost",
    "NVML fails with 'Unknown Error' inside a container that had the GPU: the "
    "host's systemd reset the device cgroup",
    E,
)
def container_gpu_lost(s: Snapshot) -> Iterator[Finding]:
    inside = need(F.in_container(s), "container detection")
    nv = need(s.nvidia, "NVIDIA facts")
    nvml = need(nv.nvml, "NVML init result")
    if not inside or nvml.ok or nvml.code != F.NVML_UNKNOWN:
        return
    yield Finding(
        id="container-gpu-lost",
        severity=E,
        summary="NVML 'Unknown Error' in a container: it lost the GPU (host systemd daemon-reload)",
        facts={"nvml": nvml.model_dump(exclude_none=True)},
        fix="Recreate the container; on the host apply NVIDIA's workaround (create the /dev/char "
        "symlinks, or "
        "use the cgroupfs cgroup driver) so it does not recur.",
        commands=["sudo nvidia-ctk system create-dev-char-symlinks --create-all  # on the host"],
    )


@rule("small-shm", "/dev/shm is smaller than 1 GiB: DataLoader workers and NCCL fail with bus errors", W)
def small_shm(s: Snapshot) -> Iterator[Finding]:
    mem = need(s.memory, "memory facts")
    shm = need(mem.shm_total_bytes, "/dev/shm size")
    if shm >= SHM_MIN_BYTES:
        return
    inside = F.in_container(s)
    commands = (
        ["docker run --ipc=host ...  # or --shm-size=16g"]
        if inside
        else ["sudo mount -o remount,size=16G /dev/shm"]
    )
    yield Finding(
        id="small-shm",
        severity=W,
        summary=f"/dev/shm is {shm / 2**20:.0f} MiB: PyTorch DataLoader workers and NCCL need more",
        facts={"shm_total_bytes": shm, "in_container": inside},
        fix=(
            "Give the container more shared memory (--ipc=host or --shm-size; on Kubernetes mount an "
            "emptyDir "
            "with medium: Memory at /dev/shm)."
            if inside
            else "Remount /dev/shm larger (and set it in /etc/fstab)."
        ),
        commands=commands,
    )


def _vram_mib(s: Snapshot) -> tuple[int, list[str]] | None:
    """Total GPU memory (MiB) and how each GPU's was known; None when any GPU's is unknown."""
    gpus = F.gpus_or_none_present(s)
    total, how = 0, []
    for g in gpus:
        if g.memory_total_mib:
            total += g.memory_total_mib
            how.append(f"GPU {g.index}: {g.memory_total_mib} MiB")
            continue
        spec = _spec_memory_gb(g.name)
        if spec is None:
            return None
        total += int(spec * 1024)
        how.append(f"GPU {g.index}: {spec:g} GB from the spec table ({g.name})")
    return total, how


def _spec_memory_gb(name: str | None) -> float | None:
    if not name:
        return None
    try:
        from envcheck.knowledge import gpus
    except ImportError:
        return None
    spec = gpus.lookup(name)
    return spec.memory_gb if spec is not None else None


@rule(
    "ram-below-2x-vram",
    "system RAM is below twice the total GPU memory (the usual sizing rule for "
    "loading, pinning and checkpointing)",
    W,
)
def ram_below_2x_vram(s: Snapshot) -> Iterator[Finding]:
    mem = need(s.memory, "memory facts")
    ram = need(mem.total_bytes, "RAM size")
    if mem.cgroup_limit_bytes:
        ram = min(ram, mem.cgroup_limit_bytes)
    vram = _vram_mib(s)
    if vram is None:
        raise MissingFacts("memory size of some GPU unknown")
    total_mib, how = vram
    if total_mib == 0:
        return
    vram_bytes = total_mib * 2**20
    if ram >= 2 * vram_bytes:
        return
    severity = W if ram < vram_bytes else INFO
    want_gib = max(32, -(-2 * vram_bytes // GIB))
    yield Finding(
        id="ram-below-2x-vram",
        severity=severity,
        summary=f"RAM {ram / GIB:.0f} GiB is {'below' if ram < vram_bytes else 'under twice'} the GPUs' "
        f"{vram_bytes / GIB:.0f} GiB",
        facts={
            "ram_bytes": ram,
            "vram_mib": total_mib,
            "gpus": how,
            "cgroup_limit_bytes": mem.cgroup_limit_bytes,
        },
        fix=f"Plan for >= {want_gib} GiB RAM (2x GPU memory) to load and checkpoint models that fill "
        "the GPUs; "
        "community sizing rule, not a hard limit.",
        commands=[],
    )
