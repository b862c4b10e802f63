"""The NVIDIA driver layer: present, loaded, in step with its libraries, new enough for the
frameworks, and able to start CUDA (diagnostics-anchors b2, b8, b12, b13, b14)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from envcheck.knowledge import builds, capabilities, cuda_archs, drivers
from envcheck.knowledge._version import cuda_text, vtuple
from envcheck.models import Finding, Framework, Gpu, Severity, Snapshot
from envcheck.rules import _facts as F
from envcheck.rules import _fixes
from envcheck.rules._base import MissingFacts, need, rule

E, W = Severity.ERROR, Severity.WARNING

_MODULES = "nvidia_uvm nvidia_drm nvidia_modeset nvidia"
_RELOAD = f"sudo rmmod {_MODULES} && sudo modprobe nvidia && sudo modprobe nvidia_uvm"


def _needed_driver(s: Snapshot) -> str:
    """The driver to recommend: enough for every installed CUDA framework, else the R580 LTS floor."""
    majors = [
        mm[0]
        for fw in (s.frameworks.frameworks if s.frameworks else [])
        if fw.installed and (mm := F.framework_cuda(fw))
    ]
    return drivers.recommended_driver(max(majors, default=13)) or "580.65.06"


_FRAMEWORKS = ("torch", "tensorflow", "jax")
_NAMES = {"torch": "torch", "tensorflow": "TensorFlow", "jax": "JAX"}


def newest_serving(framework: str, cc: tuple[int, int]) -> str | None:
    """The newest current release of ``framework`` (``builds.is_current``: installable on a Python
    its newest release supports) with a CUDA build that has code for ``cc``; the tables reach back
    to torch 1.0, whose builds do not make an old GPU current."""
    releases = [
        b.release for b in builds.builds(framework) if b.supports_cc(cc) is True and builds.is_current(b)
    ]
    return max(releases, key=lambda r: vtuple(r) or (), default=None)


def judged_frameworks(s: Snapshot) -> tuple[str, ...]:
    """The frameworks a GPU is judged for: those installed and those whose error lines the paste
    shows; torch, TensorFlow and JAX when none is known."""
    names = {fw.name for fw in (s.frameworks.frameworks if s.frameworks else []) if fw.installed}
    for ln in s.paste.lines if s.paste else []:
        if ln.kind.startswith("torch-"):
            names.add("torch")
        elif ln.kind.startswith("jax-"):
            names.add("jax")
        elif ln.kind.startswith("tf-"):
            names.add("tensorflow")
    return tuple(n for n in _FRAMEWORKS if n in names) or _FRAMEWORKS


def old_generation_gpus(s: Snapshot) -> list[tuple[Gpu, tuple[int, int], capabilities.SupportEnd]]:
    """GPUs of a generation whose support has ended (Tesla, Fermi, Kepler...): the newest driver
    branch no longer supports them, whatever a framework still carries."""
    out = []
    for g, cc in F.gpus_with_cc(s):
        end = capabilities.support_end(cc)
        if end is not None and not end.still_served:
            out.append((g, cc, end))
    return out


def too_old_gpus(s: Snapshot) -> list[tuple[Gpu, tuple[int, int], capabilities.SupportEnd]]:
    """GPUs of an ended generation that no current CUDA build of the frameworks in use supports,
    with the row that says where their support ended (Tesla, Fermi, Kepler 3.0/3.5...)."""
    judged = judged_frameworks(s)
    return [
        (g, cc, end)
        for g, cc, end in old_generation_gpus(s)
        if not any(newest_serving(fw, cc) for fw in judged)
    ]


def _outgrown(s: Snapshot, mm: tuple[int, int]) -> bool:
    """True when every GPU whose capability is known is too old for CUDA ``mm`` (so upgrading the
    driver cannot make a build for ``mm`` run: its GPU is the problem, see gpu-too-old)."""
    gpus = F.gpus_with_cc(s)
    if not gpus:
        return False
    for _, cc in gpus:
        end = capabilities.support_end(cc)
        fit = cuda_archs.fits(mm, cc)
        too_new = (end is not None and not end.still_served and end.last_cuda < mm) or (
            fit.ok is False and fit.window.max_cuda is not None and mm > fit.window.max_cuda
        )
        if not too_new:
            return False
    return True


#: pasted error lines that show a framework tried and failed to use the GPU
_FAILURE_LINES = (
    "torch-gpu-too-old",
    "torch-arch-incompatible",
    "no-kernel-image",
    "torch-driver-too-old",
    "cuda-insufficient-driver",
    "torch-gpu-needs-newer-cuda",
)


@rule(
    "gpu-too-old",
    "a GPU is older than every current CUDA build of the framework in use (torch, TensorFlow, JAX): no "
    "driver or wheel upgrade can make it work (names the last CUDA, driver branch and PyTorch release that "
    "supported it)",
    E,
)
def gpu_too_old(s: Snapshot) -> Iterator[Finding]:
    gpus = F.gpus_or_none_present(s)
    olds = too_old_gpus(s)
    if not olds:
        if gpus and not F.gpus_with_cc(s):
            raise MissingFacts("compute capability of the GPUs unknown")
        return
    judged = judged_frameworks(s)
    cuda_fws = [
        fw
        for fw in (s.frameworks.frameworks if s.frameworks else [])
        if fw.installed and F.build_kind(fw) == "cuda"
    ]
    failures = [ln.text for ln in (s.paste.lines if s.paste else []) if ln.kind in _FAILURE_LINES]
    names = " and ".join(", ".join(_NAMES[n] for n in judged).rsplit(", ", 1))
    seen: set[tuple[str | None, tuple[int, int]]] = set()
    for g, cc, end in olds:
        if (g.name, cc) in seen:
            continue
        seen.add((g.name, cc))
        cc_text = f"{cc[0]}.{cc[1]}"
        torch_text = (
            f"the newest PyTorch with code for it is {end.torch_last} ({end.torch_note})"
            if end.torch_last
            else f"no PyTorch CUDA build ever supported it ({end.torch_note})"
        )
        others = [
            f"{_NAMES[fw]} {release}"
            for fw in _FRAMEWORKS
            if fw not in judged and (release := newest_serving(fw, cc))
        ]
        elsewhere = f" {' and '.join(others)} still has CUDA code for it." if others else ""
        # an error when a build is known to fail on it (its own error line, or an installed release newer
        # than the last that carried its code); a build of unknown release may predate the end of support
        fails = bool(failures) or any(_release_outgrew(fw, end) for fw in cuda_fws)
        yield Finding(
            id="gpu-too-old",
            severity=E if fails else W,
            summary=f"{g.name or 'the GPU'} (compute capability {cc_text}, {end.architecture}) is too old "
            f"for every current CUDA build of {names}",
            facts={
                "gpu": g.name,
                "compute_capability": cc_text,
                "architecture": end.architecture,
                "last_cuda": f"{end.last_cuda[0]}.{end.last_cuda[1]}",
                "last_driver_branch": f"R{end.last_driver_branch}",
                "newest_torch": end.torch_last,
                "frameworks": list(judged),
                "installed_cuda_builds": [f"{fw.name} {fw.version or ''}".strip() for fw in cuda_fws],
                "driver_version": s.nvidia.driver_version if s.nvidia else None,
                "error_lines": failures[:3],
                "source": end.source,
            },
            fix=(
                f"No driver or wheel upgrade can fix this: CUDA {end.last_cuda[0]}.{end.last_cuda[1]} was "
                f"the last toolkit and driver branch R{end.last_driver_branch} the last driver for this GPU, "
                f"and {torch_text}.{elsewhere} Run on the CPU (the CPU builds work), or use a GPU that "
                "current builds support (compute capability >= 5.0; >= 7.5 for CUDA 13 builds)."
            ),
            commands=["pip install torch --index-url https://download.pytorch.org/whl/cpu"]
            if "torch" in judged
            else [],
            subject=F.gpu_subject(g),
        )


def _release_outgrew(fw: Framework, end: capabilities.SupportEnd) -> bool:
    """Is ``fw``'s installed release newer than the last one with code for this GPU generation?"""
    installed = vtuple(fw.version)
    if installed is None:
        return False
    if fw.name == "jax":
        return True  # JAX's CUDA builds start at compute capability 5.2
    if fw.name != "torch":
        return False
    last = vtuple(end.torch_last) if end.torch_last else None
    return last is None or installed[:3] > last[:3]


