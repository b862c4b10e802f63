"""Framework builds: which CUDA variants each torch / TensorFlow / JAX release ships, with the
cuDNN, Python range, GPU arch list and minimum driver of each, and a resolver that picks the
variant that fits a machine (driver, GPUs, Python) together with the exact install command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from envcheck.knowledge import archs, cuda_archs, drivers
from envcheck.knowledge._table import rows
from envcheck.knowledge._version import Version, cuda_mm, cuda_tag, vstr, vtuple

TORCH_INDEX = "https://download.pytorch.org/whl/"
#: the find-links page pytorch.org's previous-versions page installs torch 1.2-1.10 variants from
TORCH_STABLE = "https://download.pytorch.org/whl/torch_stable.html"
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
    #: the patch release the facts were read from ("2.15.0"); for a hand row, the patch its source names
    version: str | None = None
    #: the PyPI project that is this build ("tensorflow-gpu" for TensorFlow before 2.1); "" = the framework
    package: str = ""
    #: every patch release built this way ("1.12.0" alone; "2.1.0 ... 2.1.4"), when recorded
    patches: tuple[str, ...] | None = None
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
            return self._torch_command(version, with_)
        if self.framework == "tensorflow":
            v = version or self.release
            if self.extra == "and-cuda":
                return f'pip install "tensorflow[and-cuda]=={v}"'
            return f'pip install "{self.package or "tensorflow"}=={v}"'
        pin = f"=={version}" if version else ""
        return f'pip install -U "jax[{self.extra}]{pin}"'

    def _torch_command(self, version: str | None, with_: Sequence[str]) -> str:
        """torch's pip line the way pytorch.org's previous-versions page gives it for the release:
        from 2.0 the variant's index; 1.11-1.13 that index as an extra index with the local tag
        ("torch==1.12.1+cu116"); 1.2-1.10 the local tag from the torch_stable.html find-links page;
        1.0-1.1 the variant's own find-links page only (its wheels carry no local tag, so PyPI's
        build of the same version must not compete). A PyPI build before 2.0 is plain PyPI."""
        v = version or self.version or newest_patch(self.release) or self.release
        exact = len(vtuple(v) or ()) >= 3
        release = vtuple(self.release) or ()
        if release >= (2, 0):
            pin = f"torch=={v}" if exact else f'"torch=={v}.*"'
            return f"pip install {' '.join([pin, *with_])} --index-url {self.index_url}"
        pin = f"torch=={v}" if exact else f'"torch=={v}.*"'
        if self.pypi_default:
            return f"pip install {' '.join([pin, *with_])}"
        if not exact:  # a local tag needs an exact version: the newest patch the tables know
            v = newest_patch(self.release) or v
        tagged = " ".join([f"torch=={v}+{self.tag}", *(_local(w, self.tag) for w in with_)])
        if release >= (1, 11):
            return f"pip install {tagged} --extra-index-url {self.index_url}"
        if release >= (1, 2):
            return f"pip install {tagged} -f {TORCH_STABLE}"
        return f"pip install torch=={v} --no-index -f {TORCH_INDEX}{self.tag}/torch_stable.html"


#: a TensorFlow version PyPI's final releases never carry: a local tag, a pre-release, a nightly
_NOT_PYPI_TF = re.compile(r"\+|\d(?:a|b|rc|\.?dev)\d", re.IGNORECASE)


def wheel_cuda(framework: str, version: str | None) -> bool | None:
    """Does this TensorFlow release load CUDA and cuDNN from pip wheels (the and-cuda extra, from
    2.14), or from the system (before)? None when unknown or not TensorFlow (torch bundles or pins
    its own, JAX's plugins always pin wheels). Only a wheel-fed build is fixed with
    ``pip install nvidia-cudnn-cuNN``, and those wheels exist for CUDA 11 and later only."""
    if framework != "tensorflow" or not version:
        return None
    release = release_of(framework, version)
    rows = builds(framework, release) if release else []
    return rows[0].extra == "and-cuda" if rows else None


def _local(requirement: str, tag: str) -> str:
    """ "torchvision==0.8.2" -> "torchvision==0.8.2+cu110" (torchaudio before 2.0 has no CUDA variants)."""
    name, sep, version = requirement.partition("==")
    if not sep or "+" in version or name.strip() != "torchvision":
        return requirement
    return f"{requirement}+{tag}"


@dataclass(frozen=True)
class Choice:
    """The build ``resolve`` picked (None if nothing fits) and why each other candidate was not."""

    build: Build | None
    rejected: tuple[tuple[Build, str], ...] = field(default_factory=tuple)


def release_of(framework: str, version: str) -> str | None:
    """The knowledge row key for an installed version: torch "2.6.0+cu124" -> "2.6"; tensorflow
    "1.12.0" -> the row built like 1.12.0 ("1.12.0", not 1.12.3's 3.7-only build), a patch the rows
    do not list -> the newest row of its major.minor; None when the release is not in the tables."""
    v = vtuple(version)
    if v is None or len(v) < 2:
        return None
    if framework == "tensorflow" and _NOT_PYPI_TF.search(version):
        return None  # NVIDIA's "1.15.5+nv22.12", a nightly or a release candidate: built otherwise
    same = [b for b in builds(framework) if (vtuple(b.release) or ())[:2] == v[:2]]
    plain = ".".join(str(p) for p in v)
    exact = next((b.release for b in same if b.patches and plain in b.patches), None)
    if exact is not None:
        return exact
    return max((b.release for b in same), key=lambda r: vtuple(r) or (), default=None)


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


@cache
def _current_pythons(framework: str) -> frozenset[str]:
    newest = max(builds(framework), key=lambda b: vtuple(b.release) or (), default=None)
    return frozenset(p.rstrip("t") for p in (newest.pythons or ()) if newest) if newest else frozenset()


def is_current(b: Build) -> bool:
    """Is ``b``'s release one a user of today's newest release could still install: does it publish
    a wheel for a Python that the newest release also supports? (torch 1.13 and 2.0 do, through
    3.11; torch 1.12 and TensorFlow 2.7 do not.) Fixes never send a user back further than that,
    and a GPU served only by older releases is too old for every current build. Builds without a
    Python list (JAX's plugins) are current."""
    if b.framework == "jax" or not b.pythons:
        return True
    return bool(_current_pythons(b.framework) & {p.rstrip("t") for p in b.pythons})


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
    current_only: bool = False,
) -> Choice:
    """The best build for a machine: runs on its driver, covers every GPU, has a wheel for its Python.

    ``release`` None means "newest release that fits" (torch/tensorflow); ``current_only`` leaves
    out releases no Python of the newest release can install (``is_current``). Facts that are None
    are not used to reject. Among fitting builds of the newest release: known GPU coverage before an
    unrecorded arch list, SASS before PTX-JIT-only, stable before experimental, then newest CUDA.
    """
    ccs = list(compute_capabilities)
    pool = [b for b in builds(framework, release) if not current_only or is_current(b)]
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
            package=r.get("package") or "tensorflow",
            patches=_words(r.get("versions", "")),
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
    "is_current",
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
    "wheel_cuda",
]
