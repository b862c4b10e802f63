"""The NVIDIA stack, layer by layer: PCI bus, kernel module, device nodes, NVML, GPUs, links.

Each layer is read on its own so the report can say exactly where the stack breaks (a GPU on
the bus bound to nouveau, a module without device nodes, NVML code 18 after an upgrade...).
A layer that cannot be read goes into ``unavailable``; a GPU field NVML refuses goes into
``Gpu.unavailable``; a lost GPU stops only its own queries. Nothing here raises.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envcheck import _nvml, _proc
from envcheck._nvml import NvmlError
from envcheck.models import (
    Ecc,
    Gpu,
    GpuProcess,
    KernelModule,
    MigDevice,
    NvidiaInfo,
    NvmlStatus,
    PciDevice,
    Pcie,
)
from envcheck.probes._pci import NVIDIA_VENDOR, list_pci_devices

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: ``nvidia-smi`` is run only to quote its own words when NVML fails; it must never stall the report
NVIDIA_SMI_TIMEOUT = 5.0
_MIB = 1024 * 1024
_FABRIC_MANAGER = "nv-fabricmanager"  # the daemon of the nvidia-fabricmanager package
_MODULE_VERSION = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)")


def probe(ctx: ProbeContext) -> NvidiaInfo:
    """Every NVIDIA layer this machine shows; failures are data, never exceptions."""
    gaps: dict[str, str] = {}
    info = NvidiaInfo()
    info.pci_devices = _guarded(gaps, "pci", _pci_devices, ctx, gaps)
    info.kernel_module = _guarded(gaps, "kernel_module", _kernel_module, ctx, gaps)
    info.device_nodes, info.dxg = _guarded(gaps, "device_nodes", _device_nodes, ctx, gaps) or (None, None)
    _guarded(gaps, "nvml", _nvml_layers, ctx, info, gaps)
    info.unavailable = gaps
    return info


def _guarded(gaps: dict[str, str], layer: str, func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)``; an unexpected error (a bug, an odd machine) costs only its own layer."""
    try:
        return func(*args)
    except Exception as exc:
        gaps.setdefault(layer, f"{type(exc).__name__}: {exc}")
        return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # EACCES on a locked-down /sys
        return False


# --------------------------------------------------------------------------- bus, module, nodes


def _pci_devices(ctx: ProbeContext, gaps: dict[str, str]) -> list[PciDevice] | None:
    try:
        return list_pci_devices(ctx, NVIDIA_VENDOR)
    except OSError as exc:
        gaps["pci"] = f"cannot list /sys/bus/pci/devices: {exc.strerror or exc}"
        return None


