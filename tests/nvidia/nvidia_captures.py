"""Turn recorded ``nvidia-smi`` output (``-q`` text, ``-q -x`` XML, ``topo -m``) into fake NVML state.

Both formats become one tree of (key, value, children) nodes; ``record`` then reads each GPU
through a list of alternative paths (text label or XML tag). Conventions, so the fake answers
the way NVML did on the recorded machine:

- a value nvidia-smi printed as "N/A" becomes ``NA`` (the fake raises NotSupported);
- a section the capture does not print at all for any GPU means that driver's NVML lacks the
  function (the fake raises FunctionNotFound), e.g. no "Remapped Rows" on driver 430;
- "Not Found" (the K80 capture's CUDA version) becomes ``NOT_FOUND``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia"


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NA = _Marker("NA")
NOT_FOUND = _Marker("NOT_FOUND")


@dataclass
class Node:
    key: str
    value: str | None = None
    children: list[Node] = field(default_factory=list)

    def find(self, *path: str) -> Node | None:
        node: Node | None = self
        for key in path:
            node = next((c for c in node.children if c.key.lower() == key.lower()), None) if node else None
        return node

    def all(self, key: str) -> list[Node]:
        return [c for c in self.children if c.key.lower() == key.lower()]


# --------------------------------------------------------------------------- parsing

_TEXT_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[^:]+?)\s*:\s(?P<value>.*)$")


def parse_text(text: str) -> Node:
    """``nvidia-smi -q`` output as a tree (indentation gives nesting)."""
    root = Node("root")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in text.expandtabs(4).splitlines():
        if not line.strip() or line.startswith("="):
            continue
        indent = len(line) - len(line.lstrip(" "))
        m = _TEXT_LINE.match(line)
        node = Node(m["key"].strip(), m["value"].strip()) if m else Node(line.strip())
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def parse_xml(text: str) -> Node:
    """``nvidia-smi -q -x`` output as the same kind of tree."""

    def convert(elem: ET.Element) -> Node:
        kids = [convert(c) for c in elem]
        key = elem.tag if elem.tag != "gpu" else f"GPU {elem.get('id')}"
        return Node(key, None if kids else (elem.text or "").strip(), kids)

    return convert(ET.fromstring(text))


def load_tree(name: str) -> Node:
    text = (FIXTURES / name).read_text()
    return parse_xml(text) if name.endswith(".xml") else parse_text(text)


# --------------------------------------------------------------------------- values


def _value(raw: str | None) -> Any:
    if raw is None:
        return None
    text = raw.strip()
    if text in ("N/A", "[N/A]", "Not Supported", "[Not Supported]") or text.startswith(
        "Requested functionality"
    ):
        return NA
    if text == "Not Found":
        return NOT_FOUND
    return text


def _number(raw: Any) -> Any:
    """ "23028 MiB" -> 23028, "43.89 W" -> 43.89, "16x" -> 16; NA stays NA."""
    if raw is NA or raw is NOT_FOUND or raw is None:
        return raw
    m = re.match(r"^-?\d+(\.\d+)?", str(raw))
    if not m:
        return NA
    return float(m.group()) if m.group(1) else int(m.group())


def _flag(raw: Any) -> Any:
    if raw is NA or raw is None:
        return raw
    return 1 if str(raw).lower() in ("enabled", "yes", "active") else 0


def _first(gpu: Node, *paths: tuple[str, ...]) -> Node | None:
    for path in paths:
        node = gpu.find(*path)
        if node is not None:
            return node
    return None


def _get(gpu: Node, *paths: tuple[str, ...]) -> Any:
    """The value at the first path the capture has; None when the capture has none of them."""
    node = _first(gpu, *paths)
    if node is None:
        return None
    if node.children and node.value is None:
        return None
    return _value(node.value)


# --------------------------------------------------------------------------- one GPU

#: nvidia-smi labels (text and XML suffix) -> NVML clock-event bit
_REASON_BITS = {
    "idle": 0x1, "gpu_idle": 0x1,
    "applications clocks setting": 0x2, "applications_clocks_setting": 0x2,
    "sw power cap": 0x4, "sw_power_cap": 0x4,
    "hw slowdown": 0x8, "hw_slowdown": 0x8,
    "sync boost": 0x10, "sync_boost": 0x10,
    "sw thermal slowdown": 0x20, "sw_thermal_slowdown": 0x20,
    "hw thermal slowdown": 0x40, "hw_thermal_slowdown": 0x40,
    "hw power brake slowdown": 0x80, "hw_power_brake_slowdown": 0x80,
    "display clock setting": 0x100, "display_clocks_setting": 0x100,
}  # fmt: skip
_COMPUTE_MODES = {"default": 0, "exclusive_thread": 1, "prohibited": 2, "exclusive_process": 3}
_FABRIC_STATES = {"not supported": 0, "not started": 1, "in progress": 2, "completed": 3}

#: compute capability is not in nvidia-smi's -q output; values from NVIDIA's CUDA GPUs table
#: (https://developer.nvidia.com/cuda-gpus, read 2026-11)
COMPUTE_CAPABILITY = {
    "H100": (9, 0), "A100": (8, 0), "A10": (8, 6), "K80": (3, 7), "GTX 680": (3, 0),
    "RTX 4090": (8, 9),
}  # fmt: skip


def _walk(node: Node) -> list[Node]:
    out = []
    for c in node.children:
        out.append(c)
        out.extend(_walk(c))
    return out


def _clock_reasons(gpu: Node) -> tuple[str | None, Any]:
    """("event"|"throttle", bitmask or NA), or (None, None) when the capture has neither."""
    for naming, paths in (
        ("event", (("Clocks Event Reasons",), ("clocks_event_reasons",))),
        ("throttle", (("Clocks Throttle Reasons",), ("clocks_throttle_reasons",))),
    ):
        node = _first(gpu, *paths)
        if node is None:
            continue
        if not node.children:
            return naming, NA
        mask = 0
        for c in _walk(node):
            label = re.sub(r"^clocks_(event|throttle)_reason_", "", c.key.lower())
            if c.value is not None and c.value.strip() == "Active" and label in _REASON_BITS:
                mask |= _REASON_BITS[label]
        return naming, mask
    return None, None


def _ecc_counts(gpu: Node, counter: str) -> tuple[Any, Any]:
    """(corrected, uncorrected) totals of one counter ("volatile"/"aggregate"), as NVML sums them."""
    node = gpu.find("ECC Errors", counter) or gpu.find("ecc_errors", counter)
    if node is None:
        return None, None
    old_sbe = node.find("Single Bit", "Total") or node.find("single_bit", "total")
    old_dbe = node.find("Double Bit", "Total") or node.find("double_bit", "total")
    if old_sbe is not None or old_dbe is not None:
        return _number(_value(old_sbe.value if old_sbe else None)), _number(
            _value(old_dbe.value if old_dbe else None)
        )
    corrected: Any = 0
    uncorrected: Any = 0
    for c in node.children:
        label = c.key.lower().replace("_", " ")
        if "threshold" in label:
            continue
        v = _number(_value(c.value))
        bucket = "unc" if "uncorrectable" in label else "corr" if "correctable" in label else None
        if bucket is None:
            continue
        if v is NA:
            if bucket == "unc":
                uncorrected = NA
            else:
                corrected = NA
            continue
        if bucket == "unc" and uncorrected is not NA:
            uncorrected += v
        elif bucket == "corr" and corrected is not NA:
            corrected += v
    return corrected, uncorrected


def _retired(gpu: Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    text = gpu.find("Retired Pages")
    xml = gpu.find("retired_pages")
    if text is not None:
        for key, label in (("sbe", "Single Bit ECC"), ("dbe", "Double Bit ECC")):
            count = _number(_value(text.find(label).value)) if text.find(label) else None
            out[key] = count if count is NA or count is None else [0] * count  # addresses not printed
        out["pending"] = _flag(_value(text.find("Pending Page Blacklist").value))
    elif xml is not None:
        for key, tag in (("sbe", "multiple_single_bit_retirement"), ("dbe", "double_bit_retirement")):
            node = xml.find(tag)
            count = _number(_value(node.find("retired_count").value)) if node else None
            if count is NA or count is None:
                out[key] = count
                continue
            pages = node.find("retired_pagelist") if node else None
            out[key] = (
                [int(p.value or "0", 16) for p in _walk(pages) if p.key == "retired_page_address"]
                if pages
                else []
            )
        pending = xml.find("pending_blacklist") or xml.find("pending_retirement")
        out["pending"] = _flag(_value(pending.value)) if pending else NA
    return out


def _remapped(gpu: Node) -> Any:
    node = _first(gpu, ("Remapped Rows",), ("remapped_rows",))
    if node is None:
        return None
    if not node.children:
        return NA
    if node.find("Correctable Error") is not None:
        labels = ("Correctable Error", "Uncorrectable Error", "Pending", "Remapping Failure Occurred")
    else:
        labels = ("remapped_row_corr", "remapped_row_unc", "remapped_row_pending", "remapped_row_failure")
    corr, unc, pending, failure = (_value(node.find(label).value) for label in labels)
    return (_number(corr), _number(unc), _flag(pending), _flag(failure))


def _processes(gpu: Node) -> list[dict[str, Any]]:
    node = _first(gpu, ("Processes",), ("processes",))
    procs = []
    if node is None:
        return procs
    for entry in node.all("Process ID"):
        procs.append(
            {
                "pid": int(entry.value or 0),
                "type": _value(entry.find("Type").value),
                "name": _value(entry.find("Name").value),
                "used_mib": _number(_value(entry.find("Used GPU Memory").value)),
            }
        )
    for info in node.all("process_info"):
        procs.append(
            {
                "pid": int(info.find("pid").value or 0),
                "type": _value(info.find("type").value),
                "name": _value(info.find("process_name").value),
                "used_mib": _number(_value(info.find("used_memory").value)),
            }
        )
    return procs


def _mig(gpu: Node) -> list[dict[str, Any]]:
    devices = gpu.find("mig_devices")
    if devices is None:
        return []
    return [
        {
            "index": int(d.find("index").value or 0),
            "gpu_instance_id": int(d.find("gpu_instance_id").value or 0),
            "compute_instance_id": int(d.find("compute_instance_id").value or 0),
            "memory_total_mib": _number(_value(d.find("fb_memory_usage", "total").value)),
            "memory_used_mib": _number(_value(d.find("fb_memory_usage", "used").value)),
        }
        for d in devices.all("mig_device")
    ]


def record(gpu: Node) -> dict[str, Any]:
    """One GPU of a capture as {NVML-ish field: value | NA}; absent fields are left out."""
    g = lambda *paths: _get(gpu, *paths)  # noqa: E731
    name = g(("Product Name",), ("product_name",))
    rec: dict[str, Any] = {
        "name": name,
        "uuid": g(("GPU UUID",), ("uuid",)),
        "serial": g(("Serial Number",), ("serial",)),
        "vbios": g(("VBIOS Version",), ("vbios_version",)),
        "bus_id": g(("PCI", "Bus Id"), ("pci", "pci_bus_id")),
        "memory_total_mib": _number(g(("FB Memory Usage", "Total"), ("fb_memory_usage", "total"))),
        "memory_used_mib": _number(g(("FB Memory Usage", "Used"), ("fb_memory_usage", "used"))),
        "pcie_gen_current": _number(
            g(
                ("PCI", "GPU Link Info", "PCIe Generation", "Current"),
                ("pci", "pci_gpu_link_info", "pcie_gen", "current_link_gen"),
            )
        ),
        "pcie_gen_max": _number(
            g(
                ("PCI", "GPU Link Info", "PCIe Generation", "Max"),
                ("pci", "pci_gpu_link_info", "pcie_gen", "max_link_gen"),
            )
        ),
        "pcie_gen_device_max": _number(
            g(
                ("PCI", "GPU Link Info", "PCIe Generation", "Device Max"),
                ("pci", "pci_gpu_link_info", "pcie_gen", "max_device_link_gen"),
            )
        ),
        "pcie_width_current": _number(
            g(
                ("PCI", "GPU Link Info", "Link Width", "Current"),
                ("pci", "pci_gpu_link_info", "link_widths", "current_link_width"),
            )
        ),
        "pcie_width_max": _number(
            g(
                ("PCI", "GPU Link Info", "Link Width", "Max"),
                ("pci", "pci_gpu_link_info", "link_widths", "max_link_width"),
            )
        ),
        "replay_counter": _number(g(("PCI", "Replays Since Reset"), ("pci", "replay_counter"))),
        "power_limit_w": _number(
            g(
                ("GPU Power Readings", "Current Power Limit"),
                ("Power Readings", "Enforced Power Limit"),
                ("gpu_power_readings", "current_power_limit"),
                ("power_readings", "enforced_power_limit"),
            )
        ),
        "power_draw_w": _number(
            g(
                ("GPU Power Readings", "Power Draw"),
                ("Power Readings", "Power Draw"),
                ("gpu_power_readings", "power_draw"),
                ("power_readings", "power_draw"),
            )
        ),
        "temperature_c": _number(g(("Temperature", "GPU Current Temp"), ("temperature", "gpu_temp"))),
        "util_gpu": _number(g(("Utilization", "Gpu"), ("utilization", "gpu_util"))),
        "util_memory": _number(g(("Utilization", "Memory"), ("utilization", "memory_util"))),
        "fan_pct": _number(g(("Fan Speed",), ("fan_speed",))),
        "clock_sm": _number(g(("Clocks", "SM"), ("clocks", "sm_clock"))),
        "clock_sm_max": _number(g(("Max Clocks", "SM"), ("max_clocks", "sm_clock"))),
        "ecc_mode": (
            _flag(g(("ECC Mode", "Current"), ("Ecc Mode", "Current"), ("ecc_mode", "current_ecc"))),
            _flag(g(("ECC Mode", "Pending"), ("Ecc Mode", "Pending"), ("ecc_mode", "pending_ecc"))),
        ),
        "mig_mode": (
            _flag(g(("MIG Mode", "Current"), ("mig_mode", "current_mig"))),
            _flag(g(("MIG Mode", "Pending"), ("mig_mode", "pending_mig"))),
        ),
        "persistence": _flag(g(("Persistence Mode",), ("persistence_mode",))),
        "compute_mode": g(("Compute Mode",), ("compute_mode",)),
        "remapped_rows": _remapped(gpu),
        "processes": _processes(gpu),
        "mig_devices": _mig(gpu),
    }
    rec["ecc_volatile"] = (
        _ecc_counts(gpu, "Volatile") if gpu.find("ECC Errors") else _ecc_counts(gpu, "volatile")
    )
    rec["ecc_aggregate"] = (
        _ecc_counts(gpu, "Aggregate") if gpu.find("ECC Errors") else _ecc_counts(gpu, "aggregate")
    )
    rec["retired"] = _retired(gpu)
    rec["clock_reasons"] = _clock_reasons(gpu)
    if rec["compute_mode"] not in (None, NA):
        rec["compute_mode"] = _COMPUTE_MODES[str(rec["compute_mode"]).lower().replace(" ", "_")]
    fabric = _first(gpu, ("Fabric",), ("fabric",))
    if fabric is not None:
        state, status = _value(fabric.find("State").value), _value(fabric.find("Status").value)
        rec["fabric"] = (
            NA if state is NA else (_FABRIC_STATES[str(state).lower()], 0 if status == "Success" else 999)
        )
    models = sorted((m for m in COMPUTE_CAPABILITY if name and m in str(name)), key=len)
    if models:  # longest match: "A100" before "A10"
        rec["compute_capability"] = COMPUTE_CAPABILITY[models[-1]]
    if "ecc_mode" in rec and rec["ecc_mode"] == (None, None):
        del rec["ecc_mode"]
    if rec["mig_mode"] == (None, None):
        del rec["mig_mode"]
    return {k: v for k, v in rec.items() if v is not None and v != (None, None)}


# --------------------------------------------------------------------------- whole machines


@dataclass
class Topology:
    """``nvidia-smi topo -m``: the GPU x GPU cells and each GPU's NUMA node."""

    cells: list[list[str]]
    numa: list[str]


