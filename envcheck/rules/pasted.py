"""Verdicts that a pasted report's own error lines state (``Snapshot.paste.lines``).

Two kinds live here. Rules with their own ids, for causes no machine probe can see because only
the failing program printed them (a kernel without code for the GPU, CUDA error 100 or 804, JAX's
library checks, Docker's GPU runtime). And ``complete``: after the registry ran, it adds the
verdict an error line proves for ids whose structured rule lacked the facts to judge
(``driver-too-old`` from "found version 11040" when the paste does not name the torch build), so
one cause gets one id whichever evidence a paste holds. Every such finding quotes the line it
rests on and lists what it had to assume.

Findings built on a partial paste are qualified too: a GPU list from log lines or a cut table is
not a full inventory, so verdicts that count GPUs say so and drop to warnings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from envcheck.knowledge import builds, capabilities, drivers
from envcheck.knowledge._version import cuda_mm, cuda_text, cudnn_tuple, vstr, vtuple
from envcheck.models import Finding, Framework, PastedLine, Severity, SkippedRule, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules import _fixes
from envcheck.rules._base import MissingFacts, rule
from envcheck.rules.claims import tf_stated_cuda_mismatch

E, W = Severity.ERROR, Severity.WARNING

__all__ = ["PASTE_ONLY", "complete", "hits"]

#: rules that judge only pasted error lines: on a probed machine they have nothing to read
PASTE_ONLY = (
    "no-kernel-image",
    "no-cuda-device",
    "cuda-compat-unsupported",
    "cuda-libs-too-old",
    "jax-plugin-mismatch",
    "container-toolkit-missing",
    "container-no-host-driver",
    "gpu-fell-off-bus",
    "wsl-libcuda-path",
)


def hits(s: Snapshot, *kinds: str) -> list[PastedLine]:
    """The pasted error lines of these kinds, in paste order."""
    if s.paste is None:
        return []
    return [ln for ln in s.paste.lines if ln.kind in kinds]


def _quoted(lines: list[PastedLine]) -> list[str]:
    return [ln.text for ln in lines[:3]]


def _fires(func: Callable[[Snapshot], Iterable[Finding]], s: Snapshot) -> bool:
    try:
        return any(True for _ in func(s))
    except MissingFacts:
        return False
    except Exception:  # a rule bug is the registry's to report, not a reason to double a finding
        return False


def _torch(s: Snapshot) -> Framework | None:
    return next(
        (f for f in (s.frameworks.frameworks if s.frameworks else []) if f.name == "torch" and f.installed),
        None,
    )


def _in_container(s: Snapshot) -> bool:
    return bool(s.paste and s.paste.container_hint) or bool(F.in_container(s))


# --------------------------------------------------------------------------- rules with their own ids


@rule(
    "no-kernel-image",
    "a CUDA kernel has no code for this GPU ('no kernel image is available'): the framework or a CUDA "
    "extension was built without the GPU's architecture",
    E,
)
def no_kernel_image(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "no-kernel-image")
    if not lines:
        return
    from envcheck.rules.arch import arch_list, arch_unsupported
    from envcheck.rules.driver import too_old_gpus

    if (
        _fires(arch_unsupported, s)
        or too_old_gpus(s)
        or hits(s, "torch-arch-incompatible", "torch-gpu-too-old")
    ):
        return  # the framework lacks the GPU's code: arch-unsupported / gpu-too-old say which build fixes it
    gpus = F.gpus_with_cc(s)
    torch = _torch(s)
    codes = arch_list(torch) if torch else None
    covered = (
        bool(gpus and codes) and all(bool(_covering(codes[0], cc)) for _, cc in gpus) if codes else False
    )
    facts: dict[str, object] = {"error_lines": _quoted(lines)}
    if covered and torch is not None and codes is not None:
        g, cc = gpus[0]
        facts |= {
            "framework": "torch",
            "version": torch.version,
            "arch_list": codes[0],
            "compute_capability": f"{cc[0]}.{cc[1]}",
        }
        yield Finding(
            id="no-kernel-image",
            severity=E,
            summary=f"torch {torch.version or ''} has code for {g.name or 'this GPU'} (sm_{cc[0]}{cc[1]}); "
            "the kernel that failed belongs to another library or a CUDA extension built without it",
            facts=facts,
            fix=f"Install a build of the failing library made for compute capability {cc[0]}.{cc[1]}, or "
            f'rebuild the extension for it (TORCH_CUDA_ARCH_LIST="{cc[0]}.{cc[1]}" before building). '
            "Libraries with their own kernels (vLLM, flash-attn, xformers, bitsandbytes, detectron2 ops) "
            "state the compute capabilities they support.",
            commands=[
                f'TORCH_CUDA_ARCH_LIST="{cc[0]}.{cc[1]}" pip install --no-build-isolation --force-reinstall '
                "<the extension>"
            ],
        )
        return
    named = ""
    fix = (
        "Compare the GPU's compute capability with the code the framework and each CUDA extension "
        "carry; install a build that includes it (PyTorch: the wheel index for a CUDA that knows the GPU) "
        "or rebuild the extension with TORCH_CUDA_ARCH_LIST set to the GPU's compute capability. A GPU "
        "older than the build's minimum needs an older release or the CPU build."
    )
    if gpus:
        g, cc = gpus[0]
        named = f"{g.name or 'the GPU'} (compute capability {cc[0]}.{cc[1]})"
        facts |= {"gpu": g.name, "compute_capability": f"{cc[0]}.{cc[1]}"}
        facts["assumed"] = ["which build and arch list the failing code has (the paste does not say)"]
        end = _support_end(cc)
        if end is not None and end.torch_last:
            fix += (
                f" PyTorch's own binaries last carried code for {cc[0]}.{cc[1]} in {end.torch_last} "
                f"({end.torch_note})."
            )
    else:
        facts["assumed"] = [
            "the paste does not say which GPU, or which build and arch list the failing code has"
        ]
    yield Finding(
        id="no-kernel-image",
        severity=E,
        summary=f"a CUDA kernel has no code for {named}: 'no kernel image is available'"
        if named
        else "a CUDA kernel has no code for this GPU's architecture ('no kernel image is available')",
        facts=facts,
        fix=fix,
        commands=[
            'python -c "import torch; print(torch.cuda.get_device_name(), '
            "torch.cuda.get_device_capability(), "
            'torch.cuda.get_arch_list())"'
        ],
    )


def _support_end(cc: tuple[int, int]) -> capabilities.SupportEnd | None:
    end = capabilities.support_end(cc)
    return end if end is not None and not end.still_served else None


def _covering(codes: list[str], cc: tuple[int, int]) -> list[str]:
    from envcheck.knowledge import archs

    return archs.covering(codes, cc)


@rule(
    "no-cuda-device", "CUDA reports no usable GPU ('no CUDA-capable device is detected', error 100 or 38)", E
)
def no_cuda_device(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "cuda-no-device")
    if not lines:
        return
    env = s.system.env if s.system else {}
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    hook = any(ln.values.get("source") == "nvidia-container-cli" for ln in lines)
    facts: dict[str, object] = {"error_lines": _quoted(lines), "CUDA_VISIBLE_DEVICES": cvd}
    gpus = s.nvidia.gpus if s.nvidia else None
    if hook:
        fix = (
            "Docker's NVIDIA hook itself found no GPU on the host: check `nvidia-smi` on the host, that the "
            "driver's kernel module is loaded, and that Docker does not remap users (userns-remap hides the "
            "devices)."
        )
        commands = ["nvidia-smi", "docker info | grep -i -e runtime -e userns"]
    elif cvd is not None:
        count = f" (the paste lists {len(gpus)} GPU(s))" if gpus else ""
        fix = (
            f"CUDA_VISIBLE_DEVICES={cvd} is set{count}: it must name GPUs that exist, counted from 0 as "
            "nvidia-smi numbers them; unset it or list existing indices."
        )
        commands = ["nvidia-smi -L", "unset CUDA_VISIBLE_DEVICES"]
    else:
        facts["assumed"] = ["the GPU is present and its driver loaded (the paste shows neither)"]
        fix = (
            "Check the usual causes in order: CUDA_VISIBLE_DEVICES (or a device index in the program's "
            "config) naming a GPU that does not exist; a container started without --gpus; no driver loaded "
            "(`nvidia-smi` fails)."
        )
        commands = ["nvidia-smi -L", "echo $CUDA_VISIBLE_DEVICES"]
    if _in_container(s) and not hook:
        fix += " In a container, start it with --gpus all (NVIDIA Container Toolkit)."
    yield Finding(
        id="no-cuda-device",
        severity=E,
        summary="CUDA sees no usable GPU (no CUDA-capable device is detected)",
        facts=facts,
        fix=fix,
        commands=commands,
    )


@rule(
    "cuda-compat-unsupported",
    "CUDA error 804: forward-compatibility libraries are used on a GPU or driver that does not support them "
    "(or the driver was updated without a reboot)",
    E,
)
def cuda_compat_unsupported(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "cuda-compat-unsupported")
    if not lines:
        return
    driver, ceiling = F.driver_facts(s)
    facts: dict[str, object] = {
        "error_lines": _quoted(lines),
        "driver_version": driver,
        "driver_cuda": cuda_text(ceiling),
    }
    compat_loaded = False
    if driver and ceiling:
        implied = drivers.highest_cuda(driver)
        compat_loaded = implied is not None and (cuda_mm(ceiling) or (0, 0)) > implied
        facts["driver_supports_cuda"] = f"{implied[0]}.{implied[1]}" if implied else None
    summary = "CUDA refused forward compatibility (error 804)"
    if compat_loaded:
        summary += (
            f": driver {driver} reports a newer CUDA than it supports, so cuda-compat libraries are loaded"
        )
    yield Finding(
        id="cuda-compat-unsupported",
        severity=E,
        summary=summary,
        facts=facts,
        fix="Forward compatibility (the cuda-compat package, /usr/local/cuda/compat) only works on "
        "data-center GPUs with a supported driver branch. Take the compat directory off LD_LIBRARY_PATH (or "
        "use an image without it) and install a driver new enough for the CUDA in use. Right after a driver "
        "update, reboot: a module that was not reloaded gives the same error.",
        commands=["ldconfig -p | grep -i compat", "sudo reboot"],
    )


def _cuda_lib_version(lib: str, raw: str) -> str:
    """JAX's integers: CUDA 12010 -> 12.1, cuBLAS 120205 -> 12.2.5, cuDNN 8906 -> 8.9.6."""
    n = int(raw) if raw.isdigit() else None
    if n is None:
        return raw
    if lib == "cuDNN":
        t = cudnn_tuple(raw)
        return vstr(t) if t else raw
    if lib == "CUDA":
        return f"{n // 1000}.{(n % 1000) // 10}"
    if n >= 100000:
        return f"{n // 10000}.{(n % 10000) // 100}.{n % 100}"
    if n >= 10000:  # cuSOLVER, cuFFT, cuSPARSE: major * 1000 + minor * 100 + patch ("11401" -> 11.4.1)
        return f"{n // 1000}.{(n % 1000) // 100}.{n % 100}"
    return raw