@rule("no-driver", "NVIDIA GPU hardware is present but no working driver is installed or loaded", E)
def no_driver(s: Snapshot) -> Iterator[Finding]:
    nv = need(s.nvidia, "NVIDIA facts")
    hw = F.has_nvidia_gpu(s)
    nvml_code = nv.nvml.code if nv.nvml and not nv.nvml.ok else None
    if F.is_wsl(s):
        return  # WSL has no PCI view and no Linux driver: see wsl-linux-driver
    if hw is None and nvml_code != F.NVML_DRIVER_NOT_LOADED:
        raise MissingFacts("whether an NVIDIA GPU is present unknown")
    if hw is False:
        return
    if nvml_code == F.NVML_LIB_RM_VERSION_MISMATCH or (nv.nvml and nv.nvml.ok) or nv.driver_version:
        return  # a driver is there (mismatched: driver-library-mismatch)
    if F.in_container(s) and nvml_code in (F.NVML_LIBRARY_NOT_FOUND, None):
        return  # a container without the GPU plumbing: container-no-gpu says so
    module = nv.kernel_module
    module_loaded = module.loaded if module else None
    evidence = {
        "nvml": nv.nvml.model_dump(exclude_none=True) if nv.nvml else None,
        "kernel_module_loaded": module_loaded,
        "cudaDriverGetVersion": s.cuda.driver_version if s.cuda else None,
        "gpus_on_pci": [d.address for d in F.gpu_pci(s) or []],
    }
    not_loaded = nvml_code == F.NVML_DRIVER_NOT_LOADED or bool(
        module_loaded is False and nvml_code != F.NVML_LIBRARY_NOT_FOUND and nv.nvml_library
    )
    absent = nvml_code == F.NVML_LIBRARY_NOT_FOUND or module_loaded is False or F.no_driver(s)
    if not (not_loaded or absent):
        if nvml_code is None and module_loaded is None:
            raise MissingFacts("driver state unknown (no NVML result, kernel module or CUDA driver version)")
        return  # a driver is loaded but failing in another way (NVML 999...): other rules judge that
    want = _needed_driver(s)
    ends = [end for _, _, end in old_generation_gpus(s)]
    if ends:  # a driver the GPU supports, not one that exists only for newer GPUs
        want = f"{min(e.last_driver_branch for e in ends)}.xx (the last branch for this GPU)"
    if not_loaded:
        nouveau = bool(module and module.nouveau_loaded)
        yield Finding(
            id="no-driver",
            severity=E,
            summary="the NVIDIA user-space driver is installed but its kernel module is not loaded",
            facts=evidence | {"nouveau_loaded": nouveau, "kernel": s.system.kernel if s.system else None},
            fix=(
                "Usually a kernel upgrade without a rebuilt module (DKMS): install the headers for the "
                "running kernel, rebuild, and load the module"
                + ("; nouveau holds the GPU, blacklist it first" if nouveau else "")
                + "."
            ),
            commands=[
                "sudo apt-get install -y linux-headers-$(uname -r)",
                "sudo dkms autoinstall",
                "sudo modprobe nvidia",
            ],
        )
        return
    yield Finding(
        id="no-driver",
        severity=E,
        summary=f"NVIDIA GPU present but no NVIDIA driver: install driver >= {want}",
        facts=evidence | {"driver_needed": want},
        fix=(
            f"Install the NVIDIA driver (>= {want} runs every framework here), then reboot. The CUDA toolkit "
            "is not a driver: frameworks bring their own CUDA libraries but need the driver's libcuda."
        ),
        commands=F.driver_install_commands(s, want)
        if not ends
        else [f"install the NVIDIA {want} legacy driver"],
    )


