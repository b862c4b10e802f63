"""The one door to NVML: lazy pynvml, readable failures, tolerance of old drivers.

Why a wrapper rather than pynvml everywhere: pynvml raises one exception class per return
code, a driver older than the bindings lacks newer symbols (FunctionNotFound), and importing
pynvml costs ~30 ms that a machine without the driver should not pay. Callers get plain values
or an :class:`NvmlError` carrying the real NVML code and a reason a person can read; nothing
from pynvml leaks out. Tests replace the backend (``_state.backend``) with a fake module.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from envcheck.errors import EnvcheckError

#: the soname pynvml loads on Linux; checked first so a driverless machine skips the import
LIBRARY = "libnvidia-ml.so.1"

# nvmlReturn_t codes (nvml.h) that envcheck explains; values are part of NVML's ABI.
SUCCESS = 0
INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
INSUFFICIENT_SIZE = 7
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
LIB_RM_VERSION_MISMATCH = 18
UNKNOWN = 999

# Enum values the probe passes to NVML (nvml.h); stable across driver versions.
TEMPERATURE_GPU = 0
CLOCK_SM = 1
MEMORY_ERROR_CORRECTED = 0
MEMORY_ERROR_UNCORRECTED = 1
VOLATILE_ECC = 0
AGGREGATE_ECC = 1
RETIRED_MULTIPLE_SINGLE_BIT = 0
RETIRED_DOUBLE_BIT = 1
NVLINK_DEVICE_TYPE_SWITCH = 2
NVLINK_MAX_LINKS = 36  # NVML_NVLINK_MAX_LINKS in the 13.x headers; probing stops at a GPU's first error
FABRIC_NOT_SUPPORTED, FABRIC_NOT_STARTED, FABRIC_IN_PROGRESS, FABRIC_COMPLETED = 0, 1, 2, 3
#: nvmlGpuTopologyLevel_t -> the label ``nvidia-smi topo -m`` prints (0: two GPUs on one board)
TOPOLOGY_LABELS = {0: "PIX", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}
#: nvmlComputeMode_t -> nvidia-smi's name
COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
#: nvmlClocksEventReason* / nvmlClocksThrottleReason* bits (same values under both names)
CLOCK_EVENT_REASONS = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}

_READABLE = {
    NOT_SUPPORTED: "not supported by this GPU or driver (NotSupported)",
    NO_PERMISSION: "no permission (NoPermission)",
    NOT_FOUND: "not found (NotFound)",
    DRIVER_NOT_LOADED: "NVIDIA kernel driver not loaded",
    LIBRARY_NOT_FOUND: f"NVML library not found ({LIBRARY} cannot be loaded)",
    FUNCTION_NOT_FOUND: "function not in this driver",
    GPU_IS_LOST: "GPU is lost",
    LIB_RM_VERSION_MISMATCH: "driver/library version mismatch (kernel module and libnvidia-ml differ)",
    UNKNOWN: "unknown error (Unknown)",
}
_VALUE_NOT_AVAILABLE = 2**64 - 1  # NVML_VALUE_NOT_AVAILABLE for unsigned long long fields


class NvmlError(EnvcheckError):
    """An NVML call failed; ``code`` is NVML's own return code, ``reason`` says it in words."""

    def __init__(self, code: int | None, name: str, reason: str, function: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.name = name
        self.reason = reason
        self.function = function


class _ProcessInfoV1(ctypes.Structure):
    """nvmlProcessInfo_v1_t: what the unversioned process queries of drivers before R450 fill."""

    _fields_ = (("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong))


class _State:
    def __init__(self) -> None:
        #: pynvml once loaded; tests put a fake module here (monkeypatch ``_nvml._state.backend``)
        self.backend: Any = None
        self.lock = threading.Lock()
        #: NVML_ERROR_* names by code, scanned once per backend (old GPUs answer NotSupported a lot)
        self.names: dict[int, str] = {}
        self.names_of: Any = None


_state = _State()


def _load() -> Any:
    """pynvml, imported on first use; a missing NVML library is reported without importing it."""
    with _state.lock:
        if _state.backend is None:
            try:  # exactly pynvml's own load (CDLL of the soname), minus its ~30 ms import
                ctypes.CDLL(LIBRARY)
            except OSError as exc:
                why = f"{_READABLE[LIBRARY_NOT_FOUND]}: {exc}"
                raise NvmlError(LIBRARY_NOT_FOUND, "NVML_ERROR_LIBRARY_NOT_FOUND", why) from None
            try:
                import pynvml
            except ImportError as exc:
                raise NvmlError(None, "BINDINGS_MISSING", f"nvidia-ml-py is not installed ({exc})") from None
            _state.backend = pynvml
        return _state.backend


def _name_of(lib: Any, code: int) -> str:
    """NVML's constant name for a return code ("NVML_ERROR_LIB_RM_VERSION_MISMATCH")."""
    if _state.names_of is not lib:
        constants = vars(lib).items()
        _state.names = {v: k for k, v in constants if k.startswith("NVML_ERROR_") and isinstance(v, int)}
        _state.names_of = lib
    return _state.names.get(code) or ("NVML_SUCCESS" if code == SUCCESS else f"NVML_ERROR_{code}")


def _translate(lib: Any, exc: BaseException, function: str | None) -> NvmlError:
    """A pynvml exception as an NvmlError with the real code and a readable reason."""
    code = getattr(exc, "value", None)
    if not isinstance(code, int):
        return NvmlError(None, type(exc).__name__, f"{type(exc).__name__}: {exc}", function)
    reason = _READABLE.get(code) or f"{exc} (NVML error {code})"
    if code == FUNCTION_NOT_FOUND and function:
        reason = f"{reason}: {function}"
    return NvmlError(code, _name_of(lib, code), reason, function)


def _decode(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def call(function: str, *args: Any) -> Any:
    """``pynvml.<function>(*args)``; raises NvmlError, never a pynvml exception."""
    lib = _load()
    func = getattr(lib, function, None)
    if func is None:  # bindings older than the function
        raise NvmlError(
            FUNCTION_NOT_FOUND,
            "NVML_ERROR_FUNCTION_NOT_FOUND",
            f"function not in these nvidia-ml-py bindings: {function}",
            function,
        )
    try:
        return _decode(func(*args))
    except lib.NVMLError as exc:
        raise _translate(lib, exc, function) from None
    except UnicodeDecodeError as exc:  # garbage strings from a confused driver
        raise NvmlError(UNKNOWN, "NVML_ERROR_UNKNOWN", f"undecodable answer: {exc}", function) from None


def call_first(functions: Sequence[str], *args: Any) -> Any:
    """The first of ``functions`` this driver has (newest name first), called with ``args``."""
    missing: NvmlError | None = None
    for function in functions:
        try:
            return call(function, *args)
        except NvmlError as exc:
            if exc.code != FUNCTION_NOT_FOUND:
                raise
            missing = exc
    assert missing is not None
    raise NvmlError(
        FUNCTION_NOT_FOUND,
        missing.name,
        f"function not in this driver: {' / '.join(functions)}",
        functions[0],
    )


def init() -> None:
    """Start NVML (refcounted by the library itself); raises NvmlError with the init code."""
    call("nvmlInit")


def shutdown() -> None:
    """Release NVML; errors at shutdown do not matter to a report."""
    with suppress(NvmlError):
        call("nvmlShutdown")


def library_loaded() -> bool:
    """Whether the NVML shared library got loaded into this process (its path is then in maps)."""
    return _state.backend is not None and getattr(_state.backend, "nvmlLib", None) is not None


def clock_event_reasons(handle: Any) -> list[str]:
    """Active clock-event (throttle) reasons by name; the old "throttle" symbol on drivers < R535."""
    functions = ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")
    mask = int(call_first(functions, handle))
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    rest = mask & ~sum(CLOCK_EVENT_REASONS)
    if rest:
        names.append(f"unknown_{rest:#x}")
    return names


def running_processes(handle: Any, kind: str) -> list[tuple[int, int | None]]:
    """(pid, used bytes or None) of ``kind`` ("Compute" or "Graphics") processes on a GPU.

    The ``_v2`` query fills the 24-byte v2 struct on every driver that has it; the ``_v3``
    struct changed size between drivers (R535 added a field, R550 dropped it again; nvitop's
    libnvml works around the same trap), so it is only a fallback. Old drivers (before the
    MIG-era headers) only have the unversioned query, which fills the v1 struct that current
    bindings no longer wrap.
    """
    versioned = f"nvmlDeviceGet{kind}RunningProcesses"
    try:
        procs = call_first((f"{versioned}_v2", f"{versioned}_v3"), handle)
    except NvmlError as exc:
        if exc.code != FUNCTION_NOT_FOUND:
            raise
        return _processes_v1(versioned, handle)
    out: list[tuple[int, int | None]] = []
    for p in procs:
        used = getattr(p, "usedGpuMemory", None)
        out.append((int(p.pid), None if used is None or used == _VALUE_NOT_AVAILABLE else int(used)))
    return out


def _processes_v1(symbol: str, handle: Any) -> list[tuple[int, int | None]]:
    lib = _load()
    try:
        fn = lib._nvmlGetFunctionPointer(symbol)
        count = ctypes.c_uint(0)
        ret = fn(handle, ctypes.byref(count), None)
        if ret == SUCCESS:
            return []
        if ret != INSUFFICIENT_SIZE:
            raise lib.NVMLError(ret)
        count.value = count.value * 2 + 5  # room for processes started between the two calls
        infos = (_ProcessInfoV1 * count.value)()
        ret = fn(handle, ctypes.byref(count), infos)
        if ret != SUCCESS:
            raise lib.NVMLError(ret)
    except lib.NVMLError as exc:
        raise _translate(lib, exc, symbol) from None
    found = [(int(infos[i].pid), int(infos[i].usedGpuMemory)) for i in range(count.value)]
    return [(pid, None if used == _VALUE_NOT_AVAILABLE else used) for pid, used in found]


def fabric_info(handle: Any) -> tuple[int, int]:
    """(fabric state, fabric status code) of a GPU on an NVSwitch fabric (Hopper and later)."""
    lib = _load()
    struct = getattr(lib, "c_nvmlGpuFabricInfo_t", None)
    if struct is None:
        raise NvmlError(
            FUNCTION_NOT_FOUND,
            "NVML_ERROR_FUNCTION_NOT_FOUND",
            "function not in these nvidia-ml-py bindings: nvmlDeviceGetGpuFabricInfo",
        )
    info = struct()
    call("nvmlDeviceGetGpuFabricInfo", handle, ctypes.byref(info))
    return int(info.state), int(info.status)


def nvlink(handle: Any, link: int) -> tuple[bool, str | None, int | None]:
    """(active, remote PCI bus id, remote device type or None when unknown) of one NVLink."""
    active = bool(call("nvmlDeviceGetNvLinkState", handle, link))
    if not active:
        return False, None, None
    remote = call("nvmlDeviceGetNvLinkRemotePciInfo", handle, link)
    bus_id = _decode(getattr(remote, "busId", None)) or None
    try:
        kind: int | None = int(call("nvmlDeviceGetNvLinkRemoteDeviceType", handle, link))
    except NvmlError:
        kind = None  # older drivers cannot say; the caller infers it from the bus id
    return True, bus_id, kind