@rule(
    "cuda-libs-too-old",
    "a CUDA library the framework loads (runtime, cuBLAS, cuSPARSE, cuFFT, cuPTI) is older than the one it "
    "was built against (JAX's start-up check)",
    E,
)
def cuda_libs_too_old(s: Snapshot) -> Iterator[Finding]:
    lines = [ln for ln in hits(s, "jax-found-older", "jax-outdated") if ln.values.get("lib") != "cuDNN"]
    if not lines:
        return
    v = lines[0].values
    lib = v.get("lib", "CUDA")
    found, built = _cuda_lib_version(lib, v.get("found", "?")), _cuda_lib_version(lib, v.get("built", "?"))
    minimum = _cuda_lib_version(lib, v["min"]) if "min" in v else None
    major = (cuda_mm(found) or (12, 0))[0] if lib == "CUDA" else 12
    yield Finding(
        id="cuda-libs-too-old",
        severity=E,
        summary=f"JAX was built against {lib} {built} but found {lib} {found}"
        + (f" (minimum {minimum})" if minimum else ""),
        facts={
            "error_lines": _quoted(lines),
            "library": lib,
            "found": found,
            "built": built,
            "minimum": minimum,
        },
        fix="Install the CUDA libraries JAX's plugin pins (the jax[cudaNN] extra brings matching nvidia-* "
        "wheels) and keep an older system CUDA off LD_LIBRARY_PATH, which the loader searches first.",
        commands=[f'pip install -U "jax[cuda{major}]"', "unset LD_LIBRARY_PATH"],
        subject="jax",
    )