@rule(
    "driver-too-old",
    "the driver is older than the CUDA a framework was built with needs (minor-version compatibility "
    "included)",
    E,
)
def driver_too_old(s: Snapshot) -> Iterator[Finding]:
    if F.no_driver(s):
        return  # cudaDriverGetVersion == 0: no driver at all, which is not "too old" (see no-driver)
    if (
        s.nvidia
        and s.nvidia.nvml
        and not s.nvidia.nvml.ok
        and s.nvidia.nvml.code == F.NVML_LIBRARY_NOT_FOUND
        and not s.nvidia.driver_version
    ):
        return  # no libnvidia-ml: no driver, not an old one
    driver, ceiling = F.driver_facts(s)
    if driver is None and ceiling is None:
        raise MissingFacts("driver version unknown")
    for fw in F.frameworks(s):
        if F.build_kind(fw) != "cuda":
            continue
        mm = F.framework_cuda(fw)
        if mm is None:
            continue
        chk = drivers.check(mm, driver=driver, driver_cuda=ceiling)
        if chk.ok is not False:
            continue
        if _outgrown(s, mm):
            continue  # no driver for this GPU runs CUDA mm: gpu-too-old / arch-unsupported say what does
        need_text = F.cuda_text(fw, mm)
        recommend = chk.recommend or chk.floor or "?"
        upgrade = F.driver_install_commands(s, recommend)
        family = f"{mm[0]}.x" if mm[0] >= drivers.MINOR_COMPAT_FROM else f"{mm[0]}.{mm[1]}"
        upgrade_text = f"upgrade the NVIDIA driver to >= {recommend} (CUDA {family} needs >= {chk.floor}"
        if F.is_wsl(s) or (s.system and s.system.os == "Windows"):
            # the floors are Linux driver numbers; a Windows driver is judged by the CUDA it reports
            upgrade_text = (
                f"update the Windows NVIDIA driver to one whose nvidia-smi reports CUDA >= {need_text} "
                f"(Linux drivers need >= {chk.floor} for CUDA {family}; Windows driver numbers differ"
            )
        alt = _fixes.gpu_build(s, fw).commands if fw.name in ("torch", "jax") else None
        if alt:
            # the pip line needs no root and no reboot, so it is the command; the driver is the other way
            commands = alt
            fix = (
                f"Install the {fw.name} build for a CUDA your driver runs (commands), or {upgrade_text}: "
                f"{'; '.join(upgrade)})"
            )
        else:
            commands = upgrade
            fix = upgrade_text[0].upper() + upgrade_text[1:] + ")"
        yield Finding(
            id="driver-too-old",
            severity=E,
            summary=f"{fw.name} {fw.version or ''} needs CUDA {need_text}; driver "
            f"{driver or '(version unknown)'} supports CUDA {_ceiling_text(ceiling, driver)}",
            facts={
                "framework": fw.name,
                "framework_version": fw.version,
                "framework_cuda": need_text,
                "driver_version": driver,
                "driver_cuda": _ceiling_text(ceiling),
                "family_floor": chk.floor,
            },
            fix=fix + ".",
            commands=commands,
            subject=fw.name,
        )


