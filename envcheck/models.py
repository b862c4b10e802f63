"""The Snapshot (facts) and the Findings (verdicts) that every part of envcheck exchanges.

Rules read only a Snapshot, so a Snapshot collected here, loaded from a colleague's JSON or
parsed from a pasted ``collect_env`` text all get the same verdicts. ``None`` always means
"not known" (not collected, or the source did not say); an empty list means "known to be none".
A section whose probe failed keeps ``error`` with the reason instead of raising.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

import msgspec
import msgspec.json
import msgspec.structs

#: Version of the JSON report schema. Bump the major on breaking changes, the minor on additions
#: (1.1: ``Snapshot.paste``); see docs in README.
SCHEMA_VERSION = "1.1"


_M = TypeVar("_M", bound="_Model")


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


class _Model(msgspec.Struct, kw_only=True):
    """Base of every model: msgspec structs, because envcheck's start-up budget is a few
    hundred milliseconds and pydantic's import plus schema building alone costs ~0.3 s here.
    The method names follow pydantic's so callers read familiarly."""

    def model_dump(self, mode: str = "json", exclude_none: bool = False) -> dict[str, Any]:
        """Plain dicts, lists and strings (JSON-ready); ``exclude_none`` drops unknown facts."""
        out = msgspec.to_builtins(self)
        assert isinstance(out, dict)
        return _drop_none(out) if exclude_none else out

    def model_dump_json(self, indent: int | None = None) -> str:
        raw = msgspec.json.encode(self)
        return (msgspec.json.format(raw, indent=indent) if indent else raw).decode()

    def model_copy(self: _M, update: dict[str, Any] | None = None, deep: bool = False) -> _M:
        """A copy with ``update`` applied; ``deep`` copies nested structs and containers too."""
        base = msgspec.convert(msgspec.to_builtins(self), type(self)) if deep else self
        return msgspec.structs.replace(base, **(update or {}))

    @classmethod
    def model_validate(cls: type[_M], obj: Any) -> _M:
        """Build from plain data, checking types; raises msgspec.ValidationError with the path."""
        return msgspec.convert(obj, cls)

    @classmethod
    def model_validate_json(cls: type[_M], text: str | bytes) -> _M:
        return msgspec.json.decode(text, type=cls)

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        return msgspec.json.schema(cls)


class Section(_Model, kw_only=True):
    """Base of every probe's part of the Snapshot."""

    #: Why this probe could not collect (unavailable)
    error: str | None = None


# --------------------------------------------------------------------------- system


class PythonEnv(_Model, kw_only=True):
    version: str | None = None
    implementation: str | None = None
    executable: str | None = None
    prefix: str | None = None
    #: "venv", "conda", "uv", "virtualenv", "system" or None when unknown
    kind: str | None = None
    pip_version: str | None = None


class ContainerInfo(_Model, kw_only=True):
    #: "docker", "podman", "containerd", "lxc", ... or None when not in a container
    runtime: str | None = None
    kubernetes: bool | None = None
    wsl: bool | None = None
    markers: list[str] = []


class SystemInfo(Section, kw_only=True):
    os: str | None = None
    distro: str | None = None
    kernel: str | None = None
    arch: str | None = None
    glibc: str | None = None
    hostname: str | None = None
    python: PythonEnv | None = None
    container: ContainerInfo | None = None
    #: Relevant environment variables
    env: dict[str, str] = {}
    uptime_s: float | None = None


# --------------------------------------------------------------------------- cpu, memory, disk


class CpuInfo(Section, kw_only=True):
    model: str | None = None
    vendor: str | None = None
    #: x86 CPUID family and model numbers (/proc/cpuinfo "cpu family", "model"): 25/17 is AMD Zen 4
    family: int | None = None
    model_number: int | None = None
    arch: str | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None
    mhz_current: float | None = None
    mhz_max: float | None = None
    #: ISA flags frameworks care about (avx2, avx512f, avx512_bf16, amx_tile, ...), as the kernel names them
    flags: list[str] | None = None
    numa_nodes: int | None = None
    #: CPUs usable by this process (cgroup / affinity limits)
    usable_cpus: int | None = None
    #: CPUs' worth of time the cgroup quota allows (cpu.max / cfs_quota), None when unlimited
    cgroup_cpu_quota: float | None = None


