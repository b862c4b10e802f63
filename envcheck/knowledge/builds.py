"""Framework builds: which CUDA variants each torch / TensorFlow / JAX release ships, with the
cuDNN, Python range, GPU arch list and minimum driver of each, and a resolver that picks the
variant that fits a machine (driver, GPUs, Python) together with the exact install command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from envcheck.knowledge import archs, cuda_archs, drivers
from envcheck.knowledge._table import rows
from envcheck.knowledge._version import Version, cuda_mm, cuda_tag, vstr, vtuple

TORCH_INDEX = "https://download.pytorch.org/whl/"
FRAMEWORKS = ("torch", "tensorflow", "jax")


@dataclass(frozen=True)
class Build:
    """One installable GPU build of a framework release."""

    framework: str
    #: release it belongs to: "2.6" (torch), "2.18.0" (tensorflow), "" for JAX (any recent release)
    release: str
    #: CUDA it was built with: "12.6"; for JAX the major only ("13": any 13.x)
    cuda: str
    #: "stable" or "experimental" (PyTorch's own labels); "unlabelled" when no source gave one
    status: str = "stable"
    cudnn: str | None = None
    pypi_default: bool = False
    python_min: str | None = None
    python_max: str | None = None
    #: compiled code ("sm_80", "compute_90"); None when no source says
    archs: tuple[str, ...] | None = None
    #: lowest compute capability supported when no arch list is known (JAX)
    min_cc: str | None = None
    #: lowest driver that runs it (minor-version compatibility)
    min_driver: str | None = None
    #: the extra to install: "and-cuda" (tensorflow), "cuda12"/"cuda13" (jax), "" (torch)
    extra: str = ""
    #: CPython versions with a published wheel ("3.12", "3.14t"); None when only a range is known
    pythons: tuple[str, ...] | None = None
    #: library versions the wheel pins (METADATA): NCCL, cuBLAS, the CUDA runtime
    nccl: str | None = None
    cublas: str | None = None
    cuda_runtime: str | None = None
    #: the patch release the facts were read from ("2.15.0"), when read from an artifact
    version: str | None = None
    #: the wheel read (file name) and its sha256; empty for hand-sourced rows
    artifact: str = ""
    sha256: str = ""
    source: str = ""
    as_of: str = ""

    @property
    def verified(self) -> bool:
        """True when the row was read from the released wheel itself, not from release notes."""
        return bool(self.artifact)

    @property
    def cuda_mm(self) -> tuple[int, int]:
        mm = cuda_mm(self.cuda)
        assert mm is not None, self
        return mm

    @property
    def tag(self) -> str:
        """PyTorch's variant tag ("cu126"); for the others the extra."""
        return cuda_tag(self.cuda_mm) if self.framework == "torch" else self.extra

    @property
    def index_url(self) -> str | None:
        return TORCH_INDEX + self.tag if self.framework == "torch" else None

    def supports_python(self, version: str | None) -> bool | None:
        """Is there a wheel of this build for Python ``version`` ("3.12.1")? None if unknown."""
        py = vtuple(version) if version else None
        if py is None or len(py) < 2:
            return None
        if self.pythons is not None:
            return f"{py[0]}.{py[1]}" in self.pythons
        lo, hi = vtuple(self.python_min or ""), vtuple(self.python_max or "")
        if lo is None or hi is None:
            return None
        return lo <= py[:2] <= hi

    @property
    def cuda_major_only(self) -> bool:
        """True when only the CUDA major is known (JAX's "cuda12" plugin: any 12.x)."""
        return "." not in self.cuda

    def supports_cc(self, cc: tuple[int, int]) -> bool | None:
        """Does this build run on a GPU of compute capability ``cc``? None if unknown.

        Its compiled code must cover ``cc`` (SASS or PTX) *and* its CUDA release must know the GPU,
        because the bundled cuBLAS/cuDNN only carry code for the architectures that release knew.
        """
        if self.cuda_fit(cc).ok is False:
            return False
        if self.archs is not None:
            return bool(archs.covering(self.archs, cc))
        lo = archs.parse_cc(self.min_cc) if self.min_cc else None
        return cc >= lo if lo else None

    def cuda_fit(self, cc: tuple[int, int]) -> cuda_archs.Fit:
        """Whether the CUDA release of this build knows compute capability ``cc``."""
        return cuda_archs.fits(self.cuda_mm, cc, major_only=self.cuda_major_only)

    def install_command(self, version: str | None = None, with_: Sequence[str] = ()) -> str:
        """The pip line that installs this build; ``version`` pins an exact release ("2.6.0"),
        ``with_`` adds requirements from the same index ("torchvision==0.21.0")."""
        if self.framework == "torch":
            v = version or newest_patch(self.release) or self.release
            pin = f"torch=={v}" if vtuple(v) and len(vtuple(v) or ()) >= 3 else f'"torch=={v}.*"'
            return f"pip install {' '.join([pin, *with_])} --index-url {self.index_url}"
        if self.framework == "tensorflow":
            return f'pip install "tensorflow[and-cuda]=={version or self.release}"'
        pin = f"=={version}" if version else ""
        return f'pip install -U "jax[{self.extra}]{pin}"'


