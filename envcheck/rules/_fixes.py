"""The one place that turns "install a GPU build of this framework that fits this machine" into
exact commands, so cpu-only-wheel, driver-too-old and arch-unsupported agree on the line.

The build comes from ``envcheck.knowledge.builds.resolve`` with the machine's driver (version and
CUDA ceiling), every GPU's compute capability and the Python version.
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.knowledge import builds, coverage, drivers
from envcheck.knowledge._version import cuda_text, vtuple
from envcheck.models import Framework, Snapshot
from envcheck.rules import _facts as F


@dataclass(frozen=True)
class Reinstall:
    #: the commands, in order (empty when no known build fits)
    commands: list[str]
    #: why this build, in words
    why: str
    build: builds.Build | None = None


@dataclass(frozen=True)
class _Machine:
    """The facts a fix is chosen for: driver (version, CUDA ceiling), GPUs, Python."""

    driver: str | None
    ceiling: int | None
    ccs: list[tuple[int, int]]
    py: str | None

    @property
    def cc_text(self) -> str:
        return ", ".join(f"{a}.{b}" for a, b in sorted(set(self.ccs)))

    def resolve(
        self, framework: str, release: str | None = None, *, with_driver: bool = True
    ) -> builds.Choice:
        """``builds.resolve`` for this machine (``with_driver=False``: as if the driver were new).
        Without a ``release`` only current releases are candidates: a fix may move a user to
        another release, never back to one today's Pythons cannot install (torch 1.x, TF 2.7)."""
        return builds.resolve(
            framework,
            release,
            driver=self.driver if with_driver else None,
            driver_cuda=self.ceiling if with_driver else None,
            compute_capabilities=self.ccs,
            python=self.py,
            current_only=release is None,
        )


def machine_ccs(s: Snapshot) -> list[tuple[int, int]]:
    """Compute capability of every GPU whose capability is known (NVML, else its name)."""
    return [cc for _, cc in F.gpus_with_cc(s)]


def gpu_build(s: Snapshot, fw: Framework) -> Reinstall:
    """Replace ``fw`` with the CUDA build that runs on this driver, GPUs and Python.

    torch: the same release from the fitting CUDA variant's index, else the newest release that
    fits; uninstalled first because ``torch==2.9.0`` is already satisfied by 2.9.0+cu130 (pip
    ignores local version tags). TensorFlow: the ``[and-cuda]`` extra of the same version, or of the
    newest release whose CUDA knows every GPU when the installed one's does not. JAX:
    the cuda13 plugin, or cuda12 for drivers older than R580 and GPUs below CC 7.5.
    """
    if fw.name == "tensorflow" and s.system and s.system.os == "Windows" and not F.is_wsl(s):
        return _tensorflow_windows(fw)
    if F.is_jetson(s):
        return Reinstall(
            ["cat /etc/nv_tegra_release  # the L4T release (JetPack) picks the build"],
            f"On a Jetson only NVIDIA's Jetson builds of {fw.name} use the GPU: install the one for this "
            "JetPack (NVIDIA's 'PyTorch for Jetson' wheels, the jetson-ai-lab pip index, or an l4t / "
            "jetson-containers image); PyPI's and pytorch.org's aarch64 wheels are CPU or server-GPU builds",
        )
    driver, ceiling = F.driver_facts(s)
    m = _Machine(driver, ceiling, machine_ccs(s), F.python_version(s))
    if fw.name in ("torch", "tensorflow"):
        beyond = _beyond_tables(fw, driver, ceiling)
        if beyond is not None:
            return beyond
    if fw.name == "torch":
        return _torch(fw, m)
    if fw.name == "tensorflow":
        return _tensorflow(fw, m)
    choice = builds.resolve("jax", driver=driver, driver_cuda=ceiling, compute_capabilities=m.ccs)
    if choice.build is None:
        return Reinstall([], f"no JAX CUDA plugin supports this driver and compute capability {m.cc_text}")
    b = choice.build
    current = sorted(
        n for n in fw.plugins if n.startswith("jax-cuda") and not n.startswith(f"jax-{b.extra}-")
    )
    first = [f"pip uninstall -y {' '.join(current)}"] if current else []
    return Reinstall([*first, b.install_command()], f"jax[{b.extra}] needs driver >= {b.min_driver}", b)


