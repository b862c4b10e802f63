"""GPU code against GPU: does the framework carry SASS or PTX that runs on each GPU's compute
capability (NVIDIA's SASS/PTX rules in ``envcheck.knowledge.archs``; diagnostics-anchors b5)."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.knowledge import archs, builds, drivers
from envcheck.knowledge._version import vtuple
from envcheck.models import Finding, Framework, Gpu, Severity, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules import _fixes
from envcheck.rules._base import MissingFacts, rule

E, INFO = Severity.ERROR, Severity.INFO


def arch_list(fw: Framework) -> tuple[list[str], str] | None:
    """The code a framework build carries and where we read it; None when nothing says."""
    if fw.deep and fw.deep.ok and fw.deep.arch_list:
        return list(fw.deep.arch_list), "framework (imported)"
    if fw.arch_list:
        return list(fw.arch_list), "framework build facts"
    if fw.name == "torch" and fw.version:
        release, mm = builds.release_of("torch", fw.version), F.framework_cuda(fw)
        row = next((b for b in builds.builds("torch", release) if b.cuda_mm == mm), None) if release else None
        if row and row.archs:
            return list(row.archs), f"PyTorch {row.release} {row.tag} wheel arch list"
    return None


def _min_cc(fw: Framework) -> tuple[tuple[int, int], str] | None:
    """JAX publishes a floor, not a list: the lowest CC its CUDA plugin supports."""
    if fw.name != "jax":
        return None
    mm = F.framework_cuda(fw)
    row = next((b for b in builds.builds("jax") if mm and b.cuda_mm[0] == mm[0]), None)
    lo = archs.parse_cc(row.min_cc) if row and row.min_cc else None
    return (lo, f"jax[{row.extra}] supports CC >= {row.min_cc}") if lo and row else None


def _gpus_with_cc(s: Snapshot) -> list[tuple[Gpu, tuple[int, int]]]:
    gpus = (s.nvidia.gpus or []) if s.nvidia else []
    return [(g, cc) for g in gpus if (cc := F.gpu_cc(g))]


def _by_model(gpus: list[tuple[Gpu, tuple[int, int]]]) -> dict[tuple[str | None, tuple[int, int]], list[Gpu]]:
    """GPUs grouped by (name, compute capability): eight identical GPUs make one finding, not eight."""
    out: dict[tuple[str | None, tuple[int, int]], list[Gpu]] = {}
    for g, cc in gpus:
        out.setdefault((g.name, cc), []).append(g)
    return out


def _fix(s: Snapshot, fw: Framework) -> tuple[str, list[str]]:
    if fw.name == "tensorflow":
        return (
            "This TensorFlow build has no code for the GPU: use a release built for it or build from source",
            [],
        )
    fix = _fixes.gpu_build(s, fw)
    return (f"Install the build that covers every GPU: {fix.why}" if fix.build else fix.why), fix.commands


@rule(
    "arch-unsupported",
    "a GPU's compute capability is not covered by the framework's compiled code "
    "(no matching SASS, no PTX to JIT)",
    E,
)
def arch_unsupported(s: Snapshot) -> Iterator[Finding]:
    cuda_fws = [fw for fw in F.frameworks(s) if F.build_kind(fw) == "cuda"]
    if not cuda_fws:
        return
    gpus = _gpus_with_cc(s)
    if not gpus:
        if F.has_nvidia_gpu(s) is False or (s.nvidia is not None and s.nvidia.gpus == []):
            return
        raise MissingFacts("compute capability of the GPUs unknown")
    judged = 0
    for fw in cuda_fws:
        codes, floor = arch_list(fw), _min_cc(fw)
        if codes is None and floor is None:
            continue
        judged += 1
        bad: list[tuple[Gpu, tuple[int, int]]] = []
        for g, cc in gpus:
            if codes is not None:
                if not archs.covering(codes[0], cc):
                    bad.append((g, cc))
            elif floor is not None and cc < floor[0]:
                bad.append((g, cc))
        if not bad:
            continue
        fix, commands = _fix(s, fw)
        where = codes[1] if codes else (floor[1] if floor else "")
        for (name, cc), group in _by_model(bad).items():
            g = group[0]
            yield Finding(
                id="arch-unsupported",
                severity=E,
                summary=f"{fw.name} {fw.version or ''} has no code for {name or 'GPU'} (sm_{cc[0]}{cc[1]})",
                facts={
                    "framework": fw.name,
                    "version": fw.version,
                    "compute_capability": f"{cc[0]}.{cc[1]}",
                    "arch_list": codes[0] if codes else None,
                    "arch_list_from": where,
                },
                fix=fix + ".",
                commands=commands,
                subject=F.gpu_subject(g)
                if len(group) == 1
                else f"GPUs {', '.join(str(x.index) for x in group)} ({name})",
            )
    if judged == 0:
        raise MissingFacts("arch list of the installed CUDA frameworks unknown")


@rule(
    "arch-ptx-jit",
    "a GPU runs the framework only by JIT-compiling PTX: slow first start, and it needs "
    "a driver as new as the framework's CUDA toolkit",
    E,
)
def arch_ptx_jit(s: Snapshot) -> Iterator[Finding]:
    gpus = _gpus_with_cc(s)
    driver, _ = F.driver_facts(s)
    for fw in F.frameworks(s):
        if F.build_kind(fw) != "cuda":
            continue
        codes = arch_list(fw)
        mm = F.framework_cuda(fw)
        if codes is None or mm is None:
            continue
        needed = drivers.toolkit_driver(f"{mm[0]}.{mm[1]}")
        for g, cc in gpus:
            if not archs.needs_jit(codes[0], cc):
                continue
            too_old = bool(driver and needed and (vtuple(driver) or ()) < (vtuple(needed) or ()))
            yield Finding(
                id="arch-ptx-jit",
                severity=E if too_old else INFO,
                summary=f"{fw.name} runs on {g.name or 'GPU'} (sm_{cc[0]}{cc[1]}) only through PTX JIT"
                + (
                    f", which driver {driver} cannot do for CUDA {mm[0]}.{mm[1]} code (needs >= {needed})"
                    if too_old
                    else ""
                ),
                facts={
                    "framework": fw.name,
                    "compute_capability": f"{cc[0]}.{cc[1]}",
                    "covering": archs.covering(codes[0], cc),
                    "driver_version": driver,
                    "driver_for_jit": needed,
                },
                fix=(
                    f"Upgrade the driver to >= {needed}, or install a build with SASS for this GPU"
                    if too_old
                    else "Expect a long first start while the driver compiles kernels (cached afterwards in "
                    "~/.nv/ComputeCache); a build with SASS for this GPU avoids it"
                ),
                commands=F.driver_install_commands(s, needed) if too_old and needed else [],
                subject=F.gpu_subject(g),
            )