def _ceiling_text(ceiling: int | None, driver: str | None = None) -> str:
    """The driver's CUDA version as it reports it, else as NVIDIA's driver table implies."""
    if ceiling:
        return cuda_text(ceiling) or "unknown"
    implied = drivers.highest_cuda(driver) if driver else None
    return f"{implied[0]}.{implied[1]} (by NVIDIA's driver table)" if implied else "unknown"


@rule(
    "driver-library-mismatch",
    "the loaded kernel module and the user-space driver libraries are different versions (NVML "
    "'Driver/library version mismatch')",
    E,
)
def driver_library_mismatch(s: Snapshot) -> Iterator[Finding]:
    nv = need(s.nvidia, "NVIDIA facts")
    nvml = need(nv.nvml, "NVML init result")
    module = nv.kernel_module.version if nv.kernel_module else None
    lib_version = _library_version(nv.nvml_library)
    mismatch = (not nvml.ok and nvml.code == F.NVML_LIB_RM_VERSION_MISMATCH) or (
        module is not None and lib_version is not None and module != lib_version
    )
    if not mismatch:
        return
    yield Finding(
        id="driver-library-mismatch",
        severity=E,
        summary=(
            f"kernel module {module} does not match the driver libraries {lib_version}"
            if module and lib_version
            else "the loaded kernel module"
            + (f" ({module})" if module else "")
            + " and the driver libraries"
            + (f" ({lib_version})" if lib_version else "")
            + " are different versions (NVML: Driver/library "
            "version mismatch)"
        ),
        facts={
            "nvml": nvml.model_dump(exclude_none=True),
            "kernel_module_version": module,
            "nvml_library": nv.nvml_library,
        },
        fix=(
            "The driver package was upgraded under a running module (often by unattended-upgrades). Reboot, "
            "or, with no GPU process running, reload the modules. Hold the driver packages so it does not "
            "recur."
        ),
        commands=["sudo reboot", _RELOAD, "sudo apt-mark hold 'nvidia-*' 'libnvidia-*'"],
    )


