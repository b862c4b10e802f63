"""The GPUs themselves and how a process selects them: CUDA_VISIBLE_DEVICES, MIG, ECC and row
remapping, throttling, the PCIe link, debugger/profiler variables (diagnostics-anchors b6, b7, DCGM)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from envcheck.models import Finding, Gpu, Severity, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules._base import need, rule

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

#: Variables DCGM's deployment check flags (NVIDIA/DCGM nvvs/src/Software.cpp, read 2026-07-06):
#: they inject debuggers or profilers, or slow every launch (CUDA_LAUNCH_BLOCKING).
BAD_ENV = (
    "NSIGHT_CUDA_DEBUGGER",
    "CUDA_INJECTION32_PATH",
    "CUDA_INJECTION64_PATH",
    "CUDA_AUTO_BOOST",
    "CUDA_ENABLE_COREDUMP_ON_EXCEPTION",
    "CUDA_COREDUMP_FILE",
    "CUDA_DEVICE_WAITS_ON_EXCEPTION",
    "CUDA_PROFILE",
    "COMPUTE_PROFILE",
    "OPENCL_PROFILE",
    "CUDA_LAUNCH_BLOCKING",
)
#: clock-event reasons that mean the GPU is being slowed down by heat or power faults; the others
#: (gpu_idle, applications_clocks_setting, sw_power_cap at a set limit, ...) are normal operation.
#: The finding's ``slowing`` fact is what every output calls "throttled".
SLOWING_CLOCK_EVENTS = (
    "hw_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
    "sw_thermal_slowdown",
)


def _gpus(s: Snapshot) -> list[Gpu]:
    return F.gpus_or_none_present(s)


def _resolve(entry: str, gpus: list[Gpu]) -> str | None:
    """What one CUDA_VISIBLE_DEVICES entry names ("GPU 1", "MIG-..."), or None if nothing."""
    e = entry.strip()
    if e.lstrip("-").isdigit():
        n = int(e)
        return f"GPU {n}" if 0 <= n < len(gpus) else None
    low = e.lower()
    if low.startswith("mig-"):
        for g in gpus:
            for m in g.mig_devices or []:
                if m.uuid and m.uuid.lower().startswith(low):
                    return m.uuid
        return None
    prefix = low if low.startswith("gpu-") else f"gpu-{low}"
    hits = [g for g in gpus if g.uuid and g.uuid.lower().startswith(prefix)]
    return f"GPU {hits[0].index}" if len(hits) == 1 else None


@rule(
    "visible-devices",
    "CUDA_VISIBLE_DEVICES (or NVIDIA_VISIBLE_DEVICES) hides GPUs or names GPUs that do not exist",
    E,
)
def visible_devices(s: Snapshot) -> Iterator[Finding]:
    system = need(s.system, "environment variables")
    env = system.env
    value = env.get("CUDA_VISIBLE_DEVICES")
    nvd = env.get("NVIDIA_VISIBLE_DEVICES")
    if nvd is not None and nvd.strip().lower() in ("void", "none", "") and not (s.nvidia and s.nvidia.gpus):
        yield Finding(
            id="visible-devices",
            severity=E,
            summary=f"NVIDIA_VISIBLE_DEVICES={nvd!r} gives this container no GPU",
            facts={"NVIDIA_VISIBLE_DEVICES": nvd},
            fix="Start the container with the GPUs it should see.",
            commands=["docker run --gpus all ...  # or -e NVIDIA_VISIBLE_DEVICES=all"],
        )
    if value is None:
        return
    gpus = _gpus(s)
    if not gpus:
        return
    order = env.get("CUDA_DEVICE_ORDER")
    entries = value.split(",")
    if value.strip() in ("", "-1", "none", "NoDevFiles"):
        yield Finding(
            id="visible-devices",
            severity=E,
            summary=f"CUDA_VISIBLE_DEVICES={value!r} hides all {len(gpus)} GPUs from CUDA",
            facts={"CUDA_VISIBLE_DEVICES": value, "gpus": len(gpus)},
            fix="Unset the variable, or list the GPUs to use (indices or GPU-/MIG- UUIDs).",
            commands=["unset CUDA_VISIBLE_DEVICES"],
        )
        return
    resolved: list[str] = []
    for entry in entries:
        target = _resolve(entry, gpus)
        if target is None:
            # CUDA stops at the first entry it cannot parse: later entries are ignored too
            lost = entries[entries.index(entry) + 1 :]
            good = ",".join(str(g.index) for g in gpus)
            yield Finding(
                id="visible-devices",
                severity=E,
                summary=f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no GPU"
                + (f"; CUDA also ignores the {len(lost)} after it" if lost else ""),
                facts={
                    "CUDA_VISIBLE_DEVICES": value,
                    "unresolved": entry,
                    "ignored_after": lost,
                    "gpus": [f"{g.index}: {g.uuid}" for g in gpus],
                },
                fix="Use physical indices (nvidia-smi's numbering with CUDA_DEVICE_ORDER=PCI_BUS_ID) or full "
                "UUIDs, and export the variable before the process starts.",
                commands=[f"export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={good}"],
            )
            return
        resolved.append(target)
    if (
        order != "PCI_BUS_ID"
        and len({g.name for g in gpus}) > 1
        and all(e.strip().isdigit() for e in entries)
    ):
        yield Finding(
            id="visible-devices",
            severity=W,
            summary="CUDA numbers mixed GPUs fastest-first, so CUDA_VISIBLE_DEVICES indices may not be "
            "nvidia-smi's",
            facts={
                "CUDA_VISIBLE_DEVICES": value,
                "CUDA_DEVICE_ORDER": order,
                "gpus": [f"{g.index}: {g.name}" for g in gpus],
            },
            fix="Set CUDA_DEVICE_ORDER=PCI_BUS_ID so CUDA's numbering matches nvidia-smi's.",
            commands=["export CUDA_DEVICE_ORDER=PCI_BUS_ID"],
        )


@rule(
    "mig-no-instances",
    "MIG mode is on but no GPU/compute instances exist, so the GPU offers no CUDA device",
    E,
)
def mig_no_instances(s: Snapshot) -> Iterator[Finding]:
    for g in _gpus(s):
        if g.mig_mode_current and g.mig_devices is not None and not g.mig_devices:
            yield Finding(
                id="mig-no-instances",
                severity=E,
                summary=f"GPU {g.index} is in MIG mode with no instances: CUDA sees no device on it",
                facts={"mig_mode_current": True, "mig_devices": 0},
                fix="Create GPU and compute instances (profiles: 'nvidia-smi mig -lgip'), or turn MIG "
                "off and reset the GPU.",
                commands=[
                    f"sudo nvidia-smi mig -i {g.index} -cgi <profile> -C",
                    f"sudo nvidia-smi -i {g.index} -mig 0 && sudo nvidia-smi -i {g.index} -r",
                ],
                subject=F.gpu_subject(g),
            )


@rule("mig-mode-pending", "a MIG mode change waits for a GPU reset", W)
def mig_mode_pending(s: Snapshot) -> Iterator[Finding]:
    for g in _gpus(s):
        if (
            g.mig_mode_pending is not None
            and g.mig_mode_current is not None
            and g.mig_mode_pending != g.mig_mode_current
        ):
            yield Finding(
                id="mig-mode-pending",
                severity=W,
                summary=f"GPU {g.index}: MIG mode change to {'on' if g.mig_mode_pending else 'off'} "
                "waits for "
                "a "
                "GPU reset",
                facts={"mig_mode_current": g.mig_mode_current, "mig_mode_pending": g.mig_mode_pending},
                fix="Reset the GPU (no process may use it) or reboot to apply the pending MIG mode.",
                commands=[f"sudo nvidia-smi -i {g.index} -r"],
                subject=F.gpu_subject(g),
            )


@rule(
    "mig-multiple-visible",
    "more than one MIG instance is made visible to one process: CUDA uses only the first",
    W,
)
def mig_multiple_visible(s: Snapshot) -> Iterator[Finding]:
    gpus = _gpus(s)
    migs = [m for g in gpus for m in (g.mig_devices or [])]
    if not migs:
        return
    system = need(s.system, "environment variables")
    value = system.env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        if len(migs) > 1:
            yield Finding(
                id="mig-multiple-visible",
                severity=INFO,
                summary=f"{len(migs)} MIG instances exist but a process uses one: pick it with "
                "CUDA_VISIBLE_DEVICES",
                facts={"mig_instances": [m.uuid for m in migs]},
                fix="Run one process per MIG instance, each with CUDA_VISIBLE_DEVICES set to its MIG UUID.",
                commands=[f"export CUDA_VISIBLE_DEVICES={migs[0].uuid or 'MIG-<uuid>'}"],
            )
        return
    listed = [e for e in value.split(",") if e.strip().lower().startswith("mig-")]
    if len(listed) > 1:
        yield Finding(
            id="mig-multiple-visible",
            severity=W,
            summary=f"CUDA_VISIBLE_DEVICES lists {len(listed)} MIG instances; a CUDA process uses only "
            "the first",
            facts={"CUDA_VISIBLE_DEVICES": value},
            fix="Give each process exactly one MIG UUID (launch one worker per instance).",
            commands=[f"export CUDA_VISIBLE_DEVICES={listed[0].strip()}"],
        )


@rule(
    "gpu-memory-errors",
    "uncorrectable ECC errors, or retired pages / remapped rows pending: the GPU "
    "needs a reset (or replacing)",
    E,
)
def gpu_memory_errors(s: Snapshot) -> Iterator[Finding]:
    for g, ecc in F.gpus_reporting(s, lambda g: g.ecc, "ECC and row-remapping state"):
        facts = ecc.model_dump(exclude_none=True)
        if ecc.remapped_failure:
            yield Finding(
                id="gpu-memory-errors",
                severity=E,
                summary=f"GPU {g.index}: row remapping failed; the memory is failing",
                facts=facts,
                fix="Drain the GPU and have it replaced (RMA); run 'dcgmi diag -r 3' to confirm.",
                commands=["dcgmi diag -r 3"],
                subject=F.gpu_subject(g),
            )
        elif ecc.remapped_pending or ecc.retired_pages_pending:
            yield Finding(
                id="gpu-memory-errors",
                severity=E,
                summary=f"GPU {g.index}: memory rows/pages wait to be retired; reset the GPU to apply",
                facts=facts,
                fix="Stop the processes on this GPU and reset it (or reboot) to apply the remap/retirement.",
                commands=[f"sudo nvidia-smi -i {g.index} -r"],
                subject=F.gpu_subject(g),
            )
        elif ecc.volatile_uncorrected:
            yield Finding(
                id="gpu-memory-errors",
                severity=E,
                summary=f"GPU {g.index}: {ecc.volatile_uncorrected} uncorrectable ECC errors since reset",
                facts=facts,
                fix="Reset the GPU; if errors return, run DCGM diagnostics and replace the GPU.",
                commands=[f"sudo nvidia-smi -i {g.index} -r", "dcgmi diag -r 3"],
                subject=F.gpu_subject(g),
            )


@rule("gpu-throttled", "a GPU is slowed by thermal or hardware power-brake limits right now", W)
def gpu_throttled(s: Snapshot) -> Iterator[Finding]:
    for g, reasons in F.gpus_reporting(s, lambda g: g.throttle_reasons, "clock-event (throttle) reasons"):
        bad = [r for r in reasons if r in SLOWING_CLOCK_EVENTS]
        if not bad:
            continue
        thermal = any("thermal" in r for r in bad)
        yield Finding(
            id="gpu-throttled",
            severity=W,
            summary=f"GPU {g.index} is throttled ({', '.join(bad)})"
            + (f" at {g.temperature_c} C" if g.temperature_c is not None else ""),
            facts={
                "throttle_reasons": g.throttle_reasons,
                "slowing": bad,
                "temperature_c": g.temperature_c,
                "power_draw_w": g.power_draw_w,
                "power_limit_w": g.power_limit_w,
            },
            fix="Improve cooling (airflow, fan curve, dust, spacing between cards)"
            if thermal
            else "Check the power supply and its cables (hardware power brake / slowdown signalled)",
            commands=[f"nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER -i {g.index}"],
            subject=F.gpu_subject(g),
        )


@rule(
    "pcie-downgraded",
    "a GPU's PCIe link is capped below what the GPU supports (max generation or "
    "trained width), halving host<->GPU bandwidth or worse",
    W,
)
def pcie_downgraded(s: Snapshot) -> Iterator[Finding]:
    for g, p in F.gpus_reporting(s, lambda g: g.pcie, "PCIe link facts"):
        problems = []
        # Max vs max: idle GPUs legitimately drop the *current* generation to save power.
        if p.gen_max and p.gen_device_max and p.gen_max < p.gen_device_max:
            problems.append(f"link max Gen{p.gen_max} although the GPU supports Gen{p.gen_device_max}")
        # Width only counts when the link is at full speed: some GPUs also narrow it when idle.
        at_speed = p.gen_current is not None and p.gen_max is not None and p.gen_current >= p.gen_max
        if at_speed and p.width_current and p.width_max and p.width_current < p.width_max:
            problems.append(f"trained at x{p.width_current} of x{p.width_max}")
        if not problems:
            continue
        yield Finding(
            id="pcie-downgraded",
            severity=W,
            summary=f"GPU {g.index} PCIe link {'; '.join(problems)}",
            facts=p.model_dump(exclude_none=True),
            fix="Check the slot (x16 electrical, CPU- not chipset-attached), risers and the BIOS PCIe speed; "
            "reseat the card.",
            commands=[
                f"nvidia-smi -q -d PCIE -i {g.index}",
                "sudo lspci -vv -d 10de: | grep -E 'LnkCap|LnkSta'",
            ],
            subject=F.gpu_subject(g),
        )


@rule(
    "cuda-debug-env",
    "debugger, profiler or launch-blocking variables are set that slow every CUDA "
    "process (DCGM's bad-environment check)",
    W,
)
def cuda_debug_env(s: Snapshot) -> Iterator[Finding]:
    system = need(s.system, "environment variables")
    found = {k: v for k, v in system.env.items() if k in BAD_ENV}
    if not found:
        return
    yield Finding(
        id="cuda-debug-env",
        severity=W,
        summary="set: " + ", ".join(sorted(found)) + " (debugging/profiling hooks slow or alter CUDA)",
        facts=found,
        fix="Unset them unless you are debugging or profiling right now.",
        commands=["unset " + " ".join(sorted(found))],
    )


@rule(
    "gpu-compute-prohibited",
    "a GPU's compute mode is Prohibited: no CUDA context can be created on it, so every CUDA program "
    "falls back to the CPU or fails",
    E,
)
def gpu_compute_prohibited(s: Snapshot) -> Iterator[Finding]:
    windows = bool(s.system and s.system.os == "Windows")
    for g in _gpus(s):
        if (g.compute_mode or "").lower() != "prohibited":
            continue
        # a vGPU profile name ends in its series letter ("RTXA6000-48A", "A100-40C"): A-series profiles
        # serve virtual applications and have no CUDA (NVIDIA vGPU user guide, CUDA support by series)
        name = (g.name or "").rstrip()
        vgpu_a = bool(re.search(r"-\d+A$", name))
        reset = f"{'' if windows else 'sudo '}nvidia-smi -i {g.index} -c DEFAULT"
        yield Finding(
            id="gpu-compute-prohibited",
            severity=E,
            summary=f"{F.gpu_subject(g)} is in compute mode Prohibited: no CUDA program can use it",
            facts={"compute_mode": g.compute_mode, "gpu": g.name},
            fix="This vGPU is an A-series (virtual applications) profile, which has no CUDA: ask the "
            "administrator for a C- or Q-series profile."
            if vgpu_a
            else "Set the compute mode back to Default (as root or an administrator).",
            commands=[] if vgpu_a else [reset],
            subject=F.gpu_subject(g),
        )