def _torch(fw: Framework, m: _Machine) -> Reinstall:
    """The same release from the CUDA variant that fits, else (when the tables know this release's
    variants) the newest release that fits; torchvision/torchaudio follow torch's version."""
    # _beyond_tables handled releases the tables do not know; None: a version nobody stated (a pasted
    # error line), so the newest release that fits
    release = builds.release_of("torch", fw.version) if fw.version else None
    pin: str | None = F.version_pin(fw)
    choice = m.resolve("torch", release)
    jumped = ""
    if choice.build is None and release is not None:
        if builds.other_variants(release) == "unknown":
            return _only_pypi_build(release, choice, m.driver)
        pin = None
        choice = m.resolve("torch")
        jumped = f"no torch {release} build in envcheck's tables fits; "
    b = choice.build
    if b is None:
        return Reinstall(
            [], f"no known torch build fits this driver, compute capability {m.cc_text} and Python"
        )
    why = f"torch for CUDA {b.cuda} ({b.status}) runs on driver {m.driver or '>= ' + (b.min_driver or '?')}"
    if m.ccs:
        why += f" and has code for compute capability {m.cc_text}"
    if jumped:
        why = f"{jumped}{why} in release {b.release}"
    if not b.verified:
        why += " (row from release notes, not verified against the wheel)"
    why += _driver_unlocks("torch", b, m)
    target = pin or builds.newest_patch(b.release) or b.release
    companions, missing = _companions(fw, target)
    if missing:
        names = " or ".join(missing)
        why += f"; the tables know no {names} release for torch {target}: reinstall the one built for it"
    uninstall = " ".join(["torch", *sorted(n for n in fw.plugins if n in _COMPANIONS)])
    return Reinstall([f"pip uninstall -y {uninstall}", b.install_command(pin, with_=companions)], why, b)


#: packages built against one exact torch version
_COMPANIONS = ("torchvision", "torchaudio")


def _companions(fw: Framework, torch_version: str) -> tuple[list[str], list[str]]:
    """(pins of the installed torchvision/torchaudio that match ``torch_version``, names without one)."""
    installed = [n for n in _COMPANIONS if n in fw.plugins]
    known = builds.companions(torch_version)
    pins = [f"{n}=={known[n]}" for n in installed if n in known]
    return pins, [n for n in installed if n not in known]


def _only_pypi_build(release: str, choice: builds.Choice, driver: str | None) -> Reinstall:
    """No known build of ``release`` fits, but the tables know only its PyPI build: never jump."""
    reasons = "; ".join(f"CUDA {b.cuda} {why}" for b, why in choice.rejected)
    return Reinstall(
        [],
        f"envcheck's tables know only the PyPI build of torch {release} ({reasons}); its other CUDA "
        f"variants were not readable when the tables were built: pick the torch {release} build for "
        f"the CUDA your driver {driver or ''} runs at https://download.pytorch.org/whl/torch/, or "
        "upgrade the driver",
    )


def _beyond_tables(fw: Framework, driver: str | None, ceiling: int | None) -> Reinstall | None:
    """A release the tables do not list: say so and give no command (a fix never jumps to a
    release chosen from tables that do not know the installed one). None when the tables know it."""
    if not fw.version or builds.release_of(fw.name, fw.version) is not None:
        return None
    where = coverage.outside(fw.name, fw.version)
    span = coverage.span(fw.name)
    runs = drivers.highest_cuda(driver) if driver else None
    top = cuda_text(ceiling) or (f"{runs[0]}.{runs[1]}" if runs else None)
    release = ".".join((fw.version or "").split("+")[0].split(".")[:2])
    what = {"newer": "newer than", "older": "older than"}.get(where or "", "not in")
    index = "https://download.pytorch.org/whl/torch/" if fw.name == "torch" else "PyPI"
    return Reinstall(
        [],
        f"{fw.name} {fw.version} is {what} envcheck's tables ({span}), so they cannot name its CUDA "
        f"builds: install the {fw.name} {release} build for a CUDA your driver runs"
        + (f" (driver {driver or ''} runs CUDA <= {top})" if top else "")
        + f", from {index}",
    )


def _driver_unlocks(fw: str, picked: builds.Build, m: _Machine) -> str:
    """ " (torch 2.14 for CUDA 13.2 needs driver >= 580.65.06)": the newer build a driver upgrade
    unlocks; nothing when this driver already runs it (then no upgrade is what stands in the way)."""
    best = m.resolve(fw, with_driver=False).build
    if best is None or (vtuple(best.release) or (), best.cuda_mm) <= (
        vtuple(picked.release) or (),
        picked.cuda_mm,
    ):
        return ""
    if (m.driver or m.ceiling) and drivers.check(
        best.cuda_mm, driver=m.driver, driver_cuda=m.ceiling
    ).ok is not False:
        return ""
    need = drivers.recommended_driver(best.cuda_mm[0]) or best.min_driver
    return f" ({fw} {best.release} for CUDA {best.cuda} needs driver >= {need})" if need else ""