def _library_version(path: str | None) -> str | None:
    """ "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.54.03" -> "535.54.03"."""
    if not path or ".so." not in path:
        return None
    tail = path.rsplit(".so.", 1)[1]
    return tail if tail.count(".") >= 1 else None


@rule("nouveau-loaded", "the open-source nouveau driver is loaded or bound to an NVIDIA GPU", E)
def nouveau_loaded(s: Snapshot) -> Iterator[Finding]:
    nv = need(s.nvidia, "NVIDIA facts")
    bound = [d.address for d in F.gpu_pci(s) or [] if d.driver == "nouveau"]
    loaded = nv.kernel_module.nouveau_loaded if nv.kernel_module else None
    if loaded is None and nv.pci_devices is None:
        raise MissingFacts("kernel modules and PCI drivers unknown")
    if not bound and not (loaded and F.has_nvidia_gpu(s)):
        return
    yield Finding(
        id="nouveau-loaded",
        severity=E,
        summary="nouveau drives the NVIDIA GPU, so the NVIDIA driver cannot"
        if bound
        else "nouveau is loaded next to an NVIDIA GPU",
        facts={"nouveau_loaded": loaded, "bound_to_nouveau": bound},
        fix="Blacklist nouveau, rebuild the initramfs and reboot, then install the NVIDIA driver.",
        commands=[
            "printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | sudo tee "
            "/etc/modprobe.d/blacklist-nouveau.conf",
            "sudo update-initramfs -u",
            "sudo reboot",
        ],
    )


@rule(
    "wsl-linux-driver",
    "a Linux NVIDIA driver is installed inside WSL2, shadowing the Windows driver's libraries in "
    "/usr/lib/wsl/lib",
    E,
)
def wsl_linux_driver(s: Snapshot) -> Iterator[Finding]:
    wsl = need(F.is_wsl(s), "WSL detection")
    if not wsl:
        return
    cuda = need(s.cuda, "CUDA libraries")
    libs = need(cuda.libraries, "CUDA libraries")
    nv_lib = s.nvidia.nvml_library if s.nvidia else None
    driver_libs = [lib for lib in libs if lib.name in ("cuda", "nvml") and lib.path]
    foreign = [lib.path for lib in driver_libs if lib.path and not lib.path.startswith("/usr/lib/wsl/")]
    if nv_lib and not nv_lib.startswith("/usr/lib/wsl/"):
        foreign.append(nv_lib)
    module_loaded = s.nvidia.kernel_module.loaded if s.nvidia and s.nvidia.kernel_module else None
    if not foreign and not module_loaded:
        return
    yield Finding(
        id="wsl-linux-driver",
        severity=E,
        summary="a Linux NVIDIA driver inside WSL2 overrides the Windows driver's CUDA libraries",
        facts={
            "driver_libraries_outside_wsl_lib": sorted(set(foreign)),
            "kernel_module_loaded": module_loaded,
        },
        fix=(
            "Under WSL2 the driver lives on Windows: remove the Linux driver packages, keep "
            "/usr/lib/wsl/lib on the loader path, update the Windows driver, then restart WSL (wsl "
            "--shutdown from Windows). Install only NVIDIA's WSL-Ubuntu CUDA toolkit packages, never a "
            "Linux display driver."
        ),
        commands=[
            "sudo apt-get remove --purge -y 'nvidia-driver-*' 'libnvidia-compute-*'",
            "wsl.exe --shutdown",
        ],
    )


#: WSL1 runs on a translation layer that reports a fixed kernel "4.4.0-<Windows build>-Microsoft"; WSL2
#: kernels read "5.15.153.1-microsoft-standard-WSL2" (Microsoft's WSL docs: GPU compute needs WSL2)
_WSL1_KERNEL = re.compile(r"^\d+\.\d+\.\d+-\d+-Microsoft$")


@rule("wsl1-no-gpu", "the Linux side runs under WSL1, which has no GPU access: CUDA needs WSL2", E)
def wsl1_no_gpu(s: Snapshot) -> Iterator[Finding]:
    kernel = need(s.system.kernel if s.system else None, "kernel version")
    if not _WSL1_KERNEL.match(kernel):
        return
    wants_gpu = any(F.build_kind(fw) == "cuda" for fw in (s.frameworks.frameworks if s.frameworks else []))
    yield Finding(
        id="wsl1-no-gpu",
        severity=E if wants_gpu else W,
        summary=f"this is WSL1 (kernel {kernel}): WSL1 gives Linux programs no GPU",
        facts={"kernel": kernel},
        fix="Convert the distribution to WSL2 (from Windows: wsl --set-version <distro> 2), keep the Windows "
        "NVIDIA driver up to date, and do not install a Linux driver inside WSL.",
        commands=["wsl -l -v  # in Windows: VERSION 1 is the problem", "wsl --set-version <distro> 2"],
    )