@dataclass(frozen=True)
class Choice:
    """The build ``resolve`` picked (None if nothing fits) and why each other candidate was not."""

    build: Build | None
    rejected: tuple[tuple[Build, str], ...] = field(default_factory=tuple)


def release_of(framework: str, version: str) -> str | None:
    """The knowledge row key for an installed version: torch "2.6.0+cu124" -> "2.6",
    tensorflow "2.18.1" -> "2.18.0" (same major.minor); None when the release is not in the tables."""
    v = vtuple(version)
    if v is None or len(v) < 2:
        return None
    releases = {b.release for b in builds(framework)}
    for r in releases:
        rv = vtuple(r)
        if rv is not None and rv[:2] == v[:2]:
            return r
    return None


def builds(framework: str, release: str | None = None) -> list[Build]:
    """Every known GPU build of ``framework`` (optionally of one release), oldest release first."""
    table = {"torch": _torch, "tensorflow": _tensorflow, "jax": _jax}
    if framework not in table:
        raise ValueError(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")
    out = table[framework]()
    if release is not None:
        out = tuple(b for b in out if b.release == release)
    return list(out)


@cache
def _newest_patches() -> dict[str, str]:
    return {r["release"]: r["newest"] for r in rows("torch_releases.csv")}


def newest_patch(release: str) -> str | None:
    """The newest torch patch release of a minor release ("2.11" -> "2.11.0"), when recorded."""
    return _newest_patches().get(release)


def releases(framework: str) -> list[str]:
    """The releases of ``framework`` the tables know, oldest first."""
    seen = {b.release for b in builds(framework)}
    return sorted(seen, key=lambda r: vtuple(r) or ())


def resolve(
    framework: str,
    release: str | None = None,
    *,
    driver: str | None = None,
    driver_cuda: str | int | None = None,
    compute_capabilities: Iterable[tuple[int, int]] = (),
    python: str | None = None,
    experimental: bool = True,
    cuda_major: int | None = None,
) -> Choice:
    """The best build for a machine: runs on its driver, covers every GPU, has a wheel for its Python.

    ``release`` None means "newest release that fits" (torch/tensorflow). Facts that are None are
    not used to reject. Among fitting builds of the newest release: known GPU coverage before an
    unrecorded arch list, SASS before PTX-JIT-only, stable before experimental, then newest CUDA.
    """
    ccs = list(compute_capabilities)
    pool = builds(framework, release)
    rejected: list[tuple[Build, str]] = []
    fits: list[Build] = []
    for b in pool:
        why = _why_not(
            b,
            driver=driver,
            driver_cuda=driver_cuda,
            ccs=ccs,
            python=python,
            experimental=experimental,
            cuda_major=cuda_major,
        )
        if why:
            rejected.append((b, why))
        else:
            fits.append(b)
    if not fits:
        return Choice(None, tuple(rejected))

    def rank(b: Build) -> tuple[object, ...]:
        # newest release; then known to cover every GPU over "no arch list recorded"; then real SASS
        # over a PTX JIT at first start; then stable over experimental; then the newest CUDA
        known = all(b.supports_cc(cc) for cc in ccs)
        sass = not any(b.archs and archs.needs_jit(b.archs, cc) for cc in ccs)
        return (vtuple(b.release) or (), known, sass, b.status == "stable", b.cuda_mm)

    return Choice(max(fits, key=rank), tuple(rejected))


def _why_not(
    b: Build,
    *,
    driver: str | None,
    driver_cuda: str | int | None,
    ccs: Sequence[tuple[int, int]],
    python: str | None,
    experimental: bool,
    cuda_major: int | None,
) -> str | None:
    if cuda_major is not None and b.cuda_mm[0] != cuda_major:
        return f"built for CUDA {b.cuda}, CUDA {cuda_major}.x wanted"
    if not experimental and b.status != "stable":
        return f"{b.tag} is experimental"
    if driver or driver_cuda:
        chk = drivers.check(b.cuda_mm, driver=driver, driver_cuda=driver_cuda)
        if chk.ok is False:
            return f"needs driver >= {drivers.recommended_driver(b.cuda_mm[0]) or b.min_driver}"
    for cc in ccs:
        fit = b.cuda_fit(cc)
        if fit.ok is False:
            # phrased to follow "CUDA 12.4 ..." as provision's messages print it
            lo, hi = fit.window.min_cuda, fit.window.max_cuda
            if lo is not None and b.cuda_mm < lo:
                return f"is too old for compute capability {cc[0]}.{cc[1]} (needs CUDA >= {lo[0]}.{lo[1]})"
            last = f"{hi[0]}.{hi[1]}" if hi else "?"
            return f"is too new for compute capability {cc[0]}.{cc[1]} (last CUDA for it: {last})"
        if b.supports_cc(cc) is False:
            return f"has no code for compute capability {cc[0]}.{cc[1]}"
    if b.supports_python(python) is False:
        return f"no wheel for Python {python} (supports {b.python_min}-{b.python_max})"
    return None


# --------------------------------------------------------------------------- table loaders


def _words(text: str) -> tuple[str, ...] | None:
    """A space-separated cell as a tuple; None when empty (unknown, never "none")."""
    return tuple(text.split()) or None


def _table_build(framework: str, r: dict[str, str], **own: Any) -> Build:
    """A Build from a row of the torch or TensorFlow table: the columns both tables have, plus the
    fields only one of them knows (``own``); the driver floor follows the build's CUDA major."""
    mm = cuda_mm(r["cuda"])
    assert mm is not None, r
    return Build(
        framework=framework,
        release=r[framework],
        cuda=r["cuda"],
        cudnn=r["cudnn"] or None,
        python_min=r["python_min"] or None,
        python_max=r["python_max"] or None,
        pythons=_words(r["pythons"]),
        archs=_words(r["archs"]),
        nccl=r["nccl"] or None,
        cublas=r["cublas"] or None,
        cuda_runtime=r["cuda_runtime"] or None,
        min_driver=drivers.family_floor(mm[0]),
        artifact=r["artifact"],
        sha256=r["sha256"],
        source=r["source"],
        as_of=r["as_of"],
        **own,
    )


@cache
def _torch() -> tuple[Build, ...]:
    out = [
        _table_build(
            "torch",
            r,
            status=r["status"],
            pypi_default=r["pypi_default"] == "1",
            version=r["version"] or None,
        )
        for r in rows("torch_builds.csv")
    ]
    return tuple(sorted(out, key=lambda b: (vtuple(b.release) or (), b.cuda_mm)))


@cache
def _tensorflow() -> tuple[Build, ...]:
    out = [
        _table_build(
            "tensorflow",
            r,
            pypi_default=True,
            extra="and-cuda" if r["and_cuda"] == "1" else "",
            version=r["tensorflow"],
        )
        for r in rows("tensorflow_builds.csv")
    ]
    return tuple(sorted(out, key=lambda b: vtuple(b.release) or ()))


@cache
def _jax() -> tuple[Build, ...]:
    out = [
        Build(
            framework="jax",
            release="",
            cuda=r["cuda_major"],
            min_cc=r["min_cc"] or None,
            min_driver=r["min_driver"],
            extra=r["extra"],
            cudnn=r["cudnn"] or None,
            python_min=r["python_min"] or None,
            python_max=r["python_max"] or None,
            pypi_default=r["extra"] == "cuda13",
            version=r["last_jax"] or None,
            artifact=r["artifact"],
            sha256=r["sha256"],
            source=r["source"],
            as_of=r["as_of"],
        )
        for r in rows("jax_cuda.csv")
    ]
    return tuple(sorted(out, key=lambda b: b.cuda_mm))


def jax_first_release(extra: str) -> Version | None:
    """The first jax release that offers ``extra`` ("cuda13" -> (0, 7, 2)), when recorded."""
    for r in rows("jax_cuda.csv"):
        if r["extra"] == extra and r["first_jax"]:
            return vtuple(r["first_jax"])
    return None


def jax_last_release(extra: str) -> Version | None:
    """The last jax release ``extra``'s plugin was published for ("cuda12" -> (0, 12, 0, 1))."""
    for r in rows("jax_cuda.csv"):
        if r["extra"] == extra and r["last_jax"]:
            return vtuple(r["last_jax"])
    return None


def jax_release(*, python: str | None = None, extra: str | None = None) -> tuple[str, dict[str, str]] | None:
    """The newest jax release installable for ``python`` ("3.11") with ``extra`` ("cuda12": its
    plugin must exist at that exact version), with its table row; None when none fits."""
    best: tuple[Version, dict[str, str]] | None = None
    for r in rows("jax_releases.csv"):
        if extra and r.get(extra) != "1":
            continue
        if python and not python_admits(r["requires_python"], python):
            continue
        v = vtuple(r["jax"]) or ()
        if best is None or v > best[0]:
            best = (v, r)
    return (best[1]["jax"], best[1]) if best else None


def jax_row(version: str) -> dict[str, str] | None:
    """The jax_releases.csv row of an exact jax version ("0.12.1"); None when not in the table."""
    return next((r for r in rows("jax_releases.csv") if r["jax"] == version), None)


def python_admits(requires_python: str, python: str) -> bool:
    """Does a Requires-Python (">=3.12") admit ``python`` ("3.11")? (packaging loads only here:
    envcheck's start-up path never needs it.)"""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(requires_python).contains(f"{python}.0", prereleases=True)
    except InvalidSpecifier:
        return True


@cache
def _companions() -> dict[str, dict[str, str]]:
    return {r["torch"]: r for r in rows("torch_companions.csv")}


def companions(torch_version: str) -> dict[str, str]:
    """The torchvision / torchaudio releases built for an exact torch version ("2.1.0"), from
    their METADATA: {"torchvision": "0.16.0", "torchaudio": "2.1.0"} (absent ones left out)."""
    row = _companions().get(torch_version.split("+", 1)[0], {})
    return {k: row[k] for k in ("torchvision", "torchaudio") if row.get(k)}


def patches(release: str) -> list[str]:
    """Every patch release of a torch release on PyPI ("2.1" -> ["2.1.0", "2.1.1", "2.1.2"])."""
    return next((r["versions"].split() for r in rows("torch_releases.csv") if r["release"] == release), [])


def other_variants(release: str) -> str:
    """How much the tables know about a torch release's CUDA variants beyond the PyPI build:
    "read" (PyTorch's index was read), "hand" (release notes), "unknown" (PyPI build only)."""
    return next(
        (r["other_variants"] for r in rows("torch_releases.csv") if r["release"] == release), "unknown"
    )


__all__ = [
    "Build",
    "Choice",
    "builds",
    "companions",
    "jax_first_release",
    "jax_last_release",
    "jax_release",
    "jax_row",
    "newest_patch",
    "other_variants",
    "patches",
    "python_admits",
    "release_of",
    "releases",
    "resolve",
    "vstr",
]
