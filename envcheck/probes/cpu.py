"""The CPU: model, topology, clocks, the ISA extensions that decide which wheels run, usable CPUs.

On Linux everything comes from /proc/cpuinfo and /sys under ``ctx.root`` (a few ms; lscpu or a
py-cpuinfo subprocess would cost 10-100x that). py-cpuinfo is a lazy fallback for other systems.
"""

from __future__ import annotations

import math
import os
import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envcheck.models import CpuInfo
from envcheck.probes.memory import cgroup_cpu_quota, read_text, why

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: ISA flags that decide whether a framework build runs or is fast, as the kernel names them, in
#: the order they are shown. x86: TF wheels need AVX (since 1.6), oneDNN picks AVX-512/AMX kernels.
X86_FLAGS = (
    "sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni",
    "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
)  # fmt: skip
#: aarch64 "Features" names: NEON, fp16, dot product, SVE, bf16 and int8 matmul, SME.
ARM_FLAGS = (
    "asimd", "fphp", "asimdhp", "asimddp", "atomics",
    "sve", "sve2", "bf16", "svebf16", "i8mm", "svei8mm", "sme", "sme2",
)  # fmt: skip

#: aarch64 "CPU implementer" -> vendor, and (implementer, part) -> core name: the server cores.
#: Source: util-linux sys-utils/lscpu-arm.c (commit 01e2697a), read 2026-11-22.
ARM_IMPLEMENTERS = {
    "0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "FUJITSU", "0x48": "HiSilicon",
    "0x4e": "NVIDIA", "0x50": "APM", "0x51": "Qualcomm", "0x61": "Apple", "0x70": "Phytium", "0xc0": "Ampere",
}  # fmt: skip
ARM_PARTS = {
    ("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd07"): "Cortex-A57", ("0x41", "0xd08"): "Cortex-A72",
    ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd0c"): "Neoverse-N1", ("0x41", "0xd40"): "Neoverse-V1",
    ("0x41", "0xd49"): "Neoverse-N2", ("0x41", "0xd4f"): "Neoverse-V2", ("0x43", "0x0af"): "ThunderX2-99xx",
    ("0x48", "0xd01"): "Kunpeng-920", ("0x4e", "0x004"): "Carmel", ("0x46", "0x001"): "A64FX",
    ("0xc0", "0xac3"): "Ampere-1", ("0xc0", "0xac4"): "Ampere-1a",
}  # fmt: skip


