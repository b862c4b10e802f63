"""``nvidia-smi`` as people paste it: the default table (2016's header without a CUDA version,
2020's with a MIG row, R530+'s wider one, R610's ``KMD Version``/``CUDA UMD Version``), a header
line quoted in prose, ``nvidia-smi -L`` and ``nvidia-smi -q``/``-a``.

A printed table or ``-q`` report means NVML initialised, so it also states ``nvml.ok``. Failures
("couldn't communicate with the NVIDIA driver", "Driver/library version mismatch") are error
lines: ``envcheck.ingest.messages`` reads those.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import Gpu, NvidiaInfo, NvmlStatus, Snapshot, SystemInfo

__all__ = ["cuda_int", "read"]

_HEADER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>\d+(?:\.\d+)+)[\s,|]+(?:Driver|KMD)\s+Version:\s*(?P<driver>\d+(?:\.\d+)+)"
    r"(?:[\s,|]+CUDA(?:\s+UMD)?\s+Version:\s*(?P<cuda>\d+\.\d+))?"
)
_ROW = re.compile(
    r"^\s*\|\s+(?P<idx>\d+)\s+(?P<name>\S.*?)\s+(?P<pm>On|Off|N/A|WDDM|TCC)\s*\|"
    r"\s*(?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)\s+(?:On|Off|N/A)?\s*\|"
)
_BORDER = re.compile(r"\+[-=+]{20,}\+")
_ROW2 = re.compile(r"(?<!\d)(?P<used>\d{1,9})\s*MiB\s*/\s*(?P<total>\d{1,9})\s*MiB")
_TEMP = re.compile(r"\|\s*(?:\d+%|N/A)\s+(?P<temp>\d+)C\s")
#: the second row's last cell: "|      1%   Prohibited |" (E. Process / E. Thread in the table's words)
_MODE = re.compile(r"(?:\d+%|N/A)\s+(?P<mode>Default|Prohibited|E\. Process|E\. Thread)\s*\|\s*$")
_MODES = {"E. Process": "Exclusive_Process", "E. Thread": "Exclusive_Thread"}
_MIG = re.compile(r"^\s*\|[\s|]*\|\s*(?P<mig>Enabled|Disabled|N/A)\s*\|\s*$")
_LIST = re.compile(
    r"^\s*GPU (?P<idx>\d+): (?P<name>[^(\n]+?)\s*(?:\((?:UUID: (?P<uuid>GPU-[0-9A-Fa-f-]+)|[^)]*)\))?\s*$"
)
_Q_START = re.compile(r"=+\s*NVSMI LOG\s*=+")
_Q_KV = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][\w ()/.-]*?)\s*:\s*(?P<value>.*?)\s*$")
_Q_GPU = re.compile(r"^\s*GPU (?P<bus>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)\s*$")


def cuda_int(text: str | None) -> int | None:
    """ "12.2" -> 12020 (the encoding NVML and the CUDA driver API use)."""
    m = re.match(r"^(\d+)\.(\d+)", text or "")
    return int(m.group(1)) * 1000 + int(m.group(2)) * 10 if m else None


def read(doc: Doc) -> list[Partial]:
    tables = _tables(doc)
    return [*(tables or _headless(doc)), *_query(doc), *_lists(doc)]


def _headless(doc: Doc) -> list[Partial]:
    """The GPU rows of a table whose header (driver, CUDA) was cut off the paste: each row must be
    followed by its memory row, so a lone "|  0  ...  | 0000:..." of something else is not taken."""
    gpus: list[Gpu] = []
    first = None
    for j, ln in enumerate(doc.lines[:-1]):
        if "|" not in ln.text or (r := _ROW.match(ln.text)) is None:
            continue
        if (u := _ROW2.search(doc.lines[j + 1].text)) is None:
            continue
        used, total = int(u.group("used")), int(u.group("total"))
        gpus.append(Gpu(index=int(r.group("idx")), name=r.group("name").strip(), bus_id=r.group("bus"),
                        memory_used_mib=used, memory_total_mib=total))  # fmt: skip
        first = first or ln.no
    if not gpus or first is None:
        return []
    # no header: the rows may be a part of the table, and the driver is unknown
    return [Partial("nvidia-smi", Snapshot(nvidia=NvidiaInfo(gpus=gpus)), first, truncated=True)]


def _tables(doc: Doc) -> list[Partial]:
    out: list[Partial] = []
    lines = doc.lines
    i = 0
    while i < len(lines):
        m = _HEADER.search(lines[i].text)
        if not m:
            i += 1
            continue
        first = lines[i].no
        gpus: list[Gpu] = []
        windows = False
        j = i + 1
        last_table = i
        none_found = False
        while j < len(lines) and j < i + 400:
            text = lines[j].text
            if _HEADER.search(text):
                break
            if "No devices were found" in text:
                none_found = True
            if text.strip().startswith(("|", "+")):
                last_table = j
            if r := _ROW.match(text):
                gpu = Gpu(index=int(r.group("idx")), name=r.group("name").strip(), bus_id=r.group("bus"),
                          persistence_mode={"On": True, "Off": False}.get(r.group("pm")))  # fmt: skip
                if j + 1 < len(lines) and (u := _ROW2.search(lines[j + 1].text)):
                    gpu.memory_used_mib, gpu.memory_total_mib = int(u.group("used")), int(u.group("total"))
                    if t := _TEMP.search(lines[j + 1].text):
                        gpu.temperature_c = int(t.group("temp"))
                    if cm := _MODE.search(lines[j + 1].text):
                        gpu.compute_mode = _MODES.get(cm.group("mode"), cm.group("mode"))
                if r.group("pm") in ("WDDM", "TCC"):
                    windows = True  # the driver-model column exists only in Windows' nvidia-smi
                if j + 2 < len(lines) and (mg := _MIG.match(lines[j + 2].text)):
                    gpu.mig_mode_current = {"Enabled": True, "Disabled": False}.get(mg.group("mig"))
                gpus.append(gpu)
            elif text.strip() and not text.strip().startswith(("|", "+")) and j > last_table + 2:
                break
            j += 1
        tail = lines[last_table].text.strip()
        last_text = max((k for k, x in enumerate(lines) if x.text.strip()), default=0)
        # the paste stops inside the table: its last line is a row, or a border cut short ("+-")
        truncated = bool(gpus) and last_table == last_text and not _BORDER.fullmatch(tail)
        info = NvidiaInfo(
            driver_version=m.group("driver"),
            cuda_driver_version=cuda_int(m.group("cuda")),
            gpus=gpus or ([] if none_found else None),
            nvml=NvmlStatus(ok=True) if (gpus or none_found) else None,
        )
        system = SystemInfo(os="Windows") if windows else None
        snap = Snapshot(nvidia=info, system=system)
        out.append(Partial("nvidia-smi", snap, first, truncated=truncated, gpu_inventory=True))
        i = max(j, i + 1)
    return out


def _query(doc: Doc) -> list[Partial]:
    """``nvidia-smi -q`` / ``-a``: top-level versions, then one indented block per GPU."""
    out: list[Partial] = []
    lines = doc.lines
    for i, ln in enumerate(lines):
        if not _Q_START.search(ln.text):
            continue
        driver = cuda = None
        gpus: list[Gpu] = []
        section: str | None = None
        section_indent = 0
        for nxt in lines[i + 1 : i + 2000]:
            text = nxt.text
            if _Q_START.search(text) or _HEADER.search(text):
                break
            if g := _Q_GPU.match(text):
                gpus.append(Gpu(index=len(gpus), bus_id=g.group("bus")))
                section = None
                continue
            kv = _Q_KV.match(text)
            if kv is None:
                continue
            indent, key, value = len(kv.group("indent")), kv.group("key"), kv.group("value")
            if not value:  # a section title: "MIG Mode", "FB Memory Usage", "Driver Model"
                section, section_indent = key, indent
                continue
            if section is not None and indent <= section_indent:
                section = None
            if not gpus:
                if key == "Driver Version":
                    driver = value
                elif key == "CUDA Version":
                    cuda = value
                continue
            _q_gpu_field(gpus[-1], section, key, value)
        if driver is None and not gpus:
            continue
        info = NvidiaInfo(
            driver_version=driver,
            cuda_driver_version=cuda_int(cuda),
            gpus=gpus or None,
            nvml=NvmlStatus(ok=True) if driver else None,
        )
        out.append(Partial("nvidia-smi-q", Snapshot(nvidia=info), ln.no, gpu_inventory=bool(gpus)))
    return out


def _q_gpu_field(gpu: Gpu, section: str | None, key: str, value: str) -> None:
    na = value in ("N/A", "Unknown Error", "[N/A]")
    if section is None:
        if key == "Product Name" and not na:
            gpu.name = value
        elif key == "GPU UUID" and value.startswith("GPU-"):
            gpu.uuid = value
        elif key == "VBIOS Version" and not na:
            gpu.vbios = value
        elif key == "Persistence Mode":
            gpu.persistence_mode = {"Enabled": True, "Disabled": False}.get(value)
        elif key == "Compute Mode" and not na:
            gpu.compute_mode = value
        elif key == "GPU Current Temp" and (t := re.match(r"(\d+)\s*C", value)):
            gpu.temperature_c = int(t.group(1))
    elif section == "MIG Mode" and key in ("Current", "Pending"):
        flag = {"Enabled": True, "Disabled": False}.get(value)
        if key == "Current":
            gpu.mig_mode_current = flag
        else:
            gpu.mig_mode_pending = flag
    elif section == "FB Memory Usage" and (mem := re.match(r"(\d+)\s*MiB", value)):
        if key == "Total":
            gpu.memory_total_mib = int(mem.group(1))
        elif key == "Used":
            gpu.memory_used_mib = int(mem.group(1))


def _lists(doc: Doc) -> list[Partial]:
    """``nvidia-smi -L`` runs: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)" lines."""
    out: list[Partial] = []
    gpus: list[Gpu] = []
    first = 0
    in_collect_env = False
    previous = ""
    for ln in [*doc.lines, None]:
        m = _LIST.match(ln.text) if ln is not None else None
        if m and ln is not None:
            if not gpus:
                first = ln.no
                # collect_env lists the same lines under its "GPU models and configuration" key
                in_collect_env = "GPU models and configuration" in previous
            gpus.append(Gpu(index=int(m.group("idx")), name=m.group("name").strip(), uuid=m.group("uuid")))
            continue
        if gpus and not in_collect_env:
            out.append(
                Partial("nvidia-smi-L", Snapshot(nvidia=NvidiaInfo(gpus=gpus)), first, gpu_inventory=True)
            )
        gpus = []
        previous = ln.text if ln is not None else ""
    return out