@rule(
    "jax-plugin-mismatch",
    "the jax, jaxlib and CUDA plugin versions do not match (PJRT API or version check)",
    E,
)
def jax_plugin_mismatch(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "jax-plugin-mismatch")
    if not lines:
        return
    yield Finding(
        id="jax-plugin-mismatch",
        severity=E,
        summary="jax, jaxlib and the CUDA plugin are different releases",
        facts={"error_lines": _quoted(lines), **lines[0].values},
        fix="Install jax, jaxlib and the CUDA plugin as one release through the extra (do not mix jax[cpu] "
        "with a CUDA jaxlib); ENABLE_PJRT_COMPATIBILITY=1 only papers over a PJRT API gap.",
        commands=[
            "pip uninstall -y jax jaxlib jax-cuda12-plugin jax-cuda12-pjrt",
            'pip install -U "jax[cuda12]"',
        ],
        subject="jax",
    )


@rule(
    "container-toolkit-missing",
    "Docker cannot give containers the GPU (--gpus): the NVIDIA Container Toolkit is not installed or "
    "Docker is not configured for it",
    E,
)
def container_toolkit_missing(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "docker-no-gpu-runtime")
    runtimes = s.paste.docker_runtimes if s.paste else None
    if not lines and not (runtimes is not None and "nvidia" not in runtimes and _asks_for_gpu(s)):
        return
    windows = bool(s.system and s.system.os == "Windows") or any(
        "WDDM" in (g.compute_mode or "") for g in (s.nvidia.gpus or [] if s.nvidia else [])
    )
    fix = (
        "Install nvidia-container-toolkit on the host, register it with Docker and restart the daemon. A "
        "Docker installed as a snap does not see the toolkit (use Docker's own packages); Docker Desktop "
        "needs the WSL2 backend for GPUs."
    )
    yield Finding(
        id="container-toolkit-missing",
        severity=E,
        summary="Docker has no NVIDIA runtime, so --gpus cannot give the container a GPU",
        facts={"error_lines": _quoted(lines), "docker_runtimes": runtimes, "windows_host": windows or None},
        fix=fix,
        commands=[
            "sudo apt-get install -y nvidia-container-toolkit",
            "sudo nvidia-ctk runtime configure --runtime=docker",
            "sudo systemctl restart docker",
            "docker run --rm --gpus all ubuntu nvidia-smi",
        ],
    )


def _asks_for_gpu(s: Snapshot) -> bool:
    hint = (s.paste.container_hint if s.paste else None) or ""
    return "--gpus" in hint or "runtime=nvidia" in hint or "--runtime nvidia" in hint


@rule(
    "container-no-host-driver",
    "Docker's NVIDIA hook cannot load the driver library (libnvidia-ml.so.1) on the host: no driver, or a "
    "Docker that cannot see it",
    E,
)
def container_no_host_driver(s: Snapshot) -> Iterator[Finding]:
    wsl = hits(s, "container-wsl-no-adapters")
    if wsl:
        yield Finding(
            id="container-no-host-driver",
            severity=E,
            summary="nvidia-container-cli runs under WSL but finds no GPU adapter to give the container",
            facts={"error_lines": _quoted(wsl)},
            fix="The hook sees no NVIDIA GPU through WSL (no /dev/dxg): WSL1 has no GPU access (convert the "
            "distribution to WSL2), the machine may have no NVIDIA GPU (then run the image without --gpus), "
            "or the Windows driver, WSL or Docker Desktop is too old for GPU paravirtualization (update "
            "them, then `wsl --shutdown`). Check `nvidia-smi` inside the WSL distribution first.",
            commands=[
                "wsl -l -v  # in Windows: VERSION must be 2",
                "wsl --update",
                "wsl --shutdown",
                "nvidia-smi  # inside the WSL distribution",
            ],
        )
        return
    lines = hits(s, "container-cli-no-nvml")
    if not lines:
        return
    module = s.nvidia.kernel_module if s.nvidia else None
    nouveau = bool(module and module.nouveau_loaded)
    yield Finding(
        id="container-no-host-driver",
        severity=E,
        summary="nvidia-container-cli found no NVIDIA driver library on the host",
        facts={"error_lines": _quoted(lines)},
        fix=_NOUVEAU_HOST_FIX
        if nouveau
        else "Install the NVIDIA driver on the host and check `nvidia-smi` there first. If it works on the "
        "host, the Docker daemon cannot see the host's libraries: a snap-installed or rootless Docker, or "
        "Docker Desktop without the WSL2 backend.",
        commands=(_NOUVEAU_COMMANDS if nouveau else [])
        + ["nvidia-smi", "ldconfig -p | grep -E 'libnvidia-ml|libcuda'"],
    )


_NOUVEAU_HOST_FIX = (
    "The host's kernel log shows nouveau, not the NVIDIA driver, driving the GPU: blacklist nouveau, "
    "reboot, install the NVIDIA driver on the host and check `nvidia-smi` there before starting a container."
)
_NOUVEAU_COMMANDS = [
    "printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | "
    "sudo tee /etc/modprobe.d/blacklist-nouveau.conf",
    "sudo update-initramfs -u && sudo reboot",
]


@rule(
    "gpu-fell-off-bus",
    "the GPU fell off the PCIe bus (Xid 79, 'GPU is lost'): a hardware, power or heat fault no driver or "
    "framework setting fixes",
    E,
)
def gpu_fell_off_bus(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "gpu-fell-off-bus")
    if not lines:
        return
    yield Finding(
        id="gpu-fell-off-bus",
        severity=E,
        summary="the GPU fell off the PCIe bus (Xid 79): it is lost until a reset, whatever the software",
        facts={
            "error_lines": _quoted(lines),
            "driver_version": s.nvidia.driver_version if s.nvidia else None,
        },
        fix="Reset or reboot to get the GPU back; then find the cause, which is below the software: "
        "overheating, an under-sized or badly seated power connection, the card's seating in its slot, "
        "PCIe riser or link errors, or an outdated system BIOS. Watch temperatures and power under load; "
        "a GPU that keeps falling off after that needs replacing. Reinstalling drivers or frameworks does "
        "not help.",
        commands=[
            "sudo dmesg -T | grep -i -e xid -e 'fallen off'",
            "nvidia-smi -q -d TEMPERATURE,POWER,PERFORMANCE",
            "sudo lspci -vvv -d 10de: | grep -i -e lnksta -e uncorr",
        ],
    )