@rule(
    "cuda-init-failed",
    "cuInit fails with 999 (unknown error) while NVML works: usually after suspend/resume",
    E,
)
def cuda_init_failed(s: Snapshot) -> Iterator[Finding]:
    cuda = need(s.cuda, "CUDA facts")
    if cuda.cu_init_code is None and (F.no_driver(s) or F.has_nvidia_gpu(s) is False):
        return  # nothing to initialise
    code = need(cuda.cu_init_code, "cuInit result")
    if code != 999:
        return
    nvml_ok = bool(s.nvidia and s.nvidia.nvml and s.nvidia.nvml.ok)
    if F.in_container(s) and not nvml_ok:
        return  # container-gpu-lost covers a container whose device cgroup was reset
    fix, commands = init_failed_fix(s)
    yield Finding(
        id="cuda-init-failed",
        severity=E,
        summary="CUDA cannot start (cuInit error 999)"
        + ("" if F.is_windows(s) else "; typical after the machine resumed from suspend"),
        facts={"cu_init_code": code, "nvml_ok": nvml_ok, "uptime_s": s.system.uptime_s if s.system else None},
        fix=fix,
        commands=commands,
    )


def init_failed_fix(s: Snapshot) -> tuple[str, list[str]]:
    """What to do about cuInit's 999: nvidia_uvm and suspend on Linux; on Windows (no modules to
    reload) a reboot and the nvcuda.dll actually loaded."""
    if F.is_windows(s):
        return (
            "Reboot, then check that the program loads the driver's own nvcuda.dll (System32), not a copy "
            "or a CUDA shim placed next to it; reinstall the NVIDIA driver if nvidia-smi fails too.",
            ["where nvcuda.dll", "nvidia-smi"],
        )
    return (
        "Reload the nvidia_uvm module (no GPU process may be running) or reboot; on laptops enable "
        "NVIDIA's suspend services so it does not recur. Also check that no libcuda.so on "
        "LD_LIBRARY_PATH shadows the driver's own. 'CUDA unknown error' is rarely about "
        "CUDA_VISIBLE_DEVICES.",
        [
            "sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm",
            "sudo systemctl enable nvidia-suspend.service nvidia-resume.service nvidia-hibernate.service",
        ],
    )


@rule(
    "fabric-manager-missing",
    "an NVSwitch system (HGX/DGX) without a running nvidia-fabricmanager: CUDA error 802, no GPU usable",
    E,
)
def fabric_manager_missing(s: Snapshot) -> Iterator[Finding]:
    code = s.cuda.device_count_code if s.cuda else None
    nv = need(s.nvidia, "NVIDIA facts")
    state = nv.fabric_manager
    if code != 802 and state is None:
        if nv.unavailable and "fabric_manager" in nv.unavailable:
            raise MissingFacts(f"fabric manager state unknown: {nv.unavailable['fabric_manager']}")
        if code is None and F.nvswitch_pci(s):
            raise MissingFacts("NVSwitches present but fabric manager state unknown")
        return
    if code != 802 and state == "active":
        return
    driver = nv.driver_version
    branch = driver.split(".")[0] if driver else None
    yield Finding(
        id="fabric-manager-missing",
        severity=E,
        summary="NVSwitch fabric not initialised: install and start nvidia-fabricmanager matching the driver",
        facts={
            "cudaGetDeviceCount_code": code,
            "fabric_manager": state,
            "driver_version": driver,
            "nvswitches": [d.address for d in F.nvswitch_pci(s)],
        },
        fix=(
            "Install the nvidia-fabricmanager package whose version equals the driver's "
            f"({driver or 'same'}), then enable and start it."
        ),
        commands=[
            *(
                [f"sudo apt-get install -y nvidia-fabricmanager-{branch}"]
                if branch and F.distro_is(s, "ubuntu")
                else [f"install nvidia-fabricmanager {driver or 'matching the driver'}"]
            ),
            "sudo systemctl enable --now nvidia-fabricmanager",
        ],
    )
