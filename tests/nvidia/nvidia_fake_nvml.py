"""A stand-in for the ``pynvml`` module whose answers come from a recorded machine.

It implements the pynvml functions envcheck calls, with pynvml's signatures and units (mW,
bytes, structs with the same field names), and fails the way NVML does: by raising the real
``pynvml.NVMLError`` subclasses with the real return codes. Tests install it with
``monkeypatch.setattr(_nvml._state, "backend", fake)``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pynvml
from nvidia_captures import NA, NOT_FOUND, Machine

MIB = 1024 * 1024

#: symbol -> record field: when no GPU of the capture has the field at all, the recorded
#: driver's NVML did not have the symbol (nvidia-smi prints every section its NVML offers).
GATED = {
    "nvmlDeviceGetGpuMaxPcieLinkGeneration": "pcie_gen_device_max",
    "nvmlDeviceGetRemappedRows": "remapped_rows",
    "nvmlDeviceGetMigMode": "mig_mode",
    "nvmlDeviceGetMaxMigDeviceCount": "mig_mode",
    "nvmlDeviceGetMigDeviceHandleByIndex": "mig_mode",
    "nvmlDeviceGetGpuFabricInfo": "fabric",
}
#: the versioned process queries (v2 struct) arrived with MIG in the R450 drivers; older
#: drivers only export the unversioned one (v1 struct). An assumption from the NVML header
#: history, not from a capture.
VERSIONED_PROCESS_QUERIES_SINCE = 450
#: NVIDIA's A100/H100 documentation: up to 7 MIG instances per GPU (not printed by nvidia-smi)
MAX_MIG_DEVICES = 7
_MODES = {"C": ("Compute",), "G": ("Graphics",), "C+G": ("Compute", "Graphics")}


class FakeHandle:
    def __init__(self, index: int, mig: dict[str, Any] | None = None) -> None:
        self.index = index
        self.mig = mig

    def __repr__(self) -> str:
        return f"<FakeHandle gpu={self.index}{' mig' if self.mig else ''}>"


class FakeNvml:
    """One recorded machine behind pynvml's API; ``init_error`` makes nvmlInit fail instead."""

    def __init__(self, machine: Machine | None, init_error: int | None = None) -> None:
        for name, value in vars(pynvml).items():
            if name.startswith(("NVML", "c_nvml", "nvmlClocks")):
                setattr(self, name, value)
        self.machine = machine
        self.init_error = init_error
        # pynvml keeps the CDLL here once libnvidia-ml.so.1 is loaded (every code except 12)
        self.nvmlLib = None if init_error == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND else object()
        self.initialized = 0
        self.calls: list[tuple[str, int | None]] = []
        self.failures: dict[tuple[str, int | None], int] = {}
        self.lost: set[int] = set()
        self.missing: set[str] = set()
        self.links: list[list[tuple[str, int]]] = []
        if machine is not None:
            self._derive_missing(machine)
            self.links = self._derive_links(machine)

    # ----------------------------------------------------------------- test controls

    def fail(self, function: str, code: int, gpu: int | None = None) -> None:
        """Make ``function`` raise NVML error ``code`` (for one GPU, or always)."""
        self.failures[(function, gpu)] = code

    def lose(self, gpu: int) -> None:
        """The GPU falls off the bus after its handle was taken: every query on it raises GPU_IS_LOST."""
        self.lost.add(gpu)

    def drop(self, function: str) -> None:
        """Pretend the driver predates ``function``."""
        self.missing.add(function)

    def queried(self, gpu: int) -> list[str]:
        return [f for f, i in self.calls if i == gpu]

    # ----------------------------------------------------------------- machinery

    def _derive_missing(self, machine: Machine) -> None:
        for symbol, key in GATED.items():
            if all(key not in g for g in machine.gpus):
                self.missing.add(symbol)
        if all(g.get("clock_reasons", (None,))[0] != "event" for g in machine.gpus):
            self.missing.add("nvmlDeviceGetCurrentClocksEventReasons")
        if int(machine.driver_version.split(".")[0]) < VERSIONED_PROCESS_QUERIES_SINCE:
            for kind in ("Compute", "Graphics"):
                self.missing |= {
                    f"nvmlDeviceGet{kind}RunningProcesses_v2",
                    f"nvmlDeviceGet{kind}RunningProcesses_v3",
                }

    @staticmethod
    def _derive_links(machine: Machine) -> list[list[tuple[str, int]]]:
        """NVLinks per GPU as (remote bus id, remote device type) from the topo matrix.

        All pairs at the same NV<n> on more than two GPUs is an NVSwitch system: n links from
        each GPU to the switches (whose bus ids are not recorded; placeholders here).
        """
        n = len(machine.gpus)
        links: list[list[tuple[str, int]]] = [[] for _ in range(n)]
        topo = machine.topology
        if topo is None:
            return links
        off_diagonal = {topo.cells[i][j] for i in range(n) for j in range(n) if i != j}
        if n > 2 and len(off_diagonal) == 1 and next(iter(off_diagonal)).startswith("NV"):
            count = int(next(iter(off_diagonal))[2:])
            for i in range(n):
                links[i] = [
                    (f"00000000:{0xE0 + k % 4:02X}:00.0", pynvml.NVML_NVLINK_DEVICE_TYPE_SWITCH)
                    for k in range(count)
                ]
            return links
        for i in range(n):
            for j in range(n):
                cell = topo.cells[i][j]
                if i != j and cell.startswith("NV"):
                    links[i] += [(machine.gpus[j]["bus_id"], pynvml.NVML_NVLINK_DEVICE_TYPE_GPU)] * int(
                        cell[2:]
                    )
        return links

    def _enter(self, function: str, handle: FakeHandle | None = None) -> None:
        index = handle.index if handle is not None else None
        self.calls.append((function, index))
        if not self.initialized:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        if function in self.missing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        code = self.failures.get((function, index), self.failures.get((function, None)))
        if code is not None:
            raise pynvml.NVMLError(code)
        if index in self.lost and function != "nvmlDeviceGetHandleByIndex":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    def _rec(self, handle: FakeHandle, key: str, part: int | None = None) -> Any:
        assert self.machine is not None
        value = self.machine.gpus[handle.index].get(key)
        if isinstance(value, tuple) and part is not None:
            value = value[part]
        if value is None or value is NA:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if value is NOT_FOUND:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return value

    def _query(
        self, function: str, key: str, convert: Callable[[Any], Any] = lambda v: v
    ) -> Callable[..., Any]:
        def query(handle: FakeHandle, *_: Any) -> Any:
            self._enter(function, handle)
            return convert(self._rec(handle, key))

        return query

    # ----------------------------------------------------------------- system

    def nvmlInit(self) -> None:
        self.calls.append(("nvmlInit", None))
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        assert self.machine is not None
        return self.machine.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        assert self.machine is not None
        if self.machine.cuda_version is NOT_FOUND:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        major, minor = str(self.machine.cuda_version).split(".")
        return int(major) * 1000 + int(minor) * 10

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        assert self.machine is not None
        return len(self.machine.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        handle = FakeHandle(index)
        self._enter("nvmlDeviceGetHandleByIndex", handle)
        return handle

    # ----------------------------------------------------------------- identity, memory, PCIe

    def __getattr__(self, name: str) -> Any:
        simple = {
            "nvmlDeviceGetName": ("name", str),
            "nvmlDeviceGetSerial": ("serial", str),
            "nvmlDeviceGetVbiosVersion": ("vbios", str),
            "nvmlDeviceGetCurrPcieLinkGeneration": ("pcie_gen_current", int),
            "nvmlDeviceGetMaxPcieLinkGeneration": ("pcie_gen_max", int),
            "nvmlDeviceGetGpuMaxPcieLinkGeneration": ("pcie_gen_device_max", int),
            "nvmlDeviceGetCurrPcieLinkWidth": ("pcie_width_current", int),
            "nvmlDeviceGetMaxPcieLinkWidth": ("pcie_width_max", int),
            "nvmlDeviceGetPcieReplayCounter": ("replay_counter", int),
            "nvmlDeviceGetEnforcedPowerLimit": ("power_limit_w", lambda w: round(w * 1000)),
            "nvmlDeviceGetPowerUsage": ("power_draw_w", lambda w: round(w * 1000)),
            "nvmlDeviceGetTemperature": ("temperature_c", int),
            "nvmlDeviceGetFanSpeed": ("fan_pct", int),
            "nvmlDeviceGetPersistenceMode": ("persistence", int),
            "nvmlDeviceGetComputeMode": ("compute_mode", int),
            "nvmlDeviceGetCudaComputeCapability": ("compute_capability", tuple),
            "nvmlDeviceGetRemappedRows": ("remapped_rows", tuple),
        }
        if name in simple:
            key, convert = simple[name]
            return self._query(name, key, convert)
        raise AttributeError(name)  # not in these bindings

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        self._enter("nvmlDeviceGetUUID", handle)
        if handle.mig is not None:  # MIG UUIDs are not in the captures
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return str(self._rec(handle, "uuid"))

    def nvmlDeviceGetPciInfo(self, handle: FakeHandle) -> Any:
        self._enter("nvmlDeviceGetPciInfo", handle)
        return SimpleNamespace(busId=str(self._rec(handle, "bus_id")).encode())

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle) -> Any:
        self._enter("nvmlDeviceGetMemoryInfo", handle)
        if handle.mig is not None:
            return SimpleNamespace(
                total=handle.mig["memory_total_mib"] * MIB, used=handle.mig["memory_used_mib"] * MIB
            )
        total, used = self._rec(handle, "memory_total_mib"), self._rec(handle, "memory_used_mib")
        return SimpleNamespace(total=total * MIB, used=used * MIB, free=(total - used) * MIB)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> Any:
        self._enter("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=self._rec(handle, "util_gpu"), memory=self._rec(handle, "util_memory"))

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, clock: int) -> int:
        self._enter("nvmlDeviceGetClockInfo", handle)
        assert clock == pynvml.NVML_CLOCK_SM
        return int(self._rec(handle, "clock_sm"))

    def nvmlDeviceGetMaxClockInfo(self, handle: FakeHandle, clock: int) -> int:
        self._enter("nvmlDeviceGetMaxClockInfo", handle)
        assert clock == pynvml.NVML_CLOCK_SM
        return int(self._rec(handle, "clock_sm_max"))

    # ----------------------------------------------------------------- ECC

    def nvmlDeviceGetEccMode(self, handle: FakeHandle) -> list[int]:
        self._enter("nvmlDeviceGetEccMode", handle)
        return [self._rec(handle, "ecc_mode", 0), self._rec(handle, "ecc_mode", 1)]

    def nvmlDeviceGetTotalEccErrors(self, handle: FakeHandle, error_type: int, counter: int) -> int:
        self._enter("nvmlDeviceGetTotalEccErrors", handle)
        key = "ecc_volatile" if counter == pynvml.NVML_VOLATILE_ECC else "ecc_aggregate"
        part = 0 if error_type == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else 1
        return int(self._rec(handle, key, part))

    def nvmlDeviceGetRetiredPages(self, handle: FakeHandle, cause: int) -> list[int]:
        self._enter("nvmlDeviceGetRetiredPages", handle)
        retired = self._rec(handle, "retired")
        pages = retired.get(
            "sbe" if cause == pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS else "dbe"
        )
        if pages is None or pages is NA:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return list(pages)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetRetiredPagesPendingStatus", handle)
        pending = self._rec(handle, "retired").get("pending")
        if pending is None or pending is NA:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(pending)

    # ----------------------------------------------------------------- MIG

    def nvmlDeviceGetMigMode(self, handle: FakeHandle) -> list[int]:
        self._enter("nvmlDeviceGetMigMode", handle)
        return [self._rec(handle, "mig_mode", 0), self._rec(handle, "mig_mode", 1)]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount", handle)
        return MAX_MIG_DEVICES if self._rec(handle, "mig_mode", 0) else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeHandle, index: int) -> FakeHandle:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex", handle)
        devices = {d["index"]: d for d in self._rec(handle, "mig_devices")}
        if index not in devices:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return FakeHandle(handle.index, devices[index])

    def nvmlDeviceGetGpuInstanceId(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetGpuInstanceId", handle)
        if handle.mig is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(handle.mig["gpu_instance_id"])

    def nvmlDeviceGetComputeInstanceId(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetComputeInstanceId", handle)
        if handle.mig is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return int(handle.mig["compute_instance_id"])

    def nvmlDeviceGetAttributes(self, handle: FakeHandle) -> Any:
        self._enter("nvmlDeviceGetAttributes", handle)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)  # slice counts are not in the captures

    # ----------------------------------------------------------------- clocks, processes

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle)
        return int(self._rec(handle, "clock_reasons", 1))

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: FakeHandle) -> int:
        self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        return int(self._rec(handle, "clock_reasons", 1))

    def _processes(self, handle: FakeHandle, kind: str) -> list[tuple[int, int | None]]:
        assert self.machine is not None
        procs = self.machine.gpus[handle.index].get("processes", [])
        return [
            (p["pid"], None if p["used_mib"] is NA else p["used_mib"] * MIB)
            for p in procs
            if kind in _MODES.get(str(p["type"]), ())
        ]

    def _versioned_processes(self, kind: str, version: str) -> Callable[[FakeHandle], list[Any]]:
        def query(handle: FakeHandle) -> list[Any]:
            self._enter(f"nvmlDeviceGet{kind}RunningProcesses_{version}", handle)
            return [
                SimpleNamespace(
                    pid=pid, usedGpuMemory=used, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF
                )
                for pid, used in self._processes(handle, kind)
            ]

        return query

    @property
    def nvmlDeviceGetComputeRunningProcesses_v2(self) -> Callable[[FakeHandle], list[Any]]:
        return self._versioned_processes("Compute", "v2")

    @property
    def nvmlDeviceGetComputeRunningProcesses_v3(self) -> Callable[[FakeHandle], list[Any]]:
        return self._versioned_processes("Compute", "v3")

    @property
    def nvmlDeviceGetGraphicsRunningProcesses_v2(self) -> Callable[[FakeHandle], list[Any]]:
        return self._versioned_processes("Graphics", "v2")

    @property
    def nvmlDeviceGetGraphicsRunningProcesses_v3(self) -> Callable[[FakeHandle], list[Any]]:
        return self._versioned_processes("Graphics", "v3")

    def _nvmlGetFunctionPointer(self, name: str) -> Callable[..., int]:
        """The C entry point, for the unversioned (v1 struct) process queries of old drivers."""
        if name in self.missing or self.nvmlLib is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        kind = {
            "nvmlDeviceGetComputeRunningProcesses": "Compute",
            "nvmlDeviceGetGraphicsRunningProcesses": "Graphics",
        }.get(name)
        if kind is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

        def c_function(handle: FakeHandle, count_ref: Any, infos: Any) -> int:
            """nvmlReturn_t f(nvmlDevice_t, unsigned int *infoCount, nvmlProcessInfo_v1_t *infos)."""
            try:
                self._enter(name, handle)
            except pynvml.NVMLError as exc:
                return int(exc.value)
            procs = self._processes(handle, kind)
            count: ctypes.c_uint = count_ref._obj
            if infos is None or count.value < len(procs):
                count.value = len(procs)
                return pynvml.NVML_SUCCESS if not procs else pynvml.NVML_ERROR_INSUFFICIENT_SIZE
            for i, (pid, used) in enumerate(procs):
                infos[i].pid = pid
                infos[i].usedGpuMemory = used if used is not None else 2**64 - 1
            count.value = len(procs)
            return pynvml.NVML_SUCCESS

        return c_function

    # ----------------------------------------------------------------- links, fabric

    def nvmlDeviceGetNvLinkState(self, handle: FakeHandle, link: int) -> int:
        self._enter("nvmlDeviceGetNvLinkState", handle)
        links = self.links[handle.index] if self.links else []
        if not links:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if link >= len(links):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return pynvml.NVML_FEATURE_ENABLED

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle: FakeHandle, link: int) -> Any:
        self._enter("nvmlDeviceGetNvLinkRemotePciInfo", handle)
        return SimpleNamespace(busId=self.links[handle.index][link][0].encode())

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle: FakeHandle, link: int) -> int:
        self._enter("nvmlDeviceGetNvLinkRemoteDeviceType", handle)
        return self.links[handle.index][link][1]

    def nvmlDeviceGetTopologyCommonAncestor(self, first: FakeHandle, second: FakeHandle) -> int:
        self._enter("nvmlDeviceGetTopologyCommonAncestor", first)
        assert self.machine is not None
        topo = self.machine.topology
        if topo is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        cell = topo.cells[first.index][second.index]
        if cell.startswith("NV"):  # the PCIe path under the NVLinks is not printed: infer it from NUMA
            same_node = topo.numa[first.index] == topo.numa[second.index]
            return pynvml.NVML_TOPOLOGY_NODE if same_node else pynvml.NVML_TOPOLOGY_SYSTEM
        levels = {
            "PIX": pynvml.NVML_TOPOLOGY_SINGLE,
            "PXB": pynvml.NVML_TOPOLOGY_MULTIPLE,
            "PHB": pynvml.NVML_TOPOLOGY_HOSTBRIDGE,
            "NODE": pynvml.NVML_TOPOLOGY_NODE,
            "SYS": pynvml.NVML_TOPOLOGY_SYSTEM,
        }
        return levels[cell]

    def nvmlDeviceGetGpuFabricInfo(self, handle: FakeHandle, info_ref: Any) -> int:
        self._enter("nvmlDeviceGetGpuFabricInfo", handle)
        state, status = self._rec(handle, "fabric")
        info_ref._obj.state = state
        info_ref._obj.status = status
        return pynvml.NVML_SUCCESS