@rule(
    "wsl-libcuda-path",
    "under WSL, cuDNN cannot load the driver's libcuda.so because /usr/lib/wsl/lib is not on the loader path",
    E,
)
def wsl_libcuda_path(s: Snapshot) -> Iterator[Finding]:
    lines = hits(s, "cudnn-no-libcuda")
    if not lines or not F.is_wsl(s):
        return  # off WSL a missing libcuda.so is a missing driver (or its dev symlink): no-driver's case
    yield Finding(
        id="wsl-libcuda-path",
        severity=E,
        summary="cuDNN cannot find libcuda.so: under WSL it lives in /usr/lib/wsl/lib, which the loader "
        "does not search",
        facts={"error_lines": _quoted(lines)},
        fix="WSL provides the driver's libraries in /usr/lib/wsl/lib (from the Windows driver); cuDNN opens "
        "the unversioned libcuda.so, which the loader cache often lacks there. Put the directory on the "
        "loader path (or refresh the cache), and never install a Linux driver inside WSL.",
        commands=[
            "export LD_LIBRARY_PATH=/usr/lib/wsl/lib:$LD_LIBRARY_PATH",
            "sudo ldconfig /usr/lib/wsl/lib",
            "ls -l /usr/lib/wsl/lib/libcuda.so*",
        ],
    )


# --------------------------------------------------------------------------- fallbacks for structured ids


def _assumed(*items: str) -> dict[str, object]:
    given = [i for i in items if i]
    return {"assumed": given} if given else {}


def _driver_too_old(s: Snapshot) -> Finding | None:
    from envcheck.rules.driver import too_old_gpus

    if too_old_gpus(s):
        return None  # gpu-too-old: no driver upgrade helps
    torch_lines = hits(s, "torch-driver-too-old")
    insufficient = hits(s, "cuda-insufficient-driver")
    required = hits(s, "container-cuda-requirement")
    ptx = hits(s, "ptx-unsupported-toolchain")
    if not torch_lines and not insufficient and not required and not ptx:
        return None
    driver, ceiling = F.driver_facts(s)
    if required:
        return _image_needs_newer_driver(s, required, driver, ceiling)
    if ptx and not torch_lines and not insufficient:
        return _ptx_needs_newer_driver(s, ptx, driver, ceiling)
    cuda12 = drivers.recommended_driver(12) or "525.60.13"
    cuda13 = drivers.recommended_driver(13) or "580.65.06"
    if torch_lines:
        found = int(torch_lines[0].values["found"])
        shown = f"{found // 1000}.{(found % 1000) // 10}"
        torch = _torch(s)
        facts: dict[str, object] = {
            "error_lines": _quoted(torch_lines),
            "driver_cuda": shown,
            "driver_version": driver,
        }
        if torch is None or not torch.version:
            facts |= _assumed(
                "a torch CUDA build newer than the driver's CUDA (the paste does not give its version)"
            )
        alt = _fixes.gpu_build(s, torch).commands if torch and torch.version else []
        older = (
            f"a torch build for CUDA {found // 1000}.x or older (minor-version compatibility)"
            if found >= 11000
            else f"a torch build for CUDA {shown} or older"
        )
        fix = (
            f"torch itself says the driver only supports CUDA {shown}. Upgrade the driver: >= {cuda12} runs "
            f"every CUDA 12.x build, >= {cuda13} every CUDA 13.x build"
            + (
                "; or install the torch build for a CUDA this driver runs (commands)."
                if alt
                else f"; or install {older}."
            )
        )
        return Finding(
            id="driver-too-old",
            severity=E,
            summary=f"the NVIDIA driver (CUDA {shown}) is older than the CUDA torch was built with",
            facts=facts,
            fix=fix,
            commands=alt or F.driver_install_commands(s, cuda12),
            subject="torch",
        )
    facts = {
        "error_lines": _quoted(insufficient),
        "driver_version": driver,
        "driver_cuda": cuda_text(ceiling),
    }
    if _in_container(s):
        fix = (
            "CUDA error 35 in a container usually means it was started without the GPU (no --gpus): the "
            "runtime then finds no driver. Start it with --gpus all; otherwise upgrade the host driver."
        )
        commands = ["docker run --gpus all ...", "nvidia-smi"]
        facts |= _assumed("the error comes from inside the container the paste mentions")
    else:
        if driver is None and ceiling is None:
            facts |= _assumed("a driver is installed (error 35 also appears when there is none)")
        fix = (
            "The driver is older than the CUDA runtime the program uses (error 35): nvidia-smi's 'CUDA "
            "Version' must be at least the program's CUDA. Upgrade the driver, or install the program's "
            "build for the driver's CUDA."
        )
        if F.is_wsl(s):
            fix += (
                " Under WSL2 the driver is the Windows one, and error 35 also means Windows is not passing "
                "CUDA to WSL: a Windows driver without WSL support (before R470), or a Windows build without "
                "GPU paravirtualization (or with a regression in it)."
            )
        commands = F.driver_install_commands(s, cuda12)
    return Finding(
        id="driver-too-old",
        severity=E,
        summary="CUDA error 35: the driver is older than the CUDA runtime the program was built with",
        facts=facts,
        fix=fix,
        commands=commands,
    )


def _ptx_needs_newer_driver(
    s: Snapshot, lines: list[PastedLine], driver: str | None, ceiling: int | None
) -> Finding:
    """CUDA error 222: the driver JIT-compiles a program's PTX only when it is at least as new as the
    toolkit that wrote it; a program built with a newer CUDA than the driver's fails this way."""
    cuda, toolkit = s.cuda, None
    if cuda:
        toolkit = cuda.nvcc_version or next((t.version for t in cuda.toolkits or [] if t.version), None)
    facts: dict[str, object] = {
        "error_lines": _quoted(lines),
        "driver_version": driver,
        "driver_cuda": cuda_text(ceiling) or _implied_cuda(driver),
        "toolkit": toolkit,
    }
    if not toolkit:
        facts |= _assumed(
            "the program was built by a CUDA toolkit newer than the driver (the paste names none)"
        )
    need = cuda_mm(toolkit) if toolkit else None
    want = drivers.toolkit_driver(f"{need[0]}.{need[1]}") if need else None
    fix = (
        "The driver is older than the CUDA toolkit that compiled this program's GPU code (error 222): "
        "upgrade the driver to one that supports "
        + (
            f"CUDA {need[0]}.{need[1]} (>= {want})"
            if need and want
            else "that CUDA (nvidia-smi's 'CUDA Version' must be at least the toolkit's)"
        )
        + ", or rebuild the program with a toolkit no newer than the driver's CUDA."
    )
    return Finding(
        id="driver-too-old",
        severity=E,
        summary="CUDA error 222: the program's PTX comes from a CUDA toolkit newer than the driver"
        + (f" ({driver})" if driver else ""),
        facts=facts,
        fix=fix,
        commands=F.driver_install_commands(s, want or drivers.recommended_driver(12) or "525.60.13"),
    )