class MemoryInfo(Section, kw_only=True):
    total_bytes: int | None = None
    available_bytes: int | None = None
    swap_total_bytes: int | None = None
    swap_used_bytes: int | None = None
    shm_total_bytes: int | None = None
    shm_free_bytes: int | None = None
    #: cgroup memory limit when one applies (containers)
    cgroup_limit_bytes: int | None = None


class DiskUsage(_Model, kw_only=True):
    label: str
    path: str
    total_bytes: int | None = None
    free_bytes: int | None = None
    error: str | None = None


class DiskInfo(Section, kw_only=True):
    disks: list[DiskUsage] = []


# --------------------------------------------------------------------------- nvidia


class PciDevice(_Model, kw_only=True):
    address: str
    vendor_id: str
    device_id: str
    class_id: str | None = None
    #: kernel driver bound to it (nvidia, nouveau, vfio-pci, ...), None when unbound
    driver: str | None = None
    name: str | None = None


class KernelModule(_Model, kw_only=True):
    loaded: bool | None = None
    version: str | None = None
    #: the full line of /proc/driver/nvidia/version
    banner: str | None = None
    nouveau_loaded: bool | None = None


class NvmlStatus(_Model, kw_only=True):
    ok: bool
    #: NVML return code (9 driver not loaded, 12 library not found, 18 version mismatch, 999 unknown)
    code: int | None = None
    name: str | None = None
    message: str | None = None


class Pcie(_Model, kw_only=True):
    gen_current: int | None = None
    gen_max: int | None = None
    width_current: int | None = None
    width_max: int | None = None
    #: the GPU's own maximum generation (the slot may be lower)
    gen_device_max: int | None = None
    replay_counter: int | None = None


class Ecc(_Model, kw_only=True):
    mode_current: bool | None = None
    mode_pending: bool | None = None
    volatile_corrected: int | None = None
    volatile_uncorrected: int | None = None
    aggregate_corrected: int | None = None
    aggregate_uncorrected: int | None = None
    retired_pages_sbe: int | None = None
    retired_pages_dbe: int | None = None
    retired_pages_pending: bool | None = None
    remapped_correctable: int | None = None
    remapped_uncorrectable: int | None = None
    remapped_pending: bool | None = None
    remapped_failure: bool | None = None


class MigDevice(_Model, kw_only=True):
    index: int
    uuid: str | None = None
    memory_total_mib: int | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    slices: int | None = None


class GpuProcess(_Model, kw_only=True):
    pid: int
    name: str | None = None
    used_memory_mib: int | None = None
    #: compute or graphics
    kind: str | None = None


class Gpu(_Model, kw_only=True):
    index: int
    name: str | None = None
    uuid: str | None = None
    bus_id: str | None = None
    serial: str | None = None
    vbios: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    compute_capability: str | None = None  # '"major.minor", e.g. "8.0"'
    pcie: Pcie | None = None
    power_limit_w: float | None = None
    power_draw_w: float | None = None
    temperature_c: int | None = None
    utilization_gpu_pct: int | None = None
    utilization_memory_pct: int | None = None
    fan_pct: int | None = None
    clock_sm_mhz: int | None = None
    clock_sm_max_mhz: int | None = None
    ecc: Ecc | None = None
    mig_mode_current: bool | None = None
    mig_mode_pending: bool | None = None
    mig_devices: list[MigDevice] | None = None
    persistence_mode: bool | None = None
    compute_mode: str | None = None
    #: active clock-event / throttle reasons, by NVML name (sw_power_cap, hw_slowdown, ...)
    throttle_reasons: list[str] | None = None
    processes: list[GpuProcess] | None = None
    #: field -> why NVML could not give it (NotSupported, GPU is lost, function missing in this driver)
    unavailable: dict[str, str] = {}


class NvidiaInfo(Section, kw_only=True):
    pci_devices: list[PciDevice] | None = None
    kernel_module: KernelModule | None = None
    device_nodes: list[str] | None = None
    #: /dev/dxg exists (WSL2 GPU paravirtualisation)
    dxg: bool | None = None
    nvml: NvmlStatus | None = None
    nvml_library: str | None = None
    driver_version: str | None = None
    #: highest CUDA the driver supports, encoded 1000*major + 10*minor (12020 = 12.2)
    cuda_driver_version: int | None = None
    gpus: list[Gpu] | None = None
    #: topology[i][j] is the link between GPU i and j: "X", "NV12", "PIX", "PXB", "PHB", "NODE", "SYS"
    topology: list[list[str]] | None = None
    #: nvidia-fabricmanager state on NVSwitch systems ("active", "inactive", None when unknown)
    fabric_manager: str | None = None
    #: what `nvidia-smi` itself printed (or why it could not run) when NVML failed to initialise
    nvidia_smi_output: str | None = None
    #: layer (pci, kernel_module, device_nodes, nvml, topology, fabric_manager) -> why it could not be read
    unavailable: dict[str, str] | None = None