def load_topology(name: str) -> Topology:
    lines = [ln for ln in (FIXTURES / name).read_text().splitlines() if ln.strip()]
    header = lines[0].split()
    devices = [h for h in header if re.fullmatch(r"(GPU|NIC|mlx)\S*\d+", h)]
    gpus = [h for h in devices if h.startswith("GPU")]
    cells, numa = [], []
    for line in lines[1:]:
        row = line.split()
        if not row or not re.fullmatch(r"GPU\d+", row[0]):
            continue
        cells.append(row[1 : 1 + len(gpus)])
        numa.append(row[1 + len(devices) + 1])
    return Topology(cells, numa)


@dataclass
class Machine:
    """A recorded machine: driver facts and one record per GPU, in NVML index order."""

    source: str
    driver_version: str
    cuda_version: Any
    gpus: list[dict[str, Any]]
    topology: Topology | None = None


def load_machine(name: str, topology: str | None = None) -> Machine:
    tree = load_tree(name)
    driver = _value(_first(tree, ("Driver Version",), ("driver_version",)).value)
    cuda = _value(_first(tree, ("CUDA Version",), ("cuda_version",)).value)
    gpus = [record(c) for c in tree.children if c.key.startswith("GPU ")]
    return Machine(name, str(driver), cuda, gpus, load_topology(topology) if topology else None)