def _image_needs_newer_driver(
    s: Snapshot, lines: list[PastedLine], driver: str | None, ceiling: int | None
) -> Finding:
    """nvidia-container-cli's ``unsatisfied condition: cuda>=12.8``: the image's NVIDIA_REQUIRE_CUDA
    is compared with the CUDA version the host driver reports, without minor-version compatibility,
    so the driver must be the one NVIDIA ships with that toolkit (or newer)."""
    need = max((ln.values["need"] for ln in lines), key=lambda v: cuda_mm(v) or (0, 0))
    want = drivers.toolkit_driver(need)
    facts: dict[str, object] = {
        "error_lines": _quoted(lines),
        "image_needs_cuda": need,
        "driver_version": driver,
        "driver_cuda": cuda_text(ceiling) or _implied_cuda(driver),
    }
    if driver is None and ceiling is None:
        facts |= _assumed("the host driver's version (the paste does not give it)")
    has = facts["driver_cuda"]
    if has:
        tail = f" but the host driver{(' ' + driver) if driver else ''} supports CUDA {has}"
    elif driver and want and (vtuple(driver) or ()) < (vtuple(want) or ()):
        tail = f" but the host driver {driver} is older than CUDA {need}'s own ({want})"
    else:
        tail = ", newer than the host driver supports"
    summary = f"the container image needs CUDA >= {need}{tail}"
    return Finding(
        id="driver-too-old",
        severity=E,
        summary=summary,
        facts=facts,
        fix=f"Upgrade the host driver to one that reports CUDA >= {need}"
        + (f" (>= {want}, the driver NVIDIA ships with CUDA {need})" if want else "")
        + ", or use an image built for the CUDA the driver reports (nvidia-smi's 'CUDA Version'). "
        "The check compares versions only: NVIDIA_DISABLE_REQUIRE=1 skips it, and the image then runs if "
        "the driver meets its CUDA family's floor (minor-version compatibility, limited features).",
        commands=[
            *F.driver_install_commands(s, want or "580.65.06"),
            "nvidia-smi  # CUDA Version on the host",
        ],
    )


def _implied_cuda(driver: str | None) -> str | None:
    mm = drivers.highest_cuda(driver) if driver else None
    return f"{mm[0]}.{mm[1]}" if mm else None


def _driver_dlopen(s: Snapshot) -> list[PastedLine]:
    """TensorFlow's "Could not load dynamic library 'libcuda.so.1'": the driver's own library, not CUDA's."""
    return [ln for ln in hits(s, "tf-dlopen") if ln.values.get("lib", "").startswith("libcuda.so")]


def _no_driver(s: Snapshot) -> Finding | None:
    lines = hits(s, "torch-no-driver", "smi-no-nvml")
    if not F.is_wsl(s):  # under WSL libcuda lives in /usr/lib/wsl/lib: a loader path, not a missing driver
        lines += _driver_dlopen(s)
    if not lines or _in_container(s):
        return None
    gpu = F.has_nvidia_gpu(s)
    facts: dict[str, object] = {"error_lines": _quoted(lines)}
    want = drivers.recommended_driver(13) or "580.65.06"
    if gpu:
        return Finding(
            id="no-driver",
            severity=E,
            summary="an NVIDIA GPU is listed but no NVIDIA driver was found",
            facts=facts,
            fix="Install the NVIDIA driver, then reboot.",
            commands=F.driver_install_commands(s, want),
        )
    facts |= _assumed("whether this machine has an NVIDIA GPU (the paste lists none)")
    return Finding(
        id="no-driver",
        severity=W,
        summary="no NVIDIA driver was found: on a machine without an NVIDIA GPU, run on the CPU",
        facts=facts,
        fix="Without an NVIDIA GPU (an Intel/AMD laptop, a CPU cloud runtime) this is expected: run on the "
        "CPU (device='cpu', no .cuda()). With an NVIDIA GPU, install its driver and check `nvidia-smi`.",
        commands=["nvidia-smi"],
    )


def _container_no_gpu(s: Snapshot) -> Finding | None:
    lines = hits(s, "smi-no-nvml", "torch-no-driver", "nvml-unknown")
    if not lines or not _in_container(s) or hits(s, "container-cli-no-nvml"):
        return None
    if any(ln.kind == "nvml-unknown" for ln in lines):
        return None  # container-gpu-lost's case
    return Finding(
        id="container-no-gpu",
        severity=E,
        summary="inside the container the NVIDIA driver libraries are missing",
        facts={"error_lines": _quoted(lines), "container": s.paste.container_hint if s.paste else None},
        fix="Start the container with --gpus all (NVIDIA Container Toolkit on the host). If it already was, "
        "the image's loader cache misses the injected libraries: run ldconfig in the container, or on "
        'Debian hosts set ldconfig = "@/sbin/ldconfig" in /etc/nvidia-container-runtime/config.toml; '
        "broken libnvidia-ml.so.1 / libcuda.so.1 symlinks in the image do the same.",
        commands=[
            "docker run --rm --gpus all <image> nvidia-smi",
            "ldconfig -p | grep -e libnvidia-ml -e libcuda",
        ],
    )