def _read(path: Path, gaps: dict[str, str], layer: str) -> str | None:
    """File text, or None when absent; an unreadable file is also noted in ``gaps``."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        gaps.setdefault(layer, f"cannot read {path}: {exc.strerror or exc}")
        return None


def _kernel_module(ctx: ProbeContext, gaps: dict[str, str]) -> KernelModule:
    banner_text = _read(ctx.path("/proc/driver/nvidia/version"), gaps, "kernel_module")
    sys_version = _read(ctx.path("/sys/module/nvidia/version"), gaps, "kernel_module")
    proc_modules = _read(ctx.path("/proc/modules"), gaps, "kernel_module")
    listed = {line.split(" ", 1)[0] for line in (proc_modules or "").splitlines()}
    # /sys/module lists built-in and loaded modules alike, so it answers even without /proc/modules
    sys_module = ctx.path("/sys/module")
    can_tell = _is_dir(sys_module) or proc_modules is not None

    def loaded(name: str) -> bool | None:
        if _is_dir(sys_module / name) or name in listed:
            return True
        return False if can_tell else None

    banner = banner_text.splitlines()[0].strip() if banner_text and banner_text.strip() else None
    match = _MODULE_VERSION.search(banner or "")
    version = (sys_version or "").strip() or (match.group(1) if match else None)
    is_loaded = loaded("nvidia")
    if banner is not None or sys_version is not None:
        is_loaded = True
    return KernelModule(loaded=is_loaded, version=version, banner=banner, nouveau_loaded=loaded("nouveau"))


def _device_nodes(ctx: ProbeContext, gaps: dict[str, str]) -> tuple[list[str] | None, bool | None]:
    dev = ctx.path("/dev")
    try:
        names = [p.name for p in dev.iterdir() if p.name.startswith("nvidia")]
    except OSError as exc:
        gaps["device_nodes"] = f"cannot list /dev: {exc.strerror or exc}"
        return None, None
    return [f"/dev/{name}" for name in _natural(names)], os.path.lexists(dev / "dxg")


def _natural(names: list[str]) -> list[str]:
    """nvidia2 before nvidia10."""
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


# --------------------------------------------------------------------------- NVML


def _nvml_layers(ctx: ProbeContext, info: NvidiaInfo, gaps: dict[str, str]) -> None:
    try:
        _nvml.init()
    except NvmlError as exc:
        info.nvml = NvmlStatus(ok=False, code=exc.code, name=exc.name, message=exc.reason)
        info.nvml_library = _library_path(ctx)
        info.nvidia_smi_output = _nvidia_smi_says(ctx)
        gaps["nvml"] = exc.reason
        return
    try:
        info.nvml = NvmlStatus(ok=True, code=_nvml.SUCCESS, name="NVML_SUCCESS")
        info.nvml_library = _library_path(ctx)
        try:
            info.driver_version = str(_nvml.call("nvmlSystemGetDriverVersion"))
        except NvmlError as exc:
            gaps["driver_version"] = exc.reason
        try:
            info.cuda_driver_version = int(
                _nvml.call_first(("nvmlSystemGetCudaDriverVersion", "nvmlSystemGetCudaDriverVersion_v2"))
            )
        except NvmlError as exc:
            gaps["cuda_driver_version"] = exc.reason
        try:
            count = int(_nvml.call("nvmlDeviceGetCount"))
        except NvmlError as exc:
            gaps["gpus"] = exc.reason
            return
        gpus, handles = [], []
        for index in range(count):
            gpu, handle = _gpu(ctx, index)
            gpus.append(gpu)
            handles.append(handle)
        info.gpus = gpus
        links = [_nvlinks(h) if h is not None else _Links() for h in handles]
        info.topology = _topology(gpus, handles, links, gaps)
        info.fabric_manager = _fabric_manager(ctx, info, handles, links, gaps)
    finally:
        _nvml.shutdown()


def _library_path(ctx: ProbeContext) -> str | None:
    """The libnvidia-ml file this process mapped, read from /proc/self/maps."""
    if not _nvml.library_loaded():
        return None
    try:
        maps = ctx.path("/proc/self/maps").read_text(errors="replace")
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if "libnvidia-ml.so" in path:
            return path.strip()
    return None


def _nvidia_smi_says(ctx: ProbeContext) -> str:
    """nvidia-smi's own first lines (it names the library version on a mismatch)."""
    result = _proc.run(["nvidia-smi"], timeout=min(ctx.timeout, NVIDIA_SMI_TIMEOUT), env=dict(ctx.env))
    if result.error:
        return result.error
    lines = (result.stdout + result.stderr).strip().splitlines()
    return "\n".join(lines[:4]) if lines else f"nvidia-smi exited {result.returncode} without output"


# --------------------------------------------------------------------------- one GPU


class _GpuLost(Exception):
    """The GPU fell off the bus: stop asking it anything."""


