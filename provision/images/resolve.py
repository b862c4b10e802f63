"""Plan an image: framework version <-> CUDA variant with wheels <-> cuDNN <-> base tag <-> driver <-> GPU.

Pure: no engine, no network. Version facts come from envcheck's knowledge base (one source of
truth); only the base-image tags and OS Pythons live in this package's own data files. Every way
the request cannot be met is a :class:`provision.errors.UsageError` naming the conflict and the
nearest choices that would work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from envcheck.knowledge import archs, drivers
from envcheck.knowledge import builds as kb
from envcheck.knowledge._version import cuda_mm, vtuple
from provision.errors import UsageError
from provision.images import _data

FRAMEWORK_ALIASES = {
    "torch": "torch",
    "pytorch": "torch",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "jax": "jax",
}
TORCH_INDEX = kb.TORCH_INDEX
LABEL_NS = "dev.mlrig"

Flavor = Literal["runtime", "devel"]


@dataclass(frozen=True)
class PlanRequest:
    """What the user asked for; None means "pick the best that fits"."""

    framework: str = "torch"
    version: str | None = None
    #: "12.4", "cu124", "cpu" or None
    cuda: str | None = None
    driver: str | None = None
    #: highest CUDA the driver reports (from an envcheck report: 12020 / "12.2")
    driver_cuda: str | None = None
    gpus: tuple[str, ...] = ()
    #: GPUs whose compute capability is known directly: (name, "8.6"), e.g. from an envcheck report
    known_gpus: tuple[tuple[str, str], ...] = ()
    python: str | None = None
    flavor: Flavor = "runtime"
    jupyter: bool = False
    #: replace the planned base image (a local or private mirror tag); must be pinned
    base: str | None = None
    #: wheel index for the framework step: None = the framework's own, "none" = local wheels only
    framework_index: str | None = None
    #: index for everything else: None = pip's default (PyPI), "none" = local wheels only
    index_url: str | None = None
    #: what installs envcheck inside the image
    envcheck_requirement: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class GpuTarget(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    compute_capability: str
    covered_by: list[str] = Field(default_factory=list)


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)
    fact: str
    source: str
    as_of: str


class ImagePlan(BaseModel):
    """Everything the Dockerfile needs, already decided; ``--json`` prints it."""

    model_config = ConfigDict(frozen=True)

    framework: str
    #: the version pinned in the image ("2.6.0", or "2.6.*" when only a release was given)
    framework_version: str
    release: str
    #: the pip requirement that installs it ("torch==2.6.0+cu124")
    requirement: str
    #: the index the framework step uses as its only index; None = pip's default; "none" = no index
    framework_index: str | None
    index_url: str | None
    device: Literal["cuda", "cpu"]
    cuda: str | None = None
    cuda_status: str | None = None
    cudnn: str | None = None
    python: str
    os: str
    flavor: Flavor
    base_image: str
    #: "nvidia" (an nvidia/cuda tag), "os" (a plain OS image), "custom" (--base)
    base_kind: Literal["nvidia", "os", "custom"]
    #: the NVIDIA_REQUIRE_CUDA the image sets ("cuda>=12.4"), None on CPU images
    require_cuda: str | None = None
    min_driver: str | None = None
    toolkit_driver: str | None = None
    driver: str | None = None
    driver_mode: str | None = None
    archs: list[str] | None = None
    gpus: list[GpuTarget] = Field(default_factory=list)
    jupyter: bool = False
    extra_requirements: list[str] = Field(default_factory=list)
    envcheck_requirement: str
    notes: list[str] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)

    @property
    def python_exe(self) -> str:
        return f"python{self.python}"

    def labels(self) -> dict[str, str]:
        """OCI labels recording every resolved version, so tools can read the stack without running it."""
        out = {
            "org.opencontainers.image.title": f"mlrig {self.framework} {self.framework_version} "
            + (f"CUDA {self.cuda}" if self.cuda else "CPU"),
            "org.opencontainers.image.description": "Deep-learning image planned and rendered by mlrig",
            "org.opencontainers.image.version": self.framework_version,
            "org.opencontainers.image.base.name": self.base_image,
            f"{LABEL_NS}.framework": self.framework,
            f"{LABEL_NS}.framework.version": self.framework_version,
            f"{LABEL_NS}.requirement": self.requirement,
            f"{LABEL_NS}.device": self.device,
            f"{LABEL_NS}.python": self.python,
            f"{LABEL_NS}.flavor": self.flavor,
            f"{LABEL_NS}.selftest": "envcheck smoke --json",
        }
        optional = {
            "cuda": self.cuda,
            "cudnn": self.cudnn,
            "min-driver": self.min_driver,
            "archs": " ".join(self.archs) if self.archs else None,
        }
        out.update({f"{LABEL_NS}.{k}": v for k, v in optional.items() if v})
        return out


# --------------------------------------------------------------------------- parsing


def parse_framework(spec: str) -> tuple[str, str | None]:
    """ "torch==2.6" -> ("torch", "2.6"); "tensorflow" -> ("tensorflow", None)."""
    name, _, given = spec.strip().partition("==")
    fw = FRAMEWORK_ALIASES.get(name.strip().lower())
    if fw is None:
        raise UsageError(
            f"unknown framework {name.strip()!r}",
            hint="use torch, tensorflow or jax, e.g. --framework torch==2.6",
        )
    version = given.strip() or None
    if version is not None and (vtuple(version) is None or not version[0].isdigit()):
        raise UsageError(f"not a version: {version!r}", hint=f"e.g. --framework {fw}==2.6")
    return fw, version


def _nearest(options: list[str], want: str, n: int = 3) -> list[str]:
    """The ``n`` options closest to ``want`` as versions (ties: the newer)."""
    w = vtuple(want) or (0,)

    def distance(o: str) -> tuple[float, tuple[int, ...]]:
        v = vtuple(o) or (0,)
        a = v[0] * 1000 + (v[1] if len(v) > 1 else 0)
        b = w[0] * 1000 + (w[1] if len(w) > 1 else 0)
        return (abs(a - b), tuple(-x for x in v))

    return sorted(options, key=distance)[:n]


# --------------------------------------------------------------------------- resolution


def resolve(req: PlanRequest) -> ImagePlan:
    """The plan for ``req``; raises UsageError naming the conflict and the nearest valid choices."""
    fw = FRAMEWORK_ALIASES.get(req.framework, req.framework)
    if fw not in kb.FRAMEWORKS:
        raise UsageError(f"unknown framework {req.framework!r}", hint="use torch, tensorflow or jax")
    if req.python is not None and (vtuple(req.python) is None or len(vtuple(req.python) or ()) < 2):
        raise UsageError(f"not a Python version: {req.python!r}", hint="e.g. --python 3.11")
    if req.driver is not None and (vtuple(req.driver) is None or len(vtuple(req.driver) or ()) < 2):
        raise UsageError(
            f"not a driver version: {req.driver!r}", hint="e.g. --driver 535.104.05 (nvidia-smi shows it)"
        )
    python = ".".join(str(p) for p in (vtuple(req.python) or ())[:2]) if req.python else None
    if req.base is not None:
        _check_pinned(req.base)
    if req.base is not None and python is None:
        req = replace(req, notes=(*req.notes, "with --base, give --python to match the base's interpreter"))
    gpus = _gpu_targets(req)
    cpu = (req.cuda or "").strip().lower() in {"cpu", "none"}
    if cpu:
        if gpus:
            raise UsageError(
                f"--cuda cpu conflicts with --gpu {gpus[0].name}: a CPU image cannot use it",
                hint="drop --gpu, or drop --cuda cpu to plan a CUDA image",
            )
        if req.flavor == "devel":
            raise UsageError(
                "the devel flavour adds the CUDA toolkit; a CPU image has none", hint="use --flavor runtime"
            )
        return _resolve_cpu(fw, req, python)
    return _resolve_cuda(fw, req, python, gpus)


def _check_pinned(image: str) -> None:
    name = image.rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return
    if ":" not in name or name.endswith(":latest"):
        raise UsageError(
            f"base image {image!r} is not pinned",
            hint="give a tag or digest: IMAGE:TAG or IMAGE@sha256:... (never 'latest')",
        )


def _gpu_targets(req: PlanRequest) -> list[GpuTarget]:
    from envcheck.knowledge import capabilities, gpus

    out: list[GpuTarget] = []
    for name in req.gpus:
        spec = gpus.lookup(name)
        cc = spec.compute_capability if spec is not None else capabilities.compute_capability(name)
        if not cc:
            similar = [s.name for s in gpus.search(name)][:3]
            raise UsageError(
                f"unknown GPU {name!r}",
                hint=f"did you mean: {', '.join(similar)}"
                if similar
                else "give the name nvidia-smi shows, e.g. H100, A100-80GB, RTX 4090",
            )
        out.append(GpuTarget(name=spec.name if spec else name, compute_capability=cc))
    for name, cc in req.known_gpus:
        if all(g.name != name or g.compute_capability != cc for g in out):
            out.append(GpuTarget(name=name, compute_capability=cc))
    return out


def _release(fw: str, version: str | None) -> tuple[str, str]:
    """(knowledge-base release row, version to pin). For jax the version may be "" (the newest
    release that fits the image's Python and CUDA extra, chosen with the OS: ``_jax_version``)."""
    known = kb.releases(fw)
    if fw == "jax":
        return "", version or ""
    if version is None:
        newest = known[-1]
        return newest, newest
    release = kb.release_of(fw, version)
    if release is None:
        near = _nearest(known, version)
        raise UsageError(
            f"{fw} {version} is not in envcheck's build tables",
            hint=f"nearest known releases: {', '.join(near)} (tables list {known[0]}..{known[-1]})",
        )
    return release, version


def _pin(version: str) -> str:
    """Exact when the user gave major.minor.patch, else every patch of the release ("2.6.*")."""
    v = vtuple(version) or ()
    return version if len(v) >= 3 else ".".join(str(p) for p in v[:2]) + ".*"


def _pick_os(
    python: str | None,
    fits_python: Callable[[str], bool | None],
    oses: tuple[str, ...] | None,
) -> tuple[str, str] | None:
    """(os, python): the preferred OS Python that the build supports and the base exists for."""
    for op in _data.os_pythons():
        if python is not None and op.python != python:
            continue
        if oses is not None and op.os not in oses:
            continue
        if fits_python(op.python) is False:
            continue
        return op.os, op.python
    return None


def _jax_fit(version: str, extra: str | None) -> Callable[[str], bool | None]:
    """Whether jax ``version`` ("" = some release) with ``extra``'s plugin installs on a Python:
    jax's Requires-Python moves (0.11 needs 3.12) and a plugin may stop (cuda12 at 0.12.0.1)."""

    def fits(py: str) -> bool | None:
        if not version:
            return kb.jax_release(python=py, extra=extra) is not None
        row = kb.jax_row(version)
        if row is None:
            return None
        if extra and row.get(extra) != "1":
            return False
        return kb.python_admits(row["requires_python"], py)

    return fits


def _jax_version(version: str, python: str, extra: str | None) -> tuple[str, list[Fact]]:
    """The jax version to pin: the one asked for, else the newest release for this Python and extra."""
    if version:
        row = kb.jax_row(version)
    else:
        found = kb.jax_release(python=python, extra=extra)
        if found is None:
            raise UsageError(
                f"no jax release in the tables installs on Python {python}"
                + (f" with jax[{extra}]" if extra else ""),
                hint="give --python 3.12 or newer",
            )
        version, row = found
    if row is None:
        return version, []
    return version, [Fact(fact=f"jax {version} Python and plugins", source=row["source"], as_of=row["as_of"])]


def _os_choice(
    *,
    build: kb.Build | None,
    python: str | None,
    oses: tuple[str, ...] | None,
    what: str,
    custom_base: bool,
    fits_python: Callable[[str], bool | None] | None = None,
) -> tuple[str, str]:
    def fits(py: str) -> bool | None:
        if fits_python is not None:
            return fits_python(py)
        return build.supports_python(py) if build is not None else None

    if custom_base:
        if python is not None:
            if fits(python) is False:
                raise UsageError(f"{what} has no wheel for Python {python}", hint=_python_hint(build, fits))
            return "custom", python
        picked = _pick_os(None, fits, None)
        if picked is None:
            raise UsageError(f"{what}: no Python fits", hint="give --python matching the base's interpreter")
        return "custom", picked[1]
    picked = _pick_os(python, fits, oses)
    if picked is not None:
        return picked
    # explain: which Pythons would work here, and where the asked-for Python would
    possible = [
        op for op in _data.os_pythons() if (oses is None or op.os in oses) and fits(op.python) is not False
    ]
    if python is not None and fits(python) is False:
        raise UsageError(
            f"{what} has no wheel for Python {python}",
            hint=f"{_python_hint(build, fits)}; nearest valid: "
            + ", ".join(f"--python {op.python}" for op in possible[:3]),
        )
    where = sorted({op.os for op in _data.os_pythons() if op.python == python})
    choices = [f"--python {op.python} ({op.os})" for op in possible[:3]]
    raise UsageError(
        f"{what}: Python {python} ships with {', '.join(where) or 'no supported base OS'}, "
        f"but the base images exist only for {', '.join(oses or ()) or 'no OS'}",
        hint="nearest valid: "
        + (", ".join(choices) or "another --cuda")
        + ", or --base IMAGE with that Python",
    )


def _python_hint(build: kb.Build | None, fits: Callable[[str], bool | None]) -> str:
    """ "it supports Python 3.10-3.14" from the wheel tags, or the OS Pythons that fit."""
    if build is not None and build.pythons:
        regular = [p for p in build.pythons if not p.endswith("t")]
        if regular:
            return f"it supports Python {regular[0]}-{regular[-1]}"
    if build is not None and build.python_min and build.python_max:
        return f"it supports Python {build.python_min}-{build.python_max}"
    ok = sorted({op.python for op in _data.os_pythons() if fits(op.python)}, key=lambda p: vtuple(p) or ())
    return "Pythons that fit: " + (", ".join(ok) or "none of the base images'")


def _resolve_cpu(fw: str, req: PlanRequest, python: str | None) -> ImagePlan:
    release, version = _release(fw, req.version)
    # the GPU rows still carry the release's Python range; a CPU wheel has the same one
    rows = kb.builds(fw, release) if fw != "jax" else []
    build = rows[-1] if rows else None
    os_name, py = _os_choice(
        build=build,
        python=python,
        oses=None,
        what=f"{fw} {version or '(newest that fits)'}",
        custom_base=req.base is not None,
        fits_python=_jax_fit(version, None) if fw == "jax" else None,
    )
    jax_facts: list[Fact] = []
    if fw == "jax":
        version, jax_facts = _jax_version(version, py, None)
    pin = _pin(version)
    index = req.framework_index
    if fw == "torch":
        exact = "+cpu" if len(vtuple(version) or ()) >= 3 else ""
        requirement = f"torch=={pin}{exact}"
        index = index if index is not None else TORCH_INDEX + "cpu"
    elif fw == "tensorflow":
        requirement = f"tensorflow-cpu=={pin}"
    else:
        requirement = f"jax=={pin}"
    base = req.base or next(op.cpu_image for op in _data.os_pythons() if op.os == os_name)
    facts = (
        [Fact(fact=f"{fw} {release} Python range", source=build.source, as_of=build.as_of)] if build else []
    )
    facts += jax_facts + _os_facts(os_name, py)
    return ImagePlan(
        framework=fw,
        framework_version=pin,
        release=release or version,
        requirement=requirement,
        framework_index=_index(index),
        index_url=_index(req.index_url),
        device="cpu",
        python=py,
        os=os_name,
        flavor="runtime",
        base_image=base,
        base_kind="custom" if req.base else "os",
        jupyter=req.jupyter,
        extra_requirements=_extras(fw, req),
        envcheck_requirement=_envcheck_req(req),
        notes=list(req.notes),
        facts=facts,
    )


def _index(value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    return "none" if value.strip().lower() == "none" else value.strip()


def _extras(fw: str, req: PlanRequest) -> list[str]:
    """Packages beside the framework: numpy for torch (envcheck smoke and most torch code need it)."""
    out = []
    if fw == "torch":
        out.append(f"numpy=={_data.pin('numpy')[0]}")
    if req.jupyter:
        out.append(f"jupyterlab=={_data.pin('jupyterlab')[0]}")
    return out


def _envcheck_req(req: PlanRequest) -> str:
    if req.envcheck_requirement:
        return req.envcheck_requirement
    from envcheck import __version__

    return f"mlrig=={__version__}"


def _os_facts(os_name: str, python: str) -> list[Fact]:
    return [
        Fact(fact=f"{op.os} ships Python {op.python}", source=op.source, as_of=op.as_of)
        for op in _data.os_pythons()
        if op.os == os_name and op.python == python
    ]


def _resolve_cuda(fw: str, req: PlanRequest, python: str | None, gpus: list[GpuTarget]) -> ImagePlan:
    release, version = _release(fw, req.version)
    if req.version is None and fw != "jax":
        release = version = ""  # no release asked for: the newest one that fits this machine
    want = cuda_mm(req.cuda) if req.cuda else None
    if req.cuda and want is None:
        raise UsageError(
            f"not a CUDA version: {req.cuda!r}", hint="e.g. --cuda 12.4, --cuda cu126 or --cuda cpu"
        )
    ccs = [_cc(g.compute_capability) for g in gpus]
    what = f"{fw} {version or '(newest that fits)'}"
    pool = kb.builds(fw, release or None)
    if fw == "jax":
        pool = _jax_pool(version, pool)
    if want is not None:
        matching = [b for b in pool if _same_cuda(fw, b, want)]
        if not matching:
            have = ", ".join(sorted({b.cuda for b in pool}, key=lambda c: vtuple(c) or ())) or "none"
            near = _nearest(sorted({b.cuda for b in pool}), f"{want[0]}.{want[1]}", 2)
            raise UsageError(
                f"{what} has no build for CUDA {want[0]}.{want[1]} (builds: {have})",
                hint="nearest valid: " + ", ".join(f"--cuda {c}" for c in near),
            )
        pool = matching
    choice = kb.resolve(
        fw,
        release or None,
        driver=req.driver,
        driver_cuda=req.driver_cuda,
        compute_capabilities=ccs,
        python=python,
    )
    rejected = {id(b) for b, _ in choice.rejected}
    fitting = [b for b in pool if id(b) not in rejected]
    if not fitting:
        raise _no_build(fw=fw, what=what, pool=pool, choice=choice, req=req, ccs=ccs, python=python)
    # preference: the knowledge base's pick, then stable before experimental, newest CUDA first;
    # the first one whose base image exists for an OS with the wanted Python wins
    ranked = sorted(
        fitting,
        key=lambda b: (b is choice.build, vtuple(b.release) or (), b.status == "stable", b.cuda_mm),
        reverse=True,
    )
    first_error: UsageError | None = None
    for build in ranked:
        if not version and fw != "jax":
            req = replace(req, notes=(*req.notes, *_skipped_newer(fw, build, choice)))
        try:
            return _cuda_plan(
                fw=fw, req=req, build=build, version=version or build.release, python=python, gpus=gpus
            )
        except UsageError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _skipped_newer(fw: str, picked: kb.Build, choice: kb.Choice) -> list[str]:
    """Notes naming the (at most two) newest releases that do not fit, and why."""
    by_release: dict[str, dict[str, list[str]]] = {}
    for b, why in choice.rejected:
        if (vtuple(b.release) or ()) > (vtuple(picked.release) or ()):
            by_release.setdefault(b.release, {}).setdefault(why, []).append(b.cuda)
    newest = sorted(by_release, key=lambda r: vtuple(r) or ())[-2:]
    return [
        f"{fw} {r} does not fit: "
        + "; ".join(f"CUDA {', '.join(cudas)} {why}" for why, cudas in by_release[r].items())
        for r in newest
    ]


def _newest_base_for_driver(bases: list[_data.CudaBase], req: PlanRequest) -> tuple[int, int]:
    """The newest base of a family the driver runs in full (its own CUDA at least the base's)."""
    top = cuda_mm(req.driver_cuda) if req.driver_cuda else None
    dv = vtuple(req.driver) if req.driver else None
    usable = []
    for b in bases:
        need = vtuple(drivers.toolkit_driver(f"{b.cuda[0]}.{b.cuda[1]}") or "")
        if (top is None or b.cuda <= top) and (dv is None or need is None or dv >= need):
            usable.append(b)
    return (usable or bases)[-1].cuda


def _driver_mode(cuda: tuple[int, int], req: PlanRequest) -> str | None:
    """How the given driver runs this CUDA: "full", "minor-version", "too-old", or None if no driver given."""
    if not (req.driver or req.driver_cuda):
        return None
    full = drivers.toolkit_driver(f"{cuda[0]}.{cuda[1]}")
    dv = vtuple(req.driver) if req.driver else None
    if dv is not None and full is not None and dv >= (vtuple(full) or ()):
        return "full"
    return drivers.check(cuda, driver=req.driver, driver_cuda=req.driver_cuda).mode


def _same_cuda(fw: str, b: kb.Build, want: tuple[int, int]) -> bool:
    return b.cuda_mm[0] == want[0] if fw == "jax" else b.cuda_mm == want


def _jax_pool(version: str, pool: list[kb.Build]) -> list[kb.Build]:
    """The CUDA extras whose plugin exists at jax ``version`` (every extra when none was asked)."""
    if not version:
        return pool
    v = vtuple(version) or ()
    row = kb.jax_row(version)
    out = []
    for b in pool:
        if row is not None:
            if row.get(b.extra) == "1":
                out.append(b)
            continue
        first, last = kb.jax_first_release(b.extra), kb.jax_last_release(b.extra)
        if (first is None or v >= first) and (last is None or v <= last):
            out.append(b)
    if not out:
        ranges = ", ".join(
            f"jax[{b.extra}] {kb.vstr(first)}..{b.version or '?'}"
            for b in pool
            if (first := kb.jax_first_release(b.extra)) is not None
        )
        raise UsageError(
            f"jax {version} has no CUDA plugin of the same version on PyPI (envcheck's tables)",
            hint=f"plugins exist for {ranges or 'no jax release known'}",
        )
    return out


def _cc(text: str) -> tuple[int, int]:
    cc = archs.parse_cc(text)
    if cc is None:
        raise UsageError(f"not a compute capability: {text!r}", hint='e.g. "8.6"')
    return cc


def _no_build(
    *,
    fw: str,
    what: str,
    pool: list[kb.Build],
    choice: kb.Choice,
    req: PlanRequest,
    ccs: list[tuple[int, int]],
    python: str | None,
) -> UsageError:
    reasons = {id(b): why for b, why in choice.rejected}
    parts = [f"CUDA {b.cuda} {reasons.get(id(b), 'does not fit')}" for b in pool]
    # nearest valid: the same constraints on other releases (newest first)
    alternatives: list[str] = []
    if fw != "jax":
        other = kb.resolve(
            fw, None, driver=req.driver, driver_cuda=req.driver_cuda, compute_capabilities=ccs, python=python
        )
        if other.build is not None:
            alternatives.append(f"--framework {fw}=={other.build.release} --cuda {other.build.cuda}")
    if req.driver:
        top = drivers.newest_family(req.driver)
        floors = sorted(
            {f for b in pool if (f := drivers.recommended_driver(b.cuda_mm[0]))},
            key=lambda d: vtuple(d) or (),
        )
        if floors:
            alternatives.append(f"a driver >= {floors[0]}" + (f" (yours runs CUDA {top}.x)" if top else ""))
    return UsageError(
        f"no {what} build fits: " + "; ".join(parts),
        hint="nearest valid: " + (", ".join(alternatives) or "drop a constraint (--gpu, --driver, --python)"),
    )


def _cuda_plan(
    *, fw: str, req: PlanRequest, build: kb.Build, version: str, python: str | None, gpus: list[GpuTarget]
) -> ImagePlan:
    mm = build.cuda_mm
    notes = list(req.notes)
    # jax names a major only: take the newest base of that major the driver runs in full
    base_cuda = mm
    if fw == "jax":
        majors = [b for b in _data.cuda_bases() if b.cuda[0] == mm[0]]
        base_cuda = _newest_base_for_driver(majors, req)
    cb = _data.cuda_base(base_cuda)
    wheels_carry_cuda = fw == "torch" or bool(build.extra)
    flavour = "cudnn-devel" if req.flavor == "devel" else ("base" if wheels_carry_cuda else "cudnn-runtime")
    cuda_text = f"{base_cuda[0]}.{base_cuda[1]}"
    what = f"{fw} {version or '(newest that fits)'} (CUDA {cuda_text})"
    if cb is None and req.base is None:
        have = [f"{b.cuda[0]}.{b.cuda[1]}" for b in _data.cuda_bases()]
        raise UsageError(
            f"no nvidia/cuda base image is known for CUDA {cuda_text}",
            hint="nearest valid: "
            + ", ".join(f"--cuda {c}" for c in _nearest(have, cuda_text, 2))
            + ", or --base IMAGE",
        )
    os_name, py = _os_choice(
        build=build,
        python=python,
        oses=cb.oses if cb else None,
        what=what,
        custom_base=req.base is not None,
        fits_python=_jax_fit(version, build.extra) if fw == "jax" else None,
    )
    jax_facts: list[Fact] = []
    if fw == "jax":
        version, jax_facts = _jax_version(version, py, build.extra)
    pin = _pin(version)
    if fw == "torch":
        exact = f"+{build.tag}" if len(vtuple(version) or ()) >= 3 else ""
        requirement = f"torch=={pin}{exact}"
        index = req.framework_index if req.framework_index is not None else build.index_url
    elif fw == "tensorflow":
        requirement = f"tensorflow[{build.extra}]=={pin}" if build.extra else f"tensorflow=={pin}"
        index = req.framework_index
    else:
        requirement = f"jax[{build.extra}]=={pin}"
        index = req.framework_index
    mode = _driver_mode(base_cuda, req)
    require = f"cuda>={cuda_text}"
    if mode == "minor-version":
        # NVIDIA's images refuse drivers older than their CUDA; minor-version compatibility says this
        # one runs the wheels, so the image asks only for the family
        require = f"cuda>={mm[0]}.0"
        notes.append(
            f"driver {req.driver or req.driver_cuda} runs CUDA {cuda_text} "
            "through minor-version compatibility; "
            f"NVIDIA_REQUIRE_CUDA relaxed to {require} "
            "(features needing a newer driver, e.g. PTX JIT of newer code, will not work)"
        )
    if build.status == "experimental":
        notes.append(f"{fw} {build.release} for CUDA {build.cuda} is labelled experimental by its developers")
    targets = []
    for g in gpus:
        cc = _cc(g.compute_capability)
        if build.archs is None:
            notes.append(f"{g.name}: the arch list of this build is not in envcheck's tables; not checked")
            targets.append(g)
            continue
        targets.append(g.model_copy(update={"covered_by": archs.covering(build.archs, cc)}))
        if archs.needs_jit(build.archs, cc):
            notes.append(
                f"{g.name}: only PTX covers compute capability {g.compute_capability}; first use JIT-compiles"
            )
    facts = [
        Fact(
            fact=f"{fw} {build.release or version} CUDA {build.cuda} build",
            source=build.source,
            as_of=build.as_of,
        )
    ]
    if cb is not None:
        facts.append(Fact(fact=f"nvidia/cuda {cb.tag_version} tags", source=cb.source, as_of=cb.as_of))
    facts += jax_facts + _os_facts(os_name, py)
    base = req.base or (cb.image(flavour, os_name) if cb else "")
    return ImagePlan(
        framework=fw,
        framework_version=pin,
        release=build.release or version,
        requirement=requirement,
        framework_index=_index(index),
        index_url=_index(req.index_url),
        device="cuda",
        cuda=build.cuda if fw != "jax" else cuda_text,
        cuda_status=build.status,
        cudnn=build.cudnn,
        python=py,
        os=os_name,
        flavor=req.flavor,
        base_image=base,
        base_kind="custom" if req.base else "nvidia",
        require_cuda=require,
        min_driver=drivers.family_floor(mm[0]) or build.min_driver,
        toolkit_driver=drivers.toolkit_driver(cuda_text),
        driver=req.driver,
        driver_mode=mode,
        archs=list(build.archs) if build.archs else None,
        gpus=targets,
        jupyter=req.jupyter,
        extra_requirements=_extras(fw, req),
        envcheck_requirement=_envcheck_req(req),
        notes=notes,
        facts=facts,
    )


# --------------------------------------------------------------------------- envcheck reports


def request_from_report(text: str, origin: str, req: PlanRequest) -> PlanRequest:
    """Fill what ``req`` leaves open from an envcheck JSON report (or collect_env text) of a machine."""
    from envcheck.errors import EnvcheckError
    from envcheck.ingest import load

    try:
        snap = load(text, origin).snapshot
    except EnvcheckError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    updates: dict[str, object] = {}
    notes = list(req.notes)
    nv = snap.nvidia
    if req.driver is None and nv is not None and nv.driver_version:
        updates["driver"] = nv.driver_version
    if req.driver_cuda is None and nv is not None and nv.cuda_driver_version:
        updates["driver_cuda"] = str(nv.cuda_driver_version)
    if not req.gpus and not req.known_gpus and nv is not None and nv.gpus:
        known = {(g.name or f"GPU {g.index}", g.compute_capability) for g in nv.gpus if g.compute_capability}
        names = {g.name for g in nv.gpus if g.name and not g.compute_capability}
        updates["known_gpus"] = tuple(sorted(known))
        updates["gpus"] = tuple(sorted(names))
    if req.python is None and snap.system and snap.system.python and snap.system.python.version:
        v = vtuple(snap.system.python.version) or ()
        updates["python"] = ".".join(str(p) for p in v[:2])
    if req.version is None:
        fw = snap.framework(req.framework)
        if fw is not None and fw.version:
            updates["version"] = fw.version.split("+", 1)[0]
            notes.append(f"{req.framework} {fw.version} is what that machine runs")
    no_gpu = nv is None or not (nv.gpus or nv.driver_version)
    if req.cuda is None and no_gpu:
        updates["cuda"] = "cpu"
        notes.append("the report shows no NVIDIA driver or GPU: planning a CPU image")
    updates["notes"] = tuple(notes)
    return replace(req, **updates)  # type: ignore[arg-type]