def _fabric_manager(s: Snapshot) -> Finding | None:
    lines = hits(s, "cuda-system-not-ready")
    if not lines:
        return None
    driver = s.nvidia.driver_version if s.nvidia else None
    branch = driver.split(".")[0] if driver else None
    facts: dict[str, object] = {"error_lines": _quoted(lines), "driver_version": driver}
    if driver is None:
        facts |= _assumed("an NVSwitch system (HGX/DGX: A100, H100, H200, B200 SXM)")
    return Finding(
        id="fabric-manager-missing",
        severity=E,
        summary="CUDA error 802 (system not yet initialized): the NVSwitch fabric manager is not running",
        facts=facts,
        fix=f"Install nvidia-fabricmanager of exactly the driver's version ({driver or 'check nvidia-smi'}), "
        "then enable and start it; on a cloud instance the image may lack it.",
        commands=[
            f"sudo apt-get install -y nvidia-fabricmanager-{branch}"
            if branch
            else "install nvidia-fabricmanager (same version as the driver)",
            "sudo systemctl enable --now nvidia-fabricmanager",
            "nvidia-smi -q | grep -A 2 -i fabric",
        ],
    )


def _arch_unsupported(s: Snapshot) -> Finding | None:
    from envcheck.rules.driver import too_old_gpus

    lines = hits(s, "torch-arch-incompatible", "torch-gpu-too-old", "torch-gpu-needs-newer-cuda")
    lines = [ln for ln in lines if _nvidia(ln)]
    if not lines or too_old_gpus(s):
        return None
    torch = _torch(s) or Framework(name="torch", installed=True, build="cuda")
    v = lines[0].values
    fix = _fixes.gpu_build(s, torch)
    facts: dict[str, object] = {
        "error_lines": _quoted(lines),
        "gpu": v.get("name"),
        "compute_capability": v.get("cc"),
    }
    assumed = [
        "" if torch.version else "the torch version (the paste does not give it)",
        ""
        if F.driver_facts(s)[0]
        else "a driver new enough for the build named (the paste does not give it)",
    ]
    facts |= _assumed(*assumed)
    if v.get("need") and v.get("have"):
        facts |= {"framework_cuda": cuda_text(int(v["have"])), "needs_cuda": cuda_text(int(v["need"]))}
        summary = (
            f"torch was built with CUDA {facts['framework_cuda']}; {v.get('name') or 'this GPU'} needs a "
            f"build for CUDA >= {facts['needs_cuda']} (torch says so)"
        )
    else:
        summary = f"torch says it has no code for {v.get('name') or 'this GPU'}" + (
            f" (compute capability {v['cc']})" if v.get("cc") else ""
        )
    return Finding(
        id="arch-unsupported",
        severity=E,
        summary=summary,
        facts=facts,
        fix=(f"Install the build that covers this GPU: {fix.why}." if fix.build else f"{fix.why}."),
        commands=fix.commands,
        subject="torch",
    )


#: error lines in which a framework says it is a CPU build, and the framework
_CPU_BUILD_LINES = {
    "torch-not-compiled-cuda": ("torch", "Torch not compiled with CUDA enabled"),
    "jax-cpu-jaxlib": ("jax", "a CUDA-enabled jaxlib is not installed"),
    "conda-cpu-build": ("torch", "conda installed its CPU build beside the CUDA runtime package asked for"),
}


def _cpu_only_wheel(s: Snapshot) -> Finding | None:
    """torch's "Torch not compiled with CUDA enabled", JAX's "a CUDA-enabled jaxlib is not installed":
    an error when the paste shows an NVIDIA driver or GPU, else a warning that assumes one is meant
    to be used."""
    from envcheck.rules.driver import too_old_gpus

    # JAX prints "a CUDA-enabled jaxlib is not installed" after its CUDA plugin failed to start too: with the
    # plugin in the paste that line is a symptom of the plugin's own error, not a CPU build
    lines = [ln for ln in hits(s, *_CPU_BUILD_LINES) if not ln.values.get("cuda_plugin")]
    if too_old_gpus(s) or _os(s) == "Darwin":
        return None  # a Mac has no CUDA build to install; a GPU below every build: gpu-too-old
    if lines:
        name, words = _CPU_BUILD_LINES[lines[0].kind]
        how = f"'{words}'"
        fw = s.framework(name) or Framework(name=name, installed=True, build="cpu")
        if F.build_kind(fw) in ("xpu", "rocm", "mps"):
            return None  # an Intel/AMD build: the code that asked for CUDA is at fault, not the wheel
    else:
        # a dump names a CPU build and the paste's error lines show a GPU was wanted (is_available() False,
        # a CUDA error): the structured rule stays silent without GPU facts, a bare dump stays so too
        cpu = [f for f in (s.frameworks.frameworks if s.frameworks else []) if f.installed
               and f.name in F.CUDA_FRAMEWORKS and F.build_kind(f) == "cpu"]  # fmt: skip
        jetson = F.is_jetson(s)  # a Jetson always has its GPU: a CPU build there needs no error line
        wanted = bool(s.paste and (s.paste.lines or s.paste.gpu_wanted))  # an error, `--gpus`, `.cuda()`
        if not cpu or F.has_nvidia_gpu(s) or not (jetson or wanted):
            return None
        fw, name = cpu[0], cpu[0].name
        how = "as the report states" if fw.version and "+cpu" not in fw.version else "its version says so"
        lines = hits(s, "torch-no-gpu") if name == "torch" else []
    nv = s.nvidia
    gpu_seen = bool(nv and (nv.gpus or nv.driver_version or nv.cuda_driver_version)) or F.is_jetson(s)
    fix = _fixes.gpu_build(s, fw)
    facts: dict[str, object] = {
        "error_lines": _quoted(lines),
        "framework": name,
        "version": fw.version,
        "build": "cpu",
        "driver_version": nv.driver_version if nv else None,
        "gpus": [g.name for g in nv.gpus or []] if nv else [],
        "gpu_asked_for": s.paste.gpu_wanted if s.paste else None,
    }
    reinstall = f"Reinstall {name} as a CUDA build: {fix.why}." if fix.build else f"{fix.why}."
    said = f"{name} {fw.version or ''}".rstrip() + f" is a CPU-only build ({how})"
    if gpu_seen:
        return Finding(
            id="cpu-only-wheel",
            severity=E,
            summary=f"{said} but this machine "
            + ("is a Jetson, with an NVIDIA GPU" if F.is_jetson(s) else "has an NVIDIA driver"),
            facts=facts,
            fix=reinstall,
            commands=fix.commands,
            subject=name,
        )
    facts |= _assumed("the machine has an NVIDIA GPU the program is meant to use (the paste shows none)")
    return Finding(
        id="cpu-only-wheel",
        severity=W,
        summary=f"{said}: it runs on the CPU",
        facts=facts,
        fix=f"With an NVIDIA GPU: {reinstall[0].lower()}{reinstall[1:]} Without one (or when only another "
        "library needs the GPU), this is expected: run on the CPU.",
        commands=["nvidia-smi", *fix.commands],
        subject=name,
    )