class _Fields:
    """Reads fields of one GPU; a refusal lands in ``gpu.unavailable`` instead of raising."""

    def __init__(self, gpu: Gpu) -> None:
        self.gpu = gpu

    def get(self, field: str, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except NvmlError as exc:
            self.gpu.unavailable[field] = exc.reason
            if exc.code == _nvml.GPU_IS_LOST:
                raise _GpuLost from None
        except Exception as exc:  # a binding or driver bug must not cost the other fields
            self.gpu.unavailable[field] = f"{type(exc).__name__}: {exc}"
        return None

    def nvml(self, field: str, function: str, *args: Any) -> Any:
        return self.get(field, _nvml.call, function, *args)


def _gpu(ctx: ProbeContext, index: int) -> tuple[Gpu, Any]:
    gpu = Gpu(index=index)
    try:
        handle = _nvml.call("nvmlDeviceGetHandleByIndex", index)
    except NvmlError as exc:
        gpu.unavailable["handle"] = exc.reason
        return gpu, None
    try:
        _fill(ctx, gpu, handle, _Fields(gpu))
    except _GpuLost:
        return gpu, None
    return gpu, handle


def _fill(ctx: ProbeContext, gpu: Gpu, h: Any, f: _Fields) -> None:
    gpu.name = f.nvml("name", "nvmlDeviceGetName", h)
    gpu.uuid = f.nvml("uuid", "nvmlDeviceGetUUID", h)
    pci = f.nvml("bus_id", "nvmlDeviceGetPciInfo", h)
    gpu.bus_id = _bus_id(pci.busId) if pci is not None else None
    gpu.serial = f.nvml("serial", "nvmlDeviceGetSerial", h)
    gpu.vbios = f.nvml("vbios", "nvmlDeviceGetVbiosVersion", h)
    memory = f.nvml("memory", "nvmlDeviceGetMemoryInfo", h)
    if memory is not None:
        gpu.memory_total_mib, gpu.memory_used_mib = int(memory.total) // _MIB, int(memory.used) // _MIB
    cc = f.nvml("compute_capability", "nvmlDeviceGetCudaComputeCapability", h)
    gpu.compute_capability = f"{cc[0]}.{cc[1]}" if cc is not None else None
    gpu.pcie = _pcie(h, f)
    limit = f.nvml("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit", h)
    gpu.power_limit_w = limit / 1000 if limit is not None else None
    draw = f.nvml("power_draw_w", "nvmlDeviceGetPowerUsage", h)
    gpu.power_draw_w = draw / 1000 if draw is not None else None
    gpu.temperature_c = f.nvml("temperature_c", "nvmlDeviceGetTemperature", h, _nvml.TEMPERATURE_GPU)
    util = f.nvml("utilization", "nvmlDeviceGetUtilizationRates", h)
    if util is not None:
        gpu.utilization_gpu_pct, gpu.utilization_memory_pct = int(util.gpu), int(util.memory)
    gpu.fan_pct = f.nvml("fan_pct", "nvmlDeviceGetFanSpeed", h)
    gpu.clock_sm_mhz = f.nvml("clock_sm_mhz", "nvmlDeviceGetClockInfo", h, _nvml.CLOCK_SM)
    gpu.clock_sm_max_mhz = f.nvml("clock_sm_max_mhz", "nvmlDeviceGetMaxClockInfo", h, _nvml.CLOCK_SM)
    gpu.ecc = _ecc(h, f)
    _mig(gpu, h, f)
    persistence = f.nvml("persistence_mode", "nvmlDeviceGetPersistenceMode", h)
    gpu.persistence_mode = bool(persistence) if persistence is not None else None
    mode = f.nvml("compute_mode", "nvmlDeviceGetComputeMode", h)
    gpu.compute_mode = _nvml.COMPUTE_MODES.get(mode, str(mode)) if mode is not None else None
    gpu.throttle_reasons = f.get("throttle_reasons", _nvml.clock_event_reasons, h)
    gpu.processes = _processes(ctx, h, f)


def _bus_id(raw: str | bytes) -> str:
    """NVML's "00000000:53:00.0" in sysfs form ("0000:53:00.0") so it matches the PCI layer."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        domain, bus, devfn = text.strip().split(":")
        return f"{int(domain, 16):04x}:{bus.lower()}:{devfn.lower()}"
    except ValueError:
        return text.strip().lower()


def _pcie(h: Any, f: _Fields) -> Pcie | None:
    pcie = Pcie(
        gen_current=f.nvml("pcie.gen_current", "nvmlDeviceGetCurrPcieLinkGeneration", h),
        gen_max=f.nvml("pcie.gen_max", "nvmlDeviceGetMaxPcieLinkGeneration", h),
        width_current=f.nvml("pcie.width_current", "nvmlDeviceGetCurrPcieLinkWidth", h),
        width_max=f.nvml("pcie.width_max", "nvmlDeviceGetMaxPcieLinkWidth", h),
        gen_device_max=f.nvml("pcie.gen_device_max", "nvmlDeviceGetGpuMaxPcieLinkGeneration", h),
        replay_counter=f.nvml("pcie.replay_counter", "nvmlDeviceGetPcieReplayCounter", h),
    )
    return pcie if any(v is not None for v in pcie.model_dump().values()) else None


def _ecc(h: Any, f: _Fields) -> Ecc | None:
    ecc = Ecc()
    mode = f.nvml("ecc.mode", "nvmlDeviceGetEccMode", h)
    if mode is not None:
        ecc.mode_current, ecc.mode_pending = bool(mode[0]), bool(mode[1])
    for field, kind, counter in (
        ("volatile_corrected", _nvml.MEMORY_ERROR_CORRECTED, _nvml.VOLATILE_ECC),
        ("volatile_uncorrected", _nvml.MEMORY_ERROR_UNCORRECTED, _nvml.VOLATILE_ECC),
        ("aggregate_corrected", _nvml.MEMORY_ERROR_CORRECTED, _nvml.AGGREGATE_ECC),
        ("aggregate_uncorrected", _nvml.MEMORY_ERROR_UNCORRECTED, _nvml.AGGREGATE_ECC),
    ):
        setattr(ecc, field, f.nvml(f"ecc.{field}", "nvmlDeviceGetTotalEccErrors", h, kind, counter))
    sbe = f.nvml("ecc.retired_pages_sbe", "nvmlDeviceGetRetiredPages", h, _nvml.RETIRED_MULTIPLE_SINGLE_BIT)
    dbe = f.nvml("ecc.retired_pages_dbe", "nvmlDeviceGetRetiredPages", h, _nvml.RETIRED_DOUBLE_BIT)
    ecc.retired_pages_sbe = len(sbe) if sbe is not None else None
    ecc.retired_pages_dbe = len(dbe) if dbe is not None else None
    pending = f.nvml("ecc.retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus", h)
    ecc.retired_pages_pending = bool(pending) if pending is not None else None
    rows = f.nvml("ecc.remapped_rows", "nvmlDeviceGetRemappedRows", h)
    if rows is not None:
        corr, unc, rows_pending, failure = rows
        ecc.remapped_correctable, ecc.remapped_uncorrectable = int(corr), int(unc)
        ecc.remapped_pending, ecc.remapped_failure = bool(rows_pending), bool(failure)
    return ecc if any(v is not None for v in ecc.model_dump().values()) else None


def _mig(gpu: Gpu, h: Any, f: _Fields) -> None:
    mode = f.nvml("mig_mode", "nvmlDeviceGetMigMode", h)
    if mode is None:
        return
    gpu.mig_mode_current, gpu.mig_mode_pending = bool(mode[0]), bool(mode[1])
    if not gpu.mig_mode_current:
        return
    slots = f.nvml("mig_devices", "nvmlDeviceGetMaxMigDeviceCount", h)
    if slots is None:
        return
    devices = []
    for slot in range(int(slots)):
        try:
            mig = _nvml.call("nvmlDeviceGetMigDeviceHandleByIndex", h, slot)
        except NvmlError as exc:
            if exc.code != _nvml.NOT_FOUND:  # NotFound: an empty slot
                gpu.unavailable[f"mig_devices[{slot}]"] = exc.reason
            continue
        key = f"mig_devices[{slot}]"
        memory = f.nvml(f"{key}.memory", "nvmlDeviceGetMemoryInfo", mig)
        attrs = f.nvml(f"{key}.slices", "nvmlDeviceGetAttributes", mig)
        devices.append(
            MigDevice(
                index=slot,
                uuid=f.nvml(f"{key}.uuid", "nvmlDeviceGetUUID", mig),
                memory_total_mib=int(memory.total) // _MIB if memory is not None else None,
                gpu_instance_id=f.nvml(f"{key}.gpu_instance_id", "nvmlDeviceGetGpuInstanceId", mig),
                compute_instance_id=f.nvml(
                    f"{key}.compute_instance_id", "nvmlDeviceGetComputeInstanceId", mig
                ),
                slices=int(attrs.gpuInstanceSliceCount) if attrs is not None else None,
            )
        )
    gpu.mig_devices = devices


def _processes(ctx: ProbeContext, h: Any, f: _Fields) -> list[GpuProcess] | None:
    found: dict[int, GpuProcess] = {}
    answered = False
    for kind in ("Compute", "Graphics"):
        procs = f.get(f"processes.{kind.lower()}", _nvml.running_processes, h, kind)
        if procs is None:
            continue
        answered = True
        for pid, used in procs:
            seen = found.get(pid)
            if seen is not None:  # one process using the GPU both ways
                seen.kind = "compute+graphics"
                continue
            found[pid] = GpuProcess(
                pid=pid,
                name=_process_name(ctx, pid),
                used_memory_mib=used // _MIB if used is not None else None,
                kind=kind.lower(),
            )
    return list(found.values()) if answered else None


def _process_name(ctx: ProbeContext, pid: int) -> str | None:
    """The program of ``pid`` from /proc (None when it lives in another PID namespace)."""
    try:
        argv0 = ctx.path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        argv0 = ""
    if argv0:
        return argv0
    try:
        return ctx.path(f"/proc/{pid}/comm").read_text(errors="replace").strip() or None
    except OSError:
        return None


# --------------------------------------------------------------------------- links between GPUs


class _Links:
    """Active NVLinks of one GPU: to each peer bus id, and to NVSwitches."""

    def __init__(self) -> None:
        self.peers: Counter[str] = Counter()
        self.other: list[str] = []  # remote bus ids of links whose remote type is unknown
        self.switch = 0


def _nvlinks(h: Any) -> _Links:
    links = _Links()
    for link in range(_nvml.NVLINK_MAX_LINKS):
        try:
            active, remote, kind = _nvml.nvlink(h, link)
        except NvmlError:
            break  # NotSupported (no NVLink) or InvalidArgument (past this GPU's last link)
        if not active or remote is None:
            continue
        if kind == _nvml.NVLINK_DEVICE_TYPE_SWITCH:
            links.switch += 1
        elif kind is None:
            links.other.append(_bus_id(remote))
        else:
            links.peers[_bus_id(remote)] += 1
    return links


def _topology(
    gpus: list[Gpu], handles: list[Any], links: list[_Links], gaps: dict[str, str]
) -> list[list[str]]:
    """``nvidia-smi topo -m``: NV<n> for bonded NVLinks (direct or through NVSwitches), else the PCIe path."""
    buses = {g.bus_id for g in gpus if g.bus_id}
    for gpu_links in links:  # remote type unknown (old driver): a bus that is no GPU of ours is an NVSwitch
        for bus in gpu_links.other:
            if bus in buses:
                gpu_links.peers[bus] += 1
            else:
                gpu_links.switch += 1
    n = len(gpus)
    matrix = [["X" if i == j else "N/A" for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if handles[i] is None or handles[j] is None:
                continue
            bonded = links[i].peers[gpus[j].bus_id or ""] + min(links[i].switch, links[j].switch)
            if bonded:
                label = f"NV{bonded}"
            else:
                try:
                    level = int(_nvml.call("nvmlDeviceGetTopologyCommonAncestor", handles[i], handles[j]))
                    label = _nvml.TOPOLOGY_LABELS.get(level, "N/A")
                except NvmlError as exc:
                    gaps.setdefault("topology", exc.reason)
                    label = "N/A"
            matrix[i][j] = matrix[j][i] = label
    return matrix


def _fabric_manager(
    ctx: ProbeContext, info: NvidiaInfo, handles: list[Any], links: list[_Links], gaps: dict[str, str]
) -> str | None:
    """ "active"/"inactive" on NVSwitch systems, None where there is no fabric to manage.

    Hopper and later report the fabric state through NVML; older NVSwitch systems (HGX A100)
    only show it as a running ``nv-fabricmanager`` process.
    """
    states = []
    for h in handles:
        if h is None:
            continue
        try:
            state, status = _nvml.fabric_info(h)
        except NvmlError:
            continue
        if state != _nvml.FABRIC_NOT_SUPPORTED:
            states.append((state, status))
    if states:
        done = all(s == _nvml.FABRIC_COMPLETED and st == _nvml.SUCCESS for s, st in states)
        return "active" if done else "inactive"
    nvswitch = (
        any(gl.switch for gl in links)
        or any("nvswitch" in n for n in info.device_nodes or [])
        or any((d.class_id or "").startswith("0x0680") for d in info.pci_devices or [])  # NVSwitch bridge
    )
    if not nvswitch:
        return None
    try:
        pids = [p for p in ctx.path("/proc").iterdir() if p.name.isdigit()]
    except OSError as exc:
        gaps["fabric_manager"] = f"cannot list /proc: {exc.strerror or exc}"
        return None
    # the kernel keeps 15 characters of a command name: "nv-fabricmanager" shows as "nv-fabricmanage"
    return "active" if any(_comm(p) == _FABRIC_MANAGER[:15] for p in pids) else "inactive"


def _comm(proc_dir: Path) -> str | None:
    try:
        return (proc_dir / "comm").read_text(errors="replace").strip()
    except OSError:  # the process exited meanwhile, or hides from us
        return None