# --------------------------------------------------------------------------- cuda user space


class CudaLibrary(_Model, kw_only=True):
    #: short name: cudart, cuda, cudnn, cublas, nccl, nvml
    name: str
    soname: str | None = None
    path: str | None = None
    #: version as the library's own version function reports it, dotted ("12.4.1", "9.1.0")
    version: str | None = None
    #: where the file comes from: wheel, ld_library_path, toolkit, system, conda, wsl
    origin: str | None = None
    error: str | None = None


class CudaToolkit(_Model, kw_only=True):
    path: str
    version: str | None = None
    nvcc: str | None = None


class CudaInfo(Section, kw_only=True):
    toolkits: list[CudaToolkit] | None = None
    nvcc_on_path: list[str] | None = None
    nvcc_version: str | None = None
    cuda_home: str | None = None
    usr_local_cuda_target: str | None = None
    libraries: list[CudaLibrary] | None = None
    #: cudaRuntimeGetVersion of the runtime found (13000 = 13.0)
    runtime_version: int | None = None
    #: cudaDriverGetVersion: 0 means *no driver*, not "too old"
    driver_version: int | None = None
    #: cudaGetDeviceCount's return code and count (35 insufficient driver, 100 no device, 802 fabric manager)
    device_count_code: int | None = None
    device_count: int | None = None
    #: cuInit's return code (999 after suspend / cgroup loss)
    cu_init_code: int | None = None
    #: every nvcc on PATH (``which -a`` order) -> its version ("13.0.88"), None when it did not answer
    nvcc_versions: dict[str, str | None] | None = None


# --------------------------------------------------------------------------- tpu


class TpuHolder(_Model, kw_only=True):
    pid: int
    command: str | None = None
    device: str


class TpuInfo(Section, kw_only=True):
    pci_devices: list[PciDevice] | None = None
    #: TPU generation read from the PCI device id ("v4", "v5e", ...)
    generation: str | None = None
    accel_nodes: list[str] | None = None
    vfio_nodes: list[str] | None = None
    libtpu_version: str | None = None
    env: dict[str, str] = {}
    holders: list[TpuHolder] | None = None
    #: False when some processes' fds could not be read (not root): a holder may be missing
    holders_complete: bool | None = None
    lockfile: str | None = None


# --------------------------------------------------------------------------- frameworks


class LoadedLibrary(_Model, kw_only=True):
    soname: str
    path: str
    origin: str | None = None


class FrameworkDevices(_Model, kw_only=True):
    """What a child interpreter that imported the framework saw (``--deep``)."""

    ok: bool
    error: str | None = None
    #: the version the imported framework reports (``torch.__version__``)
    version: str | None = None
    seconds: float | None = None
    import_seconds: float | None = None
    gpu_available: bool | None = None
    device_count: int | None = None
    devices: list[str] = []
    #: build facts as the imported framework reports them (may refine the static ones)
    cuda_build: str | None = None
    cudnn_build: str | None = None
    cudnn_loaded: str | None = None
    arch_list: list[str] | None = None
    loaded_libraries: list[LoadedLibrary] = []


class Framework(_Model, kw_only=True):
    name: str
    installed: bool
    #: distribution that provides it (torch, tensorflow, tensorflow-cpu, jax, jaxlib, ...)
    distribution: str | None = None
    version: str | None = None
    location: str | None = None
    #: "cuda", "rocm", "cpu", "tpu" or None when the static files do not say
    build: str | None = None
    cuda_build: str | None = None
    cudnn_build: str | None = None
    #: code the build carries: sm_80, compute_90, ... (None when unknown)
    arch_list: list[str] | None = None
    #: plugins / companion wheels: jax-cuda12-plugin, libtpu, ...
    plugins: dict[str, str] = {}
    #: ROCm/HIP version of a ROCm build (torch.version.hip), None otherwise
    rocm_build: str | None = None
    #: source commit the build came from (torch.version.git_version)
    git_version: str | None = None
    deep: FrameworkDevices | None = None
    error: str | None = None