def _container_gpu_lost(s: Snapshot) -> Finding | None:
    """NVML's "Unknown Error": in a container that had the GPU, the host's systemd took its device
    access away. An error when the paste shows the container, else a warning that assumes one."""
    lines = hits(s, "nvml-unknown")
    if not lines:
        return None
    inside = _in_container(s)
    facts: dict[str, object] = {
        "error_lines": _quoted(lines),
        "container": s.paste.container_hint if s.paste else None,
    }
    if not inside:
        facts |= _assumed("the command ran inside a container (the paste does not say)")
    return Finding(
        id="container-gpu-lost",
        severity=E if inside else W,
        summary="NVML 'Unknown Error'"
        + (
            " in a container: it lost the GPU (host systemd daemon-reload)"
            if inside
            else ": a container that lost its GPU, if this ran in one"
        ),
        facts=facts,
        fix="Recreate the container; on the host apply NVIDIA's workaround (create the /dev/char symlinks, "
        "or use the cgroupfs cgroup driver) so it does not recur."
        + (
            ""
            if inside
            else " Outside a container, check that nvidia-smi works as root, and reboot after "
            "a driver update."
        ),
        commands=["sudo nvidia-ctk system create-dev-char-symlinks --create-all  # on the host"],
    )


def _nvidia(line: PastedLine) -> bool:
    from envcheck.ingest._partial import is_nvidia_name

    return is_nvidia_name(line.values.get("name"))


def _cudnn_mismatch(s: Snapshot) -> Finding | None:
    lines = hits(s, "cudnn-runtime-mismatch") + [
        ln for ln in hits(s, "jax-found-older", "jax-outdated") if ln.values.get("lib") == "cuDNN"
    ]
    if not lines:
        return None
    v = lines[0].values
    loaded = cudnn_tuple(v.get("loaded") or v.get("found"))
    built = cudnn_tuple(v.get("min") or v.get("built"))
    verb = "needs cuDNN >=" if "min" in v else "was built with cuDNN"
    owner = "jax" if lines[0].kind.startswith("jax") or v.get("source") == "xla" else "tensorflow"
    if owner == "tensorflow" and s.framework("jax") and not s.framework("tensorflow"):
        owner = "jax"
    fw = s.framework(owner)
    cuda = F.framework_cuda(fw) if fw else None
    want = vstr(built[:2]) if built and len(built) >= 2 else (vstr(built) if built else "?")
    commands = []
    # nvidia-cudnn-cuNN wheels exist from CUDA 11, and TensorFlow before 2.14 never loads them
    if cuda and built and cuda[0] >= 11 and builds.wheel_cuda(owner, fw.version if fw else None) is not False:
        commands.append(f'pip install "nvidia-cudnn-cu{cuda[0]}>={want},<{built[0] + 1}"')
    commands.append("ldconfig -p | grep libcudnn  # an older system cuDNN found first is the usual culprit")
    return Finding(
        id="cudnn-mismatch",
        severity=E,
        summary=f"{owner} {verb} {vstr(built) if built else '?'} but loaded cuDNN "
        f"{vstr(loaded) if loaded else '?'}",
        facts={
            "error_lines": _quoted(lines),
            "cudnn_built": vstr(built) if built else None,
            "cudnn_loaded": vstr(loaded) if loaded else None,
        },
        fix=f"Give {owner} a cuDNN {built[0] if built else ''}.x >= {want}: upgrade the cuDNN wheel or conda "
        "package, and take an older cuDNN (a system copy, a conda env's, LD_LIBRARY_PATH) out of the "
        "loader's way.",
        commands=commands,
        subject=owner,
    )


def _cuda_libs_missing(s: Snapshot) -> Finding | None:
    driver_lib = _driver_dlopen(s)
    tf_lines = [ln for ln in hits(s, "tf-dlopen") if not ln.values.get("optional") and ln not in driver_lib]
    skip = [ln for ln in hits(s, "tf-skip-gpu") if "TensorRT" not in ln.text] + hits(s, "tf-no-cudart")
    jax_lines = hits(s, "jax-lib-missing")
    if not (tf_lines or skip or jax_lines):
        return tf_stated_cuda_mismatch(s)  # no error line: what the report's form claims is installed
    if jax_lines and not tf_lines:
        lib = jax_lines[0].values.get("lib", "cuDNN")
        return Finding(
            id="cuda-libs-missing",
            severity=E,
            summary=f"JAX could not load {lib}, so it runs on the CPU",
            facts={"error_lines": _quoted(jax_lines)},
            fix="Install JAX with its CUDA extra (it brings the matching nvidia-* wheels) and unset "
            "LD_LIBRARY_PATH.",
            commands=['pip install -U "jax[cuda12]"', "unset LD_LIBRARY_PATH"],
            subject="jax",
        )
    libs = sorted({ln.values["lib"] for ln in tf_lines})
    if not libs and hits(s, "tf-no-cudart"):
        libs = ["libcudart (the CUDA runtime)"]
    tf = s.framework("tensorflow")
    version = tf.version if tf else None
    facts: dict[str, object] = {
        "error_lines": _quoted(tf_lines or skip),
        "missing": libs,
        "tensorflow": version,
    }
    modern = version is not None and (cuda_mm(version) or (0, 0)) >= (2, 14)
    if version is None:
        facts |= _assumed("the TensorFlow version (the paste does not give it)")
    fix = f"TensorFlow could not load {', '.join(libs) or 'its CUDA libraries'} and runs on the CPU. " + (
        "From 2.14 on, install the and-cuda extra: it brings the CUDA and cuDNN wheels this release was "
        "built with; keep system CUDA off LD_LIBRARY_PATH."
        if modern or version is None
        else "Install exactly the CUDA and cuDNN versions in these library names (TensorFlow's tested build "
        "configurations list them per release), or a TensorFlow release built for the CUDA you have."
    )
    commands = [f'pip install "tensorflow[and-cuda]=={version}"'] if modern else []
    return Finding(
        id="cuda-libs-missing",
        severity=E,
        summary=f"TensorFlow cannot load {', '.join(libs) or 'CUDA libraries'}, so it runs without the GPU",
        facts=facts,
        fix=fix,
        commands=commands,
        subject="tensorflow",
    )


