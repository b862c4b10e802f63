"""GPU code against GPU: does the framework carry SASS or PTX that runs on each GPU's compute
capability (NVIDIA's SASS/PTX rules in ``envcheck.knowledge.archs``; diagnostics-anchors b5), and
was it built with a CUDA release that knows the GPU at all (``envcheck.knowledge.cuda_archs``: the
bundled cuBLAS/cuDNN carry code only for the architectures their release knew, so PTX JIT of the
framework's own kernels does not rescue an RTX 5090 under a cu124 build)."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.knowledge import archs, builds, cuda_archs, drivers
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
    row = F.torch_release_build(fw)
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


def cuda_fit(fw: Framework, cc: tuple[int, int]) -> cuda_archs.Fit | None:
    """Does the CUDA release ``fw`` was built with know compute capability ``cc``? None: CUDA unknown."""
    mm = F.framework_cuda(fw)
    if mm is None:
        return None
    return cuda_archs.fits(mm, cc, major_only=not F.cuda_minor_known(fw))


def _by_model(gpus: list[tuple[Gpu, tuple[int, int]]]) -> dict[tuple[str | None, tuple[int, int]], list[Gpu]]:
    """GPUs grouped by (name, compute capability): eight identical GPUs make one finding, not eight."""
    out: dict[tuple[str | None, tuple[int, int]], list[Gpu]] = {}
    for g, cc in gpus:
        out.setdefault((g.name, cc), []).append(g)
    return out


def _fix(s: Snapshot, fw: Framework) -> tuple[str, list[str]]:
    fix = _fixes.gpu_build(s, fw)
    if fw.name == "tensorflow":
        if fix.build is None:
            return f"This TensorFlow build has no code for the GPU: {fix.why}", []
        return f"Install the TensorFlow release that covers every GPU: {fix.why}", fix.commands
    return (f"Install the build that covers every GPU: {fix.why}" if fix.build else fix.why), fix.commands


@rule(
    "arch-unsupported",
    "a GPU's compute capability is not covered by the framework's compiled code "
    "(no matching SASS, no PTX to JIT) or is unknown to the CUDA release it was built with",
    E,
)
def arch_unsupported(s: Snapshot) -> Iterator[Finding]:
    cuda_fws = [fw for fw in F.frameworks(s) if F.build_kind(fw) == "cuda"]
    if not cuda_fws:
        return
    gpus = F.gpus_with_cc(s)
    if not gpus:
        if F.has_nvidia_gpu(s) is False or (s.nvidia is not None and s.nvidia.gpus == []):
            return
        raise MissingFacts("compute capability of the GPUs unknown")
    from envcheck.rules.driver import too_old_gpus

    # a GPU no current build serves is gpu-too-old's (with the last release that served it); an old
    # release from the tables that lacks its code would only repeat that, with a worse fix
    old = {(g.index, cc) for g, cc, _ in too_old_gpus(s)}
    gpus = [(g, cc) for g, cc in gpus if (g.index, cc) not in old]
    if not gpus:
        return
    judged = 0
    for fw in cuda_fws:
        codes, floor = arch_list(fw), _min_cc(fw)
        fits = {cc: cuda_fit(fw, cc) for _, cc in gpus}
        cuda_says_no = any(f is not None and f.ok is False for f in fits.values())
        if codes is None and floor is None and not cuda_says_no:
            continue  # a CUDA that knows the GPU says nothing about which archs the build compiled
        judged += 1
        bad: list[tuple[Gpu, tuple[int, int]]] = []
        for g, cc in gpus:
            fit = fits[cc]
            if fit is not None and fit.ok is False:
                bad.append((g, cc))
            elif codes is not None:
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
            fit = fits[cc]
            cuda_why = fit.reason if fit is not None and fit.ok is False else ""
            built = F.framework_cuda(fw)
            named = f"{fw.name} {fw.version}" if fw.version else fw.name
            summary = f"{named} has no code for {name or 'GPU'} (sm_{cc[0]}{cc[1]})"
            if cuda_why and built:
                summary += f": built with CUDA {F.cuda_text(fw, built)}, {cuda_why}"
            yield Finding(
                id="arch-unsupported",
                severity=E,
                summary=summary,
                facts={
                    "framework": fw.name,
                    "version": fw.version,
                    "compute_capability": f"{cc[0]}.{cc[1]}",
                    "arch_list": codes[0] if codes else None,
                    "arch_list_from": where,
                    "framework_cuda": F.cuda_text(fw, built) if built else None,
                    "cuda_for_this_gpu": _window_text(fit.window) if fit is not None else None,
                    "cuda_too_old_or_new": cuda_why or None,
                },
                fix=fix + ".",
                commands=commands,
                subject=F.gpu_subject(g)
                if len(group) == 1
                else f"GPUs {', '.join(str(x.index) for x in group)} ({name})",
            )
    if judged == 0:
        raise MissingFacts("arch list of the installed CUDA frameworks unknown")


def _window_text(w: cuda_archs.Window) -> str | None:
    """ ">= 12.8", "<= 12.9", "11.0-12.9"; None when the table knows neither end."""
    lo = f"{w.min_cuda[0]}.{w.min_cuda[1]}" if w.min_cuda else None
    hi = f"{w.max_cuda[0]}.{w.max_cuda[1]}" if w.max_cuda else None
    if lo and hi:
        return f"{lo}-{hi}"
    return f">= {lo}" if lo else (f"<= {hi}" if hi else None)


@rule(
    "arch-ptx-jit",
    "a GPU runs the framework only by JIT-compiling PTX: slow first start, and it needs "
    "a driver as new as the framework's CUDA toolkit",
    E,
)
def arch_ptx_jit(s: Snapshot) -> Iterator[Finding]:
    gpus = F.gpus_with_cc(s)
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
            fit = cuda_fit(fw, cc)
            if fit is not None and fit.ok is False:
                continue  # PTX would JIT, but the CUDA libraries do not know this GPU: arch-unsupported
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