#: TensorFlow's install guide: "TensorFlow 2.10 was the last TensorFlow release that supported GPU on
#: native Windows" (the same boundary envcheck.ingest.merge applies to pasted Windows reports)
TF_LAST_WINDOWS_GPU = (2, 10)


def _system_libs(b: builds.Build) -> str:
    """How a TensorFlow build without the and-cuda wheels (before 2.14) finds CUDA: the system's."""
    exact = "exactly " if b.cuda_mm < (11, 0) else ""
    cudnn = f" and cuDNN {b.cudnn}" if b.cudnn else ""
    return (
        f"TensorFlow {b.release} loads the system's CUDA and cuDNN (it has no and-cuda wheels): it needs "
        f"CUDA {exact}{b.cuda}{cudnn}"
        + (" (its library names carry the CUDA x.y, libcudart.so." + b.cuda + ")" if exact else "")
    )


def _tensorflow_windows(fw: Framework) -> Reinstall:
    """Native Windows: up to 2.10 the release's own CUDA/cuDNN from the system; after, WSL2."""
    release = builds.release_of("tensorflow", fw.version or "") if fw.version else None
    mine = builds.builds("tensorflow", release) if release else []
    if mine and (vtuple(release) or ())[:2] <= TF_LAST_WINDOWS_GPU:
        b = mine[0]
        return Reinstall(
            [
                f"install CUDA Toolkit {b.cuda} (developer.nvidia.com/cuda-toolkit-archive) and cuDNN "
                f"{b.cudnn or b.cuda_mm[0]} for CUDA {b.cuda}, and put their bin folders on PATH"
            ],
            _system_libs(b) + " (on Windows, cudart64_" + f"{b.cuda_mm[0]}{b.cuda_mm[1]}" + ".dll)",
            b,
        )
    last = max(
        (r for r in builds.releases("tensorflow") if (vtuple(r) or ())[:2] <= TF_LAST_WINDOWS_GPU),
        key=lambda r: vtuple(r) or (),
        default=None,
    )
    old = builds.builds("tensorflow", last)[0] if last else None
    pin = (
        f", or pin tensorflow=={old.release} with CUDA {old.cuda} and cuDNN {old.cudnn} installed"
        if old
        else ", or pin tensorflow<2.11 with that release's CUDA and cuDNN installed"
    )
    return Reinstall(
        ["wsl --install  # then, inside WSL2:", 'pip install "tensorflow[and-cuda]"'],
        "No TensorFlow GPU build exists for native Windows after 2.10: run TensorFlow in WSL2 with the "
        "and-cuda extra" + pin,
    )


def _tensorflow(fw: Framework, m: _Machine) -> Reinstall:
    """The and-cuda extra of the installed version (before 2.14: the release's CUDA build and the
    system CUDA/cuDNN it loads), or the newest current release whose CUDA knows every GPU."""
    first = ["pip uninstall -y tensorflow-cpu"] if fw.distribution == "tensorflow-cpu" else []
    version = F.version_pin(fw)
    release = builds.release_of("tensorflow", fw.version or "") if fw.version else None
    mine = builds.builds("tensorflow", release) if release else []
    if not any(b.supports_cc(cc) is False for b in mine for cc in m.ccs):
        b = mine[0] if mine else None
        if b is not None and b.extra != "and-cuda":
            if fw.distribution and fw.distribution != b.package and not first:
                first = [f"pip uninstall -y {fw.distribution}"]  # tensorflow 1.x is the CPU build
            return Reinstall([*first, b.install_command(version)], _system_libs(b), b)
        pin = f"=={version}" if version else ""
        return Reinstall(
            [*first, f'pip install "tensorflow[and-cuda]{pin}"'],
            "the and-cuda extra pulls the CUDA and cuDNN wheels TensorFlow was built with",
            b,
        )
    choice = m.resolve("tensorflow")
    b = choice.build
    if b is None:
        newest = max((r for r, _ in choice.rejected), key=lambda r: r.cuda_mm, default=None)
        built = f"; the newest is built with CUDA {newest.cuda}" if newest else ""
        return Reinstall(
            [],
            f"no TensorFlow release in envcheck's tables fits compute capability {m.cc_text} and this "
            f"machine{built}; build TensorFlow from source with a CUDA that knows this GPU",
        )
    why = f"TensorFlow {b.release} is built with CUDA {b.cuda}, which knows compute capability {m.cc_text}"
    if b.extra != "and-cuda":
        why += "; " + _system_libs(b)
    return Reinstall([*first, b.install_command()], why, b)