def _cuda_init_failed(s: Snapshot) -> Finding | None:
    lines = hits(s, "cuda-unknown-error")
    if not lines:
        return None
    if F.is_windows(s):
        from envcheck.rules.driver import init_failed_fix

        fix, commands = init_failed_fix(s)
        return Finding(
            id="cuda-init-failed",
            severity=E,
            summary="CUDA cannot start (error 999, 'CUDA unknown error')",
            facts={"error_lines": _quoted(lines)},
            fix=fix,
            commands=commands,
        )
    return Finding(
        id="cuda-init-failed",
        severity=E,
        summary="CUDA cannot start (error 999, 'CUDA unknown error')",
        facts={"error_lines": _quoted(lines)},
        fix="Usually after suspend/resume: reload nvidia_uvm or reboot. Also check that no libcuda.so from "
        "LD_LIBRARY_PATH shadows the driver's own, and, in a container, that it still has its devices.",
        commands=["sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm", "ldconfig -p | grep libcuda.so"],
    )


def _os(s: Snapshot) -> str | None:
    return s.system.os if s.system else None


def _driver_library_mismatch(s: Snapshot) -> Finding | None:
    """NVML's "Driver/library version mismatch" when the structured rule could not see it (a later
    dump in the same paste shows a working nvidia-smi, or NVML's result was not pasted whole)."""
    lines = hits(s, "nvml-mismatch")
    if not lines:
        return _cuda_driver_mismatch(s)
    nv = s.nvidia
    module = nv.kernel_module.version if nv and nv.kernel_module else None
    working = nv.driver_version if nv else None
    facts: dict[str, object] = {"error_lines": _quoted(lines), "kernel_module_version": module}
    fix = (
        "The driver libraries were upgraded under a running kernel module (often by unattended-upgrades or a "
        "package that pulls another driver). Reboot, or, with no GPU process running, reload the modules; "
        "hold the driver packages so it does not recur."
    )
    if working:
        facts["driver_version"] = working
        fix += (
            f" The paste also shows the driver ({working}) answering: if that output was taken after a "
            "reboot, the mismatch is already gone."
        )
    return Finding(
        id="driver-library-mismatch",
        severity=E,
        summary="NVML reports 'Driver/library version mismatch': the loaded kernel module"
        + (f" ({module})" if module else "")
        + " and the driver libraries are different versions",
        facts=facts,
        fix=fix,
        commands=[
            "sudo reboot",
            "cat /proc/driver/nvidia/version",
            "sudo apt-mark hold 'nvidia-*' 'libnvidia-*'",
        ],
    )


def _cuda_driver_mismatch(s: Snapshot) -> Finding | None:
    """CUDA error 803 ("system has unsupported display driver / cuda driver combination"): the libcuda
    the program loaded is not the loaded kernel module's version: a driver upgraded without a reboot, two
    driver installs, or a CUDA forward-compatibility libcuda (cuda-compat) that does not fit the module."""
    lines = hits(s, "cuda-driver-mismatch")
    if not lines:
        return None
    container = _in_container(s)
    fix = (
        "The CUDA driver library (libcuda.so) and the loaded kernel driver are different versions. Reboot "
        "after a driver update; otherwise reinstall the driver so that one version provides both, and "
        "remove other copies of libcuda.so (an older driver's, one on LD_LIBRARY_PATH, a cuda-compat "
        "package)."
    )
    if container:
        fix += (
            " In a container: the image's own libcuda (cuda-compat, or a driver installed in the image) must "
            "not shadow the host's, which the NVIDIA runtime mounts."
        )
    return Finding(
        id="driver-library-mismatch",
        severity=E,
        summary="CUDA error 803: the CUDA driver library and the loaded kernel driver are different versions",
        facts={"error_lines": _quoted(lines), "container": s.paste.container_hint if s.paste else None},
        fix=fix,
        commands=["sudo reboot", "cat /proc/driver/nvidia/version", "ldconfig -p | grep libcuda.so"],
    )


#: (finding id, builder): verdicts error lines prove when the structured rule lacked facts
FALLBACKS: tuple[tuple[str, Callable[[Snapshot], Finding | None]], ...] = (
    ("driver-too-old", _driver_too_old),
    ("driver-library-mismatch", _driver_library_mismatch),
    ("no-driver", _no_driver),
    ("container-no-gpu", _container_no_gpu),
    ("fabric-manager-missing", _fabric_manager),
    ("arch-unsupported", _arch_unsupported),
    ("cpu-only-wheel", _cpu_only_wheel),
    ("container-gpu-lost", _container_gpu_lost),
    ("cudnn-mismatch", _cudnn_mismatch),
    ("cuda-libs-missing", _cuda_libs_missing),
    ("cuda-init-failed", _cuda_init_failed),
)
#: structured verdicts that count GPUs, so a partial GPU list makes them a guess
_COUNTS_GPUS = ("visible-devices",)


def complete(
    s: Snapshot, findings: list[Finding], skipped: list[SkippedRule]
) -> tuple[list[Finding], list[SkippedRule]]:
    """Add what the paste's error lines prove for ids no structured rule judged; qualify verdicts
    that rest on a partial GPU list. Returns the new findings and skipped lists."""
    if s.paste is None:
        return findings, skipped
    have = {f.id for f in findings}
    added: list[Finding] = []
    for fid, build in FALLBACKS:
        if fid in have:
            continue
        try:
            f = build(s)
        except Exception:
            continue
        if f is not None:
            added.append(f)
    out: list[Finding] = []
    ext = hits(s, "cuda-ext-mismatch")
    for f in [*findings, *added]:
        if f.id == "cuda-toolkit-mismatch" and ext:
            # the paste shows the extension build that the mismatch broke: no longer a mere note
            facts = {**f.facts, "error_lines": _quoted(ext)}
            out.append(f.model_copy(update={"severity": E, "facts": facts}))
        elif f.id in _COUNTS_GPUS and s.paste.gpus_complete is not True and f.severity is E:
            facts = dict(f.facts)
            facts["assumed"] = [*facts.get("assumed", []), "the paste lists every GPU of the machine"]
            out.append(f.model_copy(update={"severity": W, "facts": facts}))
        else:
            out.append(f)
    done = {f.id for f in added}
    kept = [sk for sk in skipped if sk.id not in done]
    out.sort(key=lambda f: (f.severity.rank, f.id))
    return out, kept
