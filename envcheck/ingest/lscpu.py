"""``lscpu`` output (pasted alone, inside collect_env, or as Markdown bullets) and the Windows WMI
and macOS sysctl CPU blocks collect_env prints instead: the CPU model, topology and the ISA flags
frameworks care about."""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, strip_bullet
from envcheck.ingest._text import Doc
from envcheck.models import CpuInfo, Snapshot

__all__ = ["cpu_from_lines", "read"]

_WIN_ARCH = {"0": "x86", "5": "arm", "9": "x86_64", "12": "arm64"}
#: keys only lscpu prints; three of them in a row make a block
_LSCPU_KEYS = ("Architecture", "CPU op-mode(s)", "Byte Order", "CPU(s)", "On-line CPU(s) list",
               "Thread(s) per core", "Core(s) per socket", "Socket(s)", "NUMA node(s)", "Vendor ID",
               "Model name", "CPU family", "Model", "Stepping", "CPU MHz", "CPU max MHz", "BogoMIPS",
               "Flags", "Address sizes", "L1d cache", "L2 cache", "L3 cache", "Virtualization")  # fmt: skip
_LSCPU_LINE = re.compile(r"^(" + "|".join(re.escape(k) for k in _LSCPU_KEYS) + r"):\s+\S")


def read(doc: Doc) -> list[Partial]:
    """Standalone lscpu blocks (collect_env's CPU section is read by collect_env itself)."""
    out: list[Partial] = []
    lines = doc.lines
    i = 0
    while i < len(lines):
        if not _LSCPU_LINE.match(strip_bullet(lines[i].text).strip()):
            i += 1
            continue
        j = i
        block: list[str] = []
        while j < len(lines):
            text = strip_bullet(lines[j].text).strip()
            if not re.match(r"^[A-Za-z][\w ()\-/]*:\s", text + " "):
                break
            block.append(text)
            j += 1
        if sum(1 for b in block if _LSCPU_LINE.match(b)) >= 3:
            prev = lines[i - 1].text.strip() if i else ""
            if prev != "CPU:":  # collect_env's own section
                cpu = cpu_from_lines(block)
                if cpu is not None:
                    out.append(Partial("lscpu", Snapshot(cpu=cpu), lines[i].no))
        i = max(j, i + 1)
    return out


def cpu_from_lines(lines: list[str]) -> CpuInfo | None:
    """The CPU that collect_env's CPU section (lscpu, WMI or sysctl) or a bare lscpu describes."""
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return None
    kv: dict[str, str] = {}
    blocks = 1
    for line in body:
        if re.match(r"^-{5,}$", line.strip()):  # Windows: one block per processor package
            blocks += 1 if kv else 0
            continue
        m = re.match(r"^([A-Za-z][\w ()\-/]*?)\s*[:=]\s*(.*)$", line)
        if m:
            kv.setdefault(m.group(1).strip(), m.group(2).strip())
    if "Model name" in kv or "Vendor ID" in kv or "Flags" in kv:
        return _lscpu(kv)
    if "Name" in kv and ("Manufacturer" in kv or "MaxClockSpeed" in kv):
        return CpuInfo(
            model=kv.get("Name") or None,
            vendor=kv.get("Manufacturer") or None,
            arch=_WIN_ARCH.get(kv.get("Architecture", "")),
            sockets=blocks,
            mhz_current=_float(kv.get("CurrentClockSpeed")),
            mhz_max=_float(kv.get("MaxClockSpeed")),
        )
    if len(body) == 1 and not kv:  # macOS: sysctl machdep.cpu.brand_string
        return CpuInfo(model=body[0].strip())
    return None


def _lscpu(kv: dict[str, str]) -> CpuInfo:
    from envcheck.probes.cpu import ARM_FLAGS, X86_FLAGS

    arch = kv.get("Architecture") or None
    sockets = _int(kv.get("Socket(s)"))
    per_socket = _int(kv.get("Core(s) per socket"))
    flags = None
    if kv.get("Flags"):
        have = set(kv["Flags"].split())
        wanted = ARM_FLAGS if (arch or "").startswith(("aarch64", "arm")) or "asimd" in have else X86_FLAGS
        flags = [x for x in wanted if x in have]
    return CpuInfo(
        model=kv.get("Model name") or None,
        vendor=kv.get("Vendor ID") or None,
        arch=arch,
        sockets=sockets,
        cores=sockets * per_socket if sockets and per_socket else None,
        threads=_int(kv.get("CPU(s)")),
        mhz_current=_float(kv.get("CPU MHz")),
        mhz_max=_float(kv.get("CPU max MHz")),
        flags=flags,
        numa_nodes=_int(kv.get("NUMA node(s)")),
    )


def _int(v: str | None) -> int | None:
    return int(v) if v and v.strip().isdigit() else None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v else None
    except ValueError:
        return None