def _blocks(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor; lines outside a "processor" block are shared."""
    blocks: list[dict[str, str]] = []
    shared: dict[str, str] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor" and value.isdigit():
            current = {"processor": value}
            blocks.append(current)
        elif current is None:
            shared[key] = value
        else:
            current[key] = value
    return [{**shared, **b} for b in blocks] or ([shared] if shared else [])


def _infer_arch(blocks: list[dict[str, str]]) -> str | None:
    first = blocks[0] if blocks else {}
    if "cpu implementer" in first or first.get("cpu architecture") == "8":
        return "aarch64"
    if "flags" in first:
        return "x86_64" if "lm" in first["flags"].split() else "i686"
    if "cpu" in first and "power" in first["cpu"].lower():
        return "ppc64le"
    return None


def _arch(ctx: ProbeContext, blocks: list[dict[str, str]]) -> str | None:
    try:  # /proc/sys/kernel/arch exists since Linux 6.1
        return read_text(ctx.path("/proc/sys/kernel/arch")).strip() or None
    except OSError:
        pass
    return _infer_arch(blocks) or (platform.machine() or None if ctx.root == Path("/") else None)


def _model_and_vendor(blocks: list[dict[str, str]]) -> tuple[str | None, str | None]:
    first = blocks[0] if blocks else {}
    model = first.get("model name") or first.get("cpu")  # "cpu" on POWER
    vendor = first.get("vendor_id") or first.get("vendor")
    impl = first.get("cpu implementer", "").lower()
    if impl:
        vendor = vendor or ARM_IMPLEMENTERS.get(impl, impl)
        part = ARM_PARTS.get((impl, first.get("cpu part", "").lower()))
        if part and (not model or model.startswith("ARMv")):
            model = part
    return model or None, vendor or None


def _family_model(blocks: list[dict[str, str]]) -> tuple[int | None, int | None]:
    """x86 "cpu family" and "model" numbers (decimal in /proc/cpuinfo), None elsewhere."""
    first = blocks[0] if blocks else {}
    out: list[int | None] = []
    for key in ("cpu family", "model"):
        value = first.get(key, "")
        out.append(int(value) if value.isdigit() else None)
    return out[0], out[1]


def _flags(blocks: list[dict[str, str]], arch: str | None) -> list[str] | None:
    """The interesting flags every CPU has (intersection: a job can land on any of them)."""
    sets = [set((b.get("flags") or b.get("features") or "").split()) for b in blocks]
    sets = [s for s in sets if s]
    if not sets:
        return None
    common = set.intersection(*sets)
    wanted = ARM_FLAGS if (arch or "").startswith(("aarch64", "arm")) or "asimd" in common else X86_FLAGS
    return [f for f in wanted if f in common]


def _read_int(path: Path) -> int | None:
    try:
        return int(read_text(path).strip())
    except (OSError, ValueError):
        return None


def _cpu_dirs(ctx: ProbeContext) -> list[Path]:
    base = ctx.path("/sys/devices/system/cpu")
    try:
        return sorted(
            (p for p in base.iterdir() if re.fullmatch(r"cpu\d+", p.name)), key=lambda p: int(p.name[3:])
        )
    except OSError:
        return []


def _topology(ctx: ProbeContext, blocks: list[dict[str, str]]) -> tuple[int | None, int | None, int | None]:
    """(sockets, physical cores, hardware threads) of the online CPUs."""
    procs = [b for b in blocks if "processor" in b]
    threads = len(procs) or None
    if procs and all("physical id" in b and "core id" in b for b in procs):  # x86
        return (
            len({b["physical id"] for b in procs}),
            len({(b["physical id"], b["core id"]) for b in procs}),
            threads,
        )
    pairs = set()  # aarch64 and others: sysfs topology (package -1 on ACPI systems without PPTT)
    for d in _cpu_dirs(ctx):
        if _read_int(d / "online") == 0:
            continue
        pkg, core = _read_int(d / "topology/physical_package_id"), _read_int(d / "topology/core_id")
        if core is not None:
            pairs.add((max(pkg if pkg is not None else 0, 0), core))
    if not pairs:
        return None, None, threads
    return len({p for p, _ in pairs}), len(pairs), threads or len(pairs)


def _mhz(ctx: ProbeContext, blocks: list[dict[str, str]]) -> tuple[float | None, float | None]:
    """(mean current MHz, highest max MHz): cpufreq when the kernel exposes it, else cpuinfo's "cpu MHz"."""
    cur, top = [], []
    for d in _cpu_dirs(ctx):
        khz = _read_int(d / "cpufreq/scaling_cur_freq")
        if khz:
            cur.append(khz / 1000)
        khz = _read_int(d / "cpufreq/cpuinfo_max_freq")
        if khz:
            top.append(khz / 1000)
    if not cur:
        for b in blocks:
            try:
                cur.append(float(b["cpu mhz"]))
            except (KeyError, ValueError):
                continue
    current = round(sum(cur) / len(cur), 1) if cur else None
    return current, (round(max(top), 1) if top else None)


def _parse_cpu_list(text: str) -> set[int]:
    """A kernel CPU list ("0-3,8,10-11") as a set; raises ValueError when malformed."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def _numa_nodes(ctx: ProbeContext) -> int | None:
    try:
        return len(_parse_cpu_list(read_text(ctx.path("/sys/devices/system/node/online")))) or None
    except (OSError, ValueError):
        pass
    try:
        nodes = [
            p for p in ctx.path("/sys/devices/system/node").iterdir() if re.fullmatch(r"node\d+", p.name)
        ]
        return len(nodes) or None
    except OSError:
        return None


def _affinity(ctx: ProbeContext) -> int | None:
    """CPUs this process may run on: sched_getaffinity live, Cpus_allowed_list in a recorded tree."""
    if ctx.root == Path("/") and hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    try:
        for line in read_text(ctx.path("/proc/self/status")).splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return len(_parse_cpu_list(line.split(":", 1)[1])) or None
    except (OSError, ValueError):
        return None
    return None


def _usable(ctx: ProbeContext, threads: int | None) -> tuple[int | None, float | None]:
    """(usable CPUs, cgroup quota in CPUs): affinity capped by the cgroup CPU quota, rounded up."""
    quota = cgroup_cpu_quota(ctx)
    usable = _affinity(ctx) or threads
    if quota is not None:
        cap = max(1, math.ceil(quota - 1e-9))
        usable = min(usable, cap) if usable else cap
    return usable, (round(quota, 3) if quota is not None else None)


def _fallback_cpuinfo() -> dict[str, Any]:
    """py-cpuinfo for systems without /proc/cpuinfo (macOS, Windows); imported only then."""
    try:
        import cpuinfo

        data: dict[str, Any] = cpuinfo.get_cpu_info()
        return data
    except Exception:  # a third-party probe must not break the report
        return {}


def probe(ctx: ProbeContext) -> CpuInfo:
    """Collect the CPU section; a missing or malformed source leaves only its fields None."""
    try:
        blocks = _blocks(read_text(ctx.path("/proc/cpuinfo")))
        note = None if blocks else "/proc/cpuinfo has no processor entries"
    except OSError as exc:
        blocks, note = [], f"cannot read /proc/cpuinfo: {why(exc)}"
    arch = _arch(ctx, blocks)
    model, vendor = _model_and_vendor(blocks)
    flags = _flags(blocks, arch)
    sockets, cores, threads = _topology(ctx, blocks)
    if not blocks and ctx.root == Path("/") and not os.path.exists(ctx.path("/proc/cpuinfo")):
        data = _fallback_cpuinfo()  # not Linux
        model, vendor = data.get("brand_raw") or None, data.get("vendor_id_raw") or None
        wanted = ARM_FLAGS if "arm" in str(data.get("arch", "")).lower() else X86_FLAGS
        flags = [f for f in wanted if f in set(data.get("flags", []))] if data.get("flags") else None
        threads, note = os.cpu_count(), None
    mhz_current, mhz_max = _mhz(ctx, blocks)
    usable, quota = _usable(ctx, threads)
    family, model_number = _family_model(blocks)
    return CpuInfo(
        model=model,
        vendor=vendor,
        family=family,
        model_number=model_number,
        arch=arch,
        sockets=sockets,
        cores=cores,
        threads=threads,
        mhz_current=mhz_current,
        mhz_max=mhz_max,
        flags=flags,
        numa_nodes=_numa_nodes(ctx),
        usable_cpus=usable,
        cgroup_cpu_quota=quota,
        error=note,
    )
