"""Table rows from released artifacts: torch, TensorFlow and JAX builds, torch's companion
packages. Each function reads an index listing, picks the newest patch of every release it covers,
reads that wheel's facts and returns rows whose ``artifact``/``sha256``/``as_of`` say exactly what
was read. Rows that no reachable artifact backs (PyTorch's other CUDA variants live on
download.pytorch.org) are kept from the committed table and marked as not verified, never guessed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.version import Version

from envcheck.knowledge import archs
from envcheck.knowledge.refresh._http import FetchError
from envcheck.knowledge.refresh.index import IndexFile, SimpleIndex
from envcheck.knowledge.refresh.wheel import Metadata, WheelError, WheelReader, literal_assignments

Row = dict[str, str]

TORCH_FIRST = Version("1.0")
#: the first release whose wheel records its CUDA (``cuda_config.h``; ``build_info.py`` from 2.3)
TENSORFLOW_FIRST = Version("1.5")
#: before 2.1 the CUDA build is its own project on PyPI (``tensorflow`` is the CPU build there)
TENSORFLOW_GPU_PROJECT_BEFORE = Version("2.1")
JAX_FIRST = Version("0.4.14")
TORCHVISION_FIRST = Version("0.16")
TORCHAUDIO_FIRST = Version("2.1")
#: the library whose arch-flags string is ``torch.cuda.get_arch_list()`` (from torch 1.6)
TORCH_ARCH_LIBRARY = ("torch/lib/libtorch_python.so",)
#: before 1.6 no arch-flags string exists; torch 1.2-1.5 keep nvcc's ``-gencode`` flags (what
#: ``torch.__config__.show()`` prints) in the CUDA library. torch 1.0/1.1 keep neither.
TORCH_GENCODE_LIBRARIES = ("torch/lib/libtorch_cuda.so", "torch/lib/libtorch.so")
#: the generated header that records CUDNN_VERSION (torch 1.8-1.12 link cuDNN statically, so no
#: libcudnn file or nvidia-cudnn pin names it)
TORCH_MACROS = ("torch/include/caffe2/core/macros.h",)
#: build_info.py: CUDA, cuDNN major and the compiled arch list from 2.3 (under tensorflow_core/
#: in 1.15-2.1, under <dist>.data/purelib/ in 1.x wheels)
TF_BUILD_INFO = ("tensorflow/python/platform/build_info.py", "tensorflow_core/python/platform/build_info.py")
#: the header bazel's cuda_configure wrote: TF_CUDA_VERSION, TF_CUDNN_VERSION, TF_CUDA_CAPABILITIES
TF_CUDA_CONFIG = ("local_config_cuda/cuda/cuda/cuda_config.h",)
#: marker in ``source`` of a row that no artifact backed at the last refresh
UNVERIFIED = "not verified against the artifact"


@dataclass
class Log:
    """What the refresh did and could not do, for the report."""

    read: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: index base URL -> why it could not be read ("" when read)
    indexes: dict[str, str] = field(default_factory=dict)
    #: the error behind each unreadable index (re-raised when the index is indispensable)
    errors: dict[str, FetchError] = field(default_factory=dict)

    def merge(self, other: Log) -> None:
        self.read += other.read
        self.problems += other.problems
        self.errors.update(other.errors)
        for base, why in other.indexes.items():
            if why or base not in self.indexes:
                self.indexes[base] = why

    def index(self, idx: SimpleIndex, project: str, *, optional: bool = False) -> list[IndexFile] | None:
        """``idx.files(project)``, with the outcome recorded; None when unreadable. An ``optional``
        project the index does not have (404) is no files, not an unreadable index."""
        try:
            files = idx.files(project)
        except FetchError as exc:
            if optional and exc.status == 404:
                self.problems.append(f"{idx.project_url(project)}: no such project")
                return []
            self.indexes[idx.base] = exc.reason
            self.errors[idx.base] = exc
            self.problems.append(f"{idx.project_url(project)}: {exc.reason}")
            return None
        self.indexes.setdefault(idx.base, "")
        return files


# --------------------------------------------------------------------------- index helpers


def _final(v: Version) -> bool:
    return not (v.is_prerelease or v.is_devrelease)


def _minor(v: Version) -> str:
    return f"{v.major}.{v.minor}"


def releases(
    files: Iterable[IndexFile], first: Version, *, local: str | None = None
) -> dict[str, list[Version]]:
    """Final versions with an x86_64 Linux wheel, grouped by major.minor (oldest first);
    ``local`` keeps only that local tag ("cu126"), None only versions without one."""
    out: dict[str, set[Version]] = defaultdict(set)
    for f in files:
        v = f.version
        if v is None or f.yanked or not _final(v) or not f.linux_x86_64():
            continue
        if (v.local or None) != local or Version(v.public) < first:
            continue
        out[_minor(v)].add(v)
    return {k: sorted(vs) for k, vs in sorted(out.items(), key=lambda kv: Version(kv[0]))}


def wheels_of(files: Iterable[IndexFile], version: Version) -> list[IndexFile]:
    return [f for f in files if f.version == version and not f.yanked and f.linux_x86_64()]


def pythons(wheels: Iterable[IndexFile]) -> list[str]:
    """CPython versions with a wheel, oldest first, free-threaded builds after their version."""
    found = set().union(*(w.cpython() for w in wheels)) if wheels else set()
    return sorted(found, key=lambda p: (Version(p.rstrip("t")), p.endswith("t")))


def pick(wheels: list[IndexFile]) -> IndexFile:
    """The wheel to read: the newest regular (not free-threaded) CPython one, else any."""

    def key(f: IndexFile) -> tuple[int, Version, str]:
        regular = [p for p in f.cpython() if not p.endswith("t")]
        return (1 if regular else 0, max((Version(p) for p in regular), default=Version("0")), f.filename)

    return max(wheels, key=key)


def _py_range(found: list[str]) -> tuple[str, str]:
    regular = [p for p in found if not p.endswith("t")]
    return (regular[0], regular[-1]) if regular else ("", "")


def _pin(pins: dict[str, str], *prefixes: str) -> str:
    """The pin of the first requirement whose name starts with one of ``prefixes``."""
    for prefix in prefixes:
        for name, version in sorted(pins.items()):
            if name.startswith(prefix):
                return version
    return ""


def _mm(version: str) -> str:
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else version


def _artifact(f: IndexFile, source: str, as_of: str) -> Row:
    return {"artifact": f.filename, "sha256": f.sha256, "source": source, "as_of": as_of}


# --------------------------------------------------------------------------- torch


@dataclass
class TorchFacts:
    """What one torch wheel says about itself."""

    cuda: str
    cudnn: str
    nccl: str
    cublas: str
    cuda_runtime: str
    requires_python: str
    archs: list[str] | None
    #: where each fact came from, for the row's source
    read: list[str] = field(default_factory=list)


def torch_cuda(reader: WheelReader, f: IndexFile) -> str | None:
    """The CUDA release a torch wheel was built with, major.minor, from ``torch/version.py``
    ("9.0.176" in 1.0 -> "9.0"); None for a CPU build."""
    values = literal_assignments(reader.text_member(f, "torch/version.py") or "")
    cuda = values.get("cuda")
    return _mm(cuda) if isinstance(cuda, str) and cuda else None


def torch_facts(reader: WheelReader, pypi: SimpleIndex | None, f: IndexFile, log: Log) -> TorchFacts | None:
    """CUDA from ``torch/version.py``, the nvidia-* pins from METADATA (through the ``cuda-toolkit``
    metapackage where torch pins that; before 1.13 the libraries are bundled and cuDNN comes from
    ``caffe2/core/macros.h`` where that records it), the arch list from the binary (the arch-flags
    string from 1.6, nvcc's -gencode flags in 1.2-1.5)."""
    md = reader.metadata(f)
    cuda = torch_cuda(reader, f)
    if cuda is None:
        log.problems.append(f"{f.filename}: torch/version.py names no CUDA (a CPU build)")
        return None
    read = ["METADATA", "torch/version.py"]
    pins = md.pins()
    toolkit = pins.get("cuda-toolkit", "")
    runtime = _pin(pins, "nvidia-cuda-runtime") or toolkit
    cublas = _pin(pins, "nvidia-cublas")
    if not cublas and toolkit and pypi is not None:
        cublas = _toolkit_pin(reader, pypi, toolkit, extra="cublas", name="nvidia-cublas", log=log)
    cudnn = _pin(pins, "nvidia-cudnn")
    if not cudnn:
        macros = reader.text_member_ending(f, TORCH_MACROS)
        found = re.search(r'"CUDNN_VERSION",\s*"([0-9.]+)"', macros[1]) if macros else None
        if macros and found:
            cudnn = found.group(1)
            read.append(f"cuDNN from {macros[0]}")
    flags = reader.arch_flags(f, TORCH_ARCH_LIBRARY)
    if flags is not None:
        read.append(f"arch flags in {flags[1]}")
    else:
        flags = reader.gencode_flags(f, TORCH_GENCODE_LIBRARIES)
        if flags is not None:
            read.append(f"nvcc -gencode flags in {flags[1]}")
        else:
            log.problems.append(
                f"{f.filename}: no arch-flags string in {TORCH_ARCH_LIBRARY[0]} and no -gencode flags in "
                + " or ".join(TORCH_GENCODE_LIBRARIES)
            )
    return TorchFacts(
        cuda=cuda,
        cudnn=cudnn,
        nccl=_pin(pins, "nvidia-nccl"),
        cublas=cublas,
        cuda_runtime=runtime,
        requires_python=md.requires_python or "",
        archs=flags[0] if flags else None,
        read=read,
    )


def _toolkit_pin(
    reader: WheelReader, pypi: SimpleIndex, version: str, *, extra: str, name: str, log: Log
) -> str:
    """The pin of ``name`` that the ``cuda-toolkit==version`` metapackage's ``extra`` brings."""
    files = log.index(pypi, "cuda-toolkit") or []
    wheels = [f for f in files if f.version is not None and f.version == Version(version) and f.wheel]
    if not wheels:
        log.problems.append(f"cuda-toolkit {version}: no wheel on {pypi.base}")
        return ""
    try:
        return _pin(reader.metadata(wheels[0]).pins(extra=extra), name)
    except WheelError as exc:
        log.problems.append(str(exc))
        return ""


def torch_rows(
    reader: WheelReader,
    pypi: SimpleIndex,
    variants: SimpleIndex | None,
    committed: list[Row],
    *,
    as_of: str,
    log: Log,
) -> tuple[list[Row], list[Row]]:
    """(torch_builds rows, torch_releases rows): the PyPI build of every release from 2.1 on, the
    other CUDA variants from ``variants`` (download.pytorch.org/whl/) where it can be read, and
    the committed hand rows for variants no reachable index backs."""
    files = log.index(pypi, "torch")
    if files is None:
        raise log.errors[pypi.base]
    by_minor = releases(files, TORCH_FIRST)
    built: list[Row] = []
    for minor, versions in by_minor.items():
        row = _torch_row(reader, pypi, files, versions[-1], minor, pypi_default=True, as_of=as_of, log=log)
        if row:
            row["source"] = f"PyPI {pypi.project_url('torch')}: " + row["source"]
            built.append(row)
        older_rows = _older_pypi_variants(
            reader, pypi, files, versions, newest=row, minor=minor, as_of=as_of, log=log
        )
        for older in older_rows:
            older["source"] = f"PyPI {pypi.project_url('torch')}: " + older["source"]
            built.append(older)
    variant_note = _read_variants(reader, pypi, variants, by_minor, built, as_of=as_of, log=log)
    rows = _merge_hand_rows(built, committed, variant_note, as_of=as_of)
    release_rows = []
    for minor, versions in by_minor.items():
        kinds = {
            ("artifact" if r["artifact"] else "hand")
            for r in rows
            if r["torch"] == minor and r["pypi_default"] != "1"
        }
        release_rows.append(
            {
                "release": minor,
                "newest": str(versions[-1]),
                "versions": " ".join(str(v) for v in versions),
                "other_variants": "read" if "artifact" in kinds else ("hand" if kinds else "unknown"),
                "source": f"PyPI {pypi.project_url('torch')} (final releases with x86_64 Linux wheels)",
                "as_of": as_of,
            }
        )
    return rows, release_rows


def _torch_row(
    reader: WheelReader,
    pypi: SimpleIndex | None,
    files: list[IndexFile],
    version: Version,
    minor: str,
    *,
    pypi_default: bool,
    as_of: str,
    log: Log,
) -> Row | None:
    wheels = wheels_of(files, version)
    f = pick(wheels)
    try:
        facts = torch_facts(reader, pypi, f, log)
    except WheelError as exc:
        log.problems.append(str(exc))
        return None
    if facts is None:
        return None
    log.read.append(f.filename)
    found = pythons(wheels)
    lo, hi = _py_range(found)
    what = ", ".join(facts.read)
    return {
        "torch": minor,
        "cuda": facts.cuda,
        "status": "stable",
        "cudnn": facts.cudnn,
        "nccl": facts.nccl,
        "cublas": facts.cublas,
        "cuda_runtime": facts.cuda_runtime,
        "pypi_default": "1" if pypi_default else "0",
        "python_min": lo,
        "python_max": hi,
        "pythons": " ".join(found),
        "requires_python": facts.requires_python,
        "archs": " ".join(facts.archs or []),
        "version": str(version.public),
        **_artifact(f, f"{what} of {f.filename}", as_of),
    }


def _older_pypi_variants(
    reader: WheelReader,
    pypi: SimpleIndex,
    files: list[IndexFile],
    versions: list[Version],
    *,
    newest: Row | None,
    minor: str,
    as_of: str,
    log: Log,
) -> list[Row]:
    """Rows for older patches of a release whose PyPI wheel was built for another CUDA than the
    newest patch's (only ``torch/version.py`` of each is read to find out)."""
    out: list[Row] = []
    seen = {newest["cuda"]} if newest else set()
    for v in reversed(versions[:-1]):
        try:
            cuda = torch_cuda(reader, pick(wheels_of(files, v)))
        except WheelError as exc:
            log.problems.append(str(exc))
            continue
        if cuda is None or cuda in seen:
            continue
        row = _torch_row(reader, pypi, files, v, minor, pypi_default=False, as_of=as_of, log=log)
        if row:
            seen.add(cuda)
            out.append(row)
    return out


def _read_variants(
    reader: WheelReader,
    pypi: SimpleIndex,
    variants: SimpleIndex | None,
    by_minor: dict[str, list[Version]],
    built: list[Row],
    *,
    as_of: str,
    log: Log,
) -> str:
    """Rows for the other CUDA variants (``+cu126`` ...) from PyTorch's own index, appended to
    ``built``; returns why they could not be read ("" when they were)."""
    if variants is None:
        return "no PyTorch variant index given"
    files = log.index(variants, "torch")
    if files is None:
        return f"{variants.project_url('torch')} could not be reached ({log.indexes[variants.base]})"
    tags = sorted(
        {f.version.local for f in files if f.version and f.version.local and f.version.local.startswith("cu")}
    )
    have = {(r["torch"], r["cuda"]) for r in built}
    for tag in tags:
        for minor, versions in releases(files, TORCH_FIRST, local=tag).items():
            if minor not in by_minor:
                continue
            row = _torch_row(
                reader, pypi, files, versions[-1], minor, pypi_default=False, as_of=as_of, log=log
            )
            if row and (row["torch"], row["cuda"]) not in have:
                row["source"] = f"{variants.project_url('torch')}: " + row["source"]
                built.append(row)
                have.add((row["torch"], row["cuda"]))
    return ""


def _merge_hand_rows(built: list[Row], committed: list[Row], why: str, *, as_of: str) -> list[Row]:
    """``built`` plus every committed row no artifact replaced, marked as unverified when the
    index that would back it was not read."""
    have = {(r["torch"], r["cuda"]) for r in built}
    released = {r["torch"] for r in built}
    labels = {(r["torch"], r["cuda"]): r.get("status", "") for r in committed}
    pypi_rows = {r["torch"]: r for r in built if r["pypi_default"] == "1"}
    out = []
    for r in built:  # "stable"/"experimental" is PyTorch's label (RELEASE.md), not in the wheel
        out.append({**r, "status": labels.get((r["torch"], r["cuda"])) or r["status"]})
    for r in committed:
        if (r["torch"], r["cuda"]) in have or r.get("artifact"):
            continue  # replaced by the artifact, or an artifact row this run did not reproduce
        if r["torch"] not in released:
            continue  # no longer on the index: not a release any more
        row = dict(r)
        row["pypi_default"] = "0"
        same = pypi_rows.get(row["torch"])
        if same is not None and (row["python_min"], row["python_max"]) != (
            same["python_min"],
            same["python_max"],
        ):
            # one release is built for one set of Pythons; the PyPI wheel shows which
            base = re.split(r";\s*Python range from ", row["source"])[0]
            row["source"] = f"{base}; Python range from {same['artifact']} (same release)"
        if same is not None:
            row.update(python_min=same["python_min"], python_max=same["python_max"], pythons=same["pythons"])
        if why:
            base = re.split(r";\s*" + UNVERIFIED, row["source"])[0]
            row["source"] = f"{base}; {UNVERIFIED}: {why} on {as_of}"
        out.append(row)
    return sorted(out, key=lambda r: (Version(r["torch"]), Version(r["cuda"])))


# --------------------------------------------------------------------------- torch companions


def companion_rows(reader: WheelReader, pypi: SimpleIndex, *, as_of: str, log: Log) -> list[Row]:
    """torch version -> the torchvision and torchaudio releases that pin it (their METADATA)."""
    table: dict[str, Row] = {}
    for project, first in (("torchvision", TORCHVISION_FIRST), ("torchaudio", TORCHAUDIO_FIRST)):
        files = log.index(pypi, project) or []
        for versions in releases(files, first).values():
            for v in versions:
                f = pick(wheels_of(files, v))
                try:
                    torch = reader.metadata(f).pins().get("torch")
                except WheelError as exc:
                    log.problems.append(str(exc))
                    continue
                if not torch:
                    log.problems.append(f"{f.filename}: METADATA pins no torch version")
                    continue
                row = table.setdefault(
                    torch,
                    {
                        "torch": torch,
                        "torchvision": "",
                        "torchvision_artifact": "",
                        "torchaudio": "",
                        "torchaudio_artifact": "",
                    },
                )
                row[project] = str(v)
                row[f"{project}_artifact"] = f"{f.filename}@sha256:{f.sha256}"
    out = []
    for torch, row in sorted(table.items(), key=lambda kv: Version(kv[0])):
        read = [p for p in ("torchvision", "torchaudio") if row[p]]
        row["source"] = f"PyPI: Requires-Dist torch=={torch} in the METADATA of " + " and ".join(read)
        row["as_of"] = as_of
        out.append(row)
    return out


# --------------------------------------------------------------------------- tensorflow


@dataclass(frozen=True)
class TfFacts:
    """What one TensorFlow GPU wheel says about its build."""

    cuda: str
    #: the cuDNN TF names: "8" (major only, build_info/cuda_config) or the and-cuda floor
    cudnn: str
    archs: tuple[str, ...]
    #: the files they were read from (not part of the facts: 1.x paths name the patch)
    read: tuple[str, ...] = field(compare=False)


def tf_facts(reader: WheelReader, f: IndexFile) -> TfFacts | None:
    """CUDA, cuDNN and arch list of a TensorFlow wheel: ``build_info.py`` (2.3 on), else the
    ``cuda_config.h`` bazel generated (1.5-2.2). None for a CPU build or a wheel that records neither."""
    found = reader.text_member_ending(f, TF_BUILD_INFO)
    info = _build_info(found[1]) if found else {}
    if info.get("is_cuda_build") is False:
        return None
    caps = info.get("cuda_compute_capabilities")
    if info.get("cuda_version") and isinstance(caps, (list, tuple)) and found:
        codes = archs.sort_codes([str(c) for c in caps])
        return TfFacts(str(info["cuda_version"]), str(info.get("cudnn_version") or ""), codes, (found[0],))
    config = reader.text_member_ending(f, TF_CUDA_CONFIG)
    if config is None:
        return None
    text = config[1]
    cuda = re.search(r'#define TF_CUDA_VERSION "([0-9.]+)"', text)
    cudnn = re.search(r'#define TF_CUDNN_VERSION "([0-9.]+)"', text)
    caps_line = re.search(r"#define TF_CUDA_CAPABILITIES (.*)", text)
    if not cuda:
        return None
    # each listed capability X.Y is compiled as SASS and PTX (TF's nvcc crosstool wrapper passes
    # -gencode=arch=compute_XY,"code=sm_XY,compute_XY" for every entry)
    ccs = re.findall(r"(\d+)\.(\d+)", caps_line.group(1)) if caps_line else []
    codes = archs.sort_codes([f"{k}_{a}{b}" for a, b in ccs for k in ("sm", "compute")])
    return TfFacts(cuda.group(1), cudnn.group(1) if cudnn else "", codes, (config[0],))


def tensorflow_rows(
    reader: WheelReader, pypi: SimpleIndex, *, as_of: str, log: Log, tested: Iterable[Row] = ()
) -> list[Row]:
    """Every TensorFlow GPU build on PyPI from 1.5 on (``tensorflow-gpu`` before 2.1): the CUDA
    and cuDNN it was built with and its compiled arch list (``build_info.py`` / ``cuda_config.h``),
    the and-cuda pins (METADATA), its Pythons. A row stands for the newest patch of a release and
    lists every patch built the same way; an older patch built differently (tensorflow-gpu 1.12.3 is
    compiled for 3.7 only) gets its own row. ``tested`` (TensorFlow's tested build configurations)
    adds the cuDNN minor the wheels do not record."""
    files = log.index(pypi, "tensorflow")
    if files is None:
        raise log.errors[pypi.base]
    gpu_files = log.index(pypi, "tensorflow-gpu", optional=True) or []
    by_minor = {
        m: ("tensorflow-gpu", gpu_files, vs)
        for m, vs in releases(gpu_files, TENSORFLOW_FIRST).items()
        if Version(m) < TENSORFLOW_GPU_PROJECT_BEFORE
    }
    by_minor |= {
        m: ("tensorflow", files, vs)
        for m, vs in releases(files, TENSORFLOW_FIRST).items()
        if Version(m) >= TENSORFLOW_GPU_PROJECT_BEFORE
    }
    hand = {r["release"]: r for r in tested}
    out = []
    for minor, (project, pfiles, versions) in sorted(by_minor.items(), key=lambda kv: Version(kv[0])):
        groups: list[tuple[TfFacts, list[Version], IndexFile]] = []
        for v in reversed(versions):  # newest first: a row is keyed by the newest patch built its way
            f = pick(wheels_of(pfiles, v))
            try:
                facts = tf_facts(reader, f)
            except WheelError as exc:
                log.problems.append(str(exc))
                continue
            if facts is None:
                log.problems.append(f"{f.filename}: no CUDA in {TF_BUILD_INFO[0]} or {TF_CUDA_CONFIG[0]}")
                continue
            if groups and groups[-1][0] == facts:
                groups[-1][1].append(v)
            else:
                groups.append((facts, [v], f))
        for facts, patches, f in groups:
            row = _tf_row(
                reader,
                pypi,
                project,
                pfiles,
                facts=facts,
                patches=patches,
                f=f,
                tested=hand.get(minor),
                as_of=as_of,
                log=log,
            )
            if row:
                out.append(row)
    return sorted(out, key=lambda r: Version(r["tensorflow"]))


def _tf_row(
    reader: WheelReader,
    pypi: SimpleIndex,
    project: str,
    files: list[IndexFile],
    *,
    facts: TfFacts,
    patches: list[Version],
    f: IndexFile,
    tested: Row | None,
    as_of: str,
    log: Log,
) -> Row | None:
    try:
        md = reader.metadata(f)
    except WheelError as exc:
        log.problems.append(str(exc))
        return None
    log.read.append(f.filename)
    wheels = wheels_of(files, patches[0])
    pins = md.floors(extra="and-cuda")
    found = pythons(wheels)
    lo, hi = _py_range(found)
    cudnn = _pin(pins, "nvidia-cudnn")
    source = f"PyPI {pypi.project_url(project)}: METADATA and {', '.join(facts.read)} of {f.filename}"
    if not cudnn and tested and tested["cudnn"].split(".")[0] == facts.cudnn.split(".")[0] and facts.cudnn:
        cudnn = tested["cudnn"]
        source += f"; cuDNN {cudnn} from {tested['source']}"
    elif not cudnn:
        cudnn = facts.cudnn
    if tested and _mm(facts.cuda) != _mm(tested["cuda"]) and not facts.cuda.startswith(tested["cuda"] + "."):
        log.problems.append(
            f"{f.filename}: built with CUDA {facts.cuda}, TensorFlow's tested configurations say "
            f"{tested['cuda']} (the wheel wins)"
        )
    if len(patches) > 1:
        source += f"; {', '.join(str(v) for v in sorted(patches)[:-1])} built the same way"
    return {
        "tensorflow": str(patches[0]),
        "package": project,
        "versions": " ".join(str(v) for v in sorted(patches)),
        "cuda": _mm(facts.cuda),
        "cuda_build": facts.cuda,
        "cudnn": cudnn,
        "nccl": _pin(pins, "nvidia-nccl"),
        "cublas": _pin(pins, "nvidia-cublas"),
        "cuda_runtime": _pin(pins, "nvidia-cuda-runtime"),
        "python_min": lo,
        "python_max": hi,
        "pythons": " ".join(found),
        "requires_python": md.requires_python or "",
        "archs": " ".join(facts.archs),
        "and_cuda": "1" if _has_extra(md, "and-cuda") else "0",
        **_artifact(f, source, as_of),
    }


def _build_info(source: str) -> dict[str, object]:
    values = literal_assignments(source)
    info = values.get("build_info")
    out = dict(info) if isinstance(info, dict) else {}
    out.update({k: v for k, v in values.items() if k != "build_info"})
    return out


def _has_extra(md: Metadata, extra: str) -> bool:
    return any(re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", line) for line in md.requires_dist)


# --------------------------------------------------------------------------- jax


def jax_rows(
    reader: WheelReader, pypi: SimpleIndex, committed: list[Row], *, as_of: str, log: Log
) -> tuple[list[Row], list[Row]]:
    """(jax_cuda rows, jax_releases rows): per CUDA extra the plugin versions, cuDNN and Pythons
    of its newest wheel (driver floor and lowest GPU stay hand facts); per jax release its
    Requires-Python and which CUDA plugins exist at that version."""
    jax_files = log.index(pypi, "jax")
    if jax_files is None:
        raise log.errors[pypi.base]
    plugin_versions: dict[str, set[Version]] = {}
    cuda_rows = []
    for hand in committed:
        extra = hand["extra"]
        project = f"jax-{extra}-plugin"
        files = log.index(pypi, project) or []
        versions = sorted({v for vs in releases(files, JAX_FIRST).values() for v in vs})
        plugin_versions[extra] = set(versions)
        row = dict(hand)
        if not versions:
            log.problems.append(f"{project}: no release on {pypi.base}")
            cuda_rows.append(row)
            continue
        wheels = wheels_of(files, versions[-1])
        f = pick(wheels)
        try:
            md = reader.metadata(f)
        except WheelError as exc:
            log.problems.append(str(exc))
            cuda_rows.append(row)
            continue
        log.read.append(f.filename)
        lo, hi = _py_range(pythons(wheels))
        specs = md.specs(extra="with-cuda")
        hand_source = re.split(r";\s*versions, cuDNN and Pythons read from", hand["source"])[0]
        row.update(
            {
                "first_jax": str(versions[0]),
                "last_jax": str(versions[-1]),
                "cudnn": next((s for n, s in sorted(specs.items()) if n.startswith("nvidia-cudnn")), ""),
                "python_min": lo,
                "python_max": hi,
                "artifact": f.filename,
                "sha256": f.sha256,
                "source": f"{hand_source}; versions, cuDNN and Pythons read from {f.filename} "
                f"and the {project} file list on PyPI",
                "as_of": as_of,
            }
        )
        cuda_rows.append(row)
    release_rows = []
    for versions in releases(jax_files, JAX_FIRST).values():
        for v in versions:
            wheels = [f for f in jax_files if f.version == v and f.wheel and not f.yanked]
            if not wheels:
                continue
            release_rows.append(
                {
                    "jax": str(v),
                    "requires_python": wheels[0].requires_python or "",
                    **{extra: "1" if v in vs else "0" for extra, vs in sorted(plugin_versions.items())},
                    "artifact": wheels[0].filename,
                    "sha256": wheels[0].sha256,
                    "source": f"PyPI {pypi.project_url('jax')} (Requires-Python of the wheel) and the "
                    + ", ".join(f"jax-{e}-plugin" for e in sorted(plugin_versions))
                    + " file lists",
                    "as_of": as_of,
                }
            )
    return cuda_rows, release_rows