class FrameworksInfo(Section, kw_only=True):
    frameworks: list[Framework] = []
    #: nvidia-* wheels in the environment: name -> version (nvidia-cudnn-cu12 -> 9.1.0.70)
    nvidia_wheels: dict[str, str] | None = None


# --------------------------------------------------------------------------- pasted reports


class PastedLine(_Model, kw_only=True):
    """An error or warning line found in a pasted report: the verdict its own program printed
    ("The NVIDIA driver on your system is too old (found version 11040)")."""

    #: message family (``envcheck.ingest.messages``): torch-driver-too-old, cuda-no-device, ...
    kind: str
    #: the line as pasted, trimmed
    text: str
    #: what the line states, parsed: found_version=11040, cc=12.0, loaded=8.0.4, ...
    values: dict[str, str] = {}
    #: 1-based line number in the input
    line: int | None = None


class PasteInfo(_Model, kw_only=True):
    """What a pasted text held, beyond the machine facts: which dumps, which error lines."""

    #: dump formats recognised, in order of first appearance (collect_env, nvidia-smi, pip-list, ...)
    kinds: list[str] = []
    lines: list[PastedLine] = []
    #: the paste stops inside a dump (an excerpt cut short): missing facts may exist on the machine
    truncated: bool | None = None
    #: facts two parts of the paste disagree on ("nvidia.driver_version: 535.54.03 vs 550.54.14");
    #: the first one is kept
    conflicts: list[str] = []
    #: a line showing the errors come from inside a container ("docker run --gpus all ...")
    container_hint: str | None = None
    #: runtimes ``docker info`` lists (runc, nvidia, ...) when the paste has it
    docker_runtimes: list[str] | None = None
    #: a line showing the run asked for an NVIDIA GPU ("docker run --gpus all", "--runtime=nvidia",
    #: ``model.to("cuda")``, a title naming the GPU problem): a CPU build there is the fault
    gpu_wanted: str | None = None
    #: the CUDA and cuDNN a report's form says are installed ("CUDA/cuDNN version: 11.8/8.6"): a claim
    #: typed by the user, not a listing, so verdicts resting on it say they assumed it
    stated_cuda: str | None = None
    stated_cudnn: str | None = None
    #: the GPU list comes from a full inventory (an nvidia-smi table, -q or -L, or collect_env) that
    #: was not cut short; False when GPUs are known only from log lines or a cut table
    gpus_complete: bool | None = None


# --------------------------------------------------------------------------- snapshot


class Snapshot(_Model, kw_only=True):
    """Every fact envcheck knows about one machine; sections are None when not collected."""

    #: probe, or for pasted text the main dump it held (collect_env, nvidia-smi, ..., paste)
    source: str = "probe"
    system: SystemInfo | None = None
    cpu: CpuInfo | None = None
    memory: MemoryInfo | None = None
    disk: DiskInfo | None = None
    nvidia: NvidiaInfo | None = None
    cuda: CudaInfo | None = None
    tpu: TpuInfo | None = None
    frameworks: FrameworksInfo | None = None
    #: set when the facts come from pasted text (``envcheck diagnose``); None for probes
    paste: PasteInfo | None = None

    def framework(self, name: str) -> Framework | None:
        """The installed framework called ``name``, or None."""
        if self.frameworks is None:
            return None
        return next((f for f in self.frameworks.frameworks if f.name == name and f.installed), None)


# --------------------------------------------------------------------------- verdicts


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Finding(_Model, kw_only=True):
    #: stable identifier (e.g. "driver-too-old"); documented in README
    id: str
    severity: Severity
    summary: str
    #: the facts the verdict used, so a reader can check it
    facts: dict[str, Any] = {}
    #: what to do, in words
    fix: str | None = None
    #: the exact commands that fix it, in order
    commands: list[str] = []
    #: the GPU / framework it concerns, when it concerns one
    subject: str | None = None


class SkippedRule(_Model, kw_only=True):
    id: str
    reason: str


class ProbeTiming(_Model, kw_only=True):
    name: str
    seconds: float
    status: str = "ok"


class Report(_Model, kw_only=True):
    schema_version: str = SCHEMA_VERSION
    tool: str = "envcheck"
    tool_version: str
    created_at: str
    snapshot: Snapshot
    findings: list[Finding] = []
    skipped: list[SkippedRule] = []
    timings: list[ProbeTiming] = []

    @property
    def has_errors(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.findings)
