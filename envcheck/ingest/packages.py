"""Package lists people paste: ``pip freeze``, ``pip list`` (whole or grepped), ``conda list`` and
collect_env's ``[pip3] torch==2.5.1`` / ``[conda] pytorch 1.3.0 py3.7_cuda10.1.243_cudnn7.6.3_0``.

The versions name the frameworks and how they were built: a local tag (``+cu121``, ``+cpu``), a
conda build string (``cuda10.1.243_cudnn7.6.3``), ``tensorflow-gpu``/``-cpu``, ``jaxlib`` tags and
``jax-cuda12-plugin``; every ``nvidia-*`` wheel is listed as such. conda's transaction plan ("The
following NEW packages will be INSTALLED:", rows like ``pytorch/win-64::pytorch-1.10.0-py3.6_cpu_0``)
is a package list too, and its platform subdir names the OS.

A conda list or plan holding a CPU pytorch beside ``cudatoolkit``/``pytorch-cuda`` (installed or asked
for) states a contradiction of its own: the solver fell back to the CPU build because no CUDA build
fits the request. It is reported as a ``conda-cpu-build`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envcheck.ingest._partial import Partial, strip_bullet, torch_local
from envcheck.ingest._text import Doc, Line
from envcheck.models import Framework, FrameworkDevices, FrameworksInfo, PastedLine, Snapshot, SystemInfo

__all__ = ["Package", "bracket_packages", "frameworks_from", "read"]

#: companion packages of torch that are worth showing next to it
TORCH_COMPANIONS = ("torchvision", "torchaudio", "torchtext", "torchdata", "triton",
                    "pytorch-triton", "pytorch-triton-rocm", "pytorch-triton-xpu")  # fmt: skip
_INTERESTING = re.compile(
    r"^(torch|pytorch|torchvision|torchaudio|triton|tensorflow|tf-nightly|jax|jaxlib|nvidia-|vllm|"
    r"transformers|accelerate|diffusers|flash[-_]attn|xformers|onnxruntime|cupy|cudatoolkit|cudnn|"
    r"cuda-|pytorch-cuda|keras|numpy)",
    re.IGNORECASE,
)
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
_VER = r"\d[\w.+!\-]*"
_FREEZE = re.compile(rf"^({_NAME})\s*==\s*({_VER})$")
_COLUMNS = re.compile(rf"^({_NAME})\s+({_VER})(?:\s+(\S+))?(?:\s+(\S+))?\s*$")
_BRACKET = re.compile(r"^\s*\[(pip\d?|conda)\]\s+(.*)$")
#: ``conda list --export`` and ``conda env export``: "pytorch=1.9.0=py3.8_cpu_0"
_EXPORT = re.compile(rf"^({_NAME})=({_VER})=(\S+)$")
#: conda's plan: "The following NEW packages will be INSTALLED:" (or UPDATED, DOWNGRADED, SUPERSEDED ...)
_PLAN = re.compile(r"^The following (?:NEW )?packages will be (?:INSTALLED|UPDATED|DOWNGRADED|SUPERSEDED)")
#: "pytorch   pytorch/win-64::pytorch-1.10.0-py3.6_cpu_0", or an update's "old --> channel::new"
_PLAN_ROW = re.compile(
    r"^(?P<short>[\w.-]+)\s+(?:\S+\s+-->\s+)?(?:(?P<channel>[\w.-]+)(?:/(?P<subdir>[\w-]+))?::)?"
    r"(?P<spec>[\w.-]+-\d[\w.!+]*-[\w.]+)\s*$"
)
_SPEC = re.compile(r"^\s*-\s+(?P<name>[\w.-]+)\s*(?:[=<>!~]|$)")
_SUBDIR_OS = {"win": "Windows", "linux": "Linux", "osx": "Darwin"}
#: conda packages that bring the CUDA runtime: asking for them means a CUDA build was wanted
_CUDA_PACKAGES = ("cudatoolkit", "pytorch-cuda", "cuda-toolkit", "cuda-runtime")


@dataclass
class Package:
    manager: str  # "pip" or "conda"
    name: str
    version: str
    build: str | None = None
    channel: str | None = None


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def bracket_packages(lines: list[str]) -> list[Package]:
    """collect_env's ``[pip3] name==version`` and ``[conda] name version build channel`` lines."""
    out: list[Package] = []
    for line in lines:
        m = _BRACKET.match(line)
        if not m:
            continue
        rest = m.group(2).strip()
        if m.group(1) != "conda":
            pm = _FREEZE.match(rest)
            if pm:
                out.append(Package("pip", _norm(pm.group(1)), pm.group(2)))
            continue
        parts = rest.split()
        if len(parts) >= 2 and parts[0].lower() != "could" and parts[1][:1].isdigit():
            out.append(Package("conda", _norm(parts[0]), parts[1],
                               parts[2] if len(parts) > 2 else None,
                               parts[3] if len(parts) > 3 else None))  # fmt: skip
    return out


def pip_collected(lines: list[str]) -> bool:
    """True when collect_env's pip list ran (so a package missing from it is really missing)."""
    pip = [ln for ln in lines if re.match(r"^\s*\[pip\d?\]", ln)]
    return bool(pip) and not any("Could not collect" in ln for ln in pip)


def _package(packages: list[Package], *names: str) -> Package | None:
    """The pip entry for the first of ``names`` found, else the conda one."""
    for manager in ("pip", "conda"):
        for name in names:
            hit = next((p for p in packages if p.manager == manager and p.name == name), None)
            if hit:
                return hit
    return None


def _torch(packages: list[Package]) -> Framework | None:
    pkg = _package(packages, "torch", "pytorch")
    if pkg is None:
        return None
    plugins = {n: c.version for n in TORCH_COMPANIONS if (c := _package(packages, n)) is not None}
    build, cuda, rocm = torch_local(pkg.version)
    conda_build = (pkg.build or "").lower() if pkg.manager == "conda" else ""
    if build is None and (
        cm := re.search(r"cuda_?(\d+)\.?(\d)", conda_build)
    ):  # py3.7_cuda10.1.243_cudnn7.6.3_0
        build, cuda = "cuda", f"{cm.group(1)}.{cm.group(2)}"
    elif build is None and "cpu" in conda_build:
        build = "cpu"
    cudnn = dm.group(1) if (dm := re.search(r"cudnn(\d+(?:\.\d+)*)", conda_build)) else None
    return Framework(name="torch", installed=True, distribution="torch", version=pkg.version, build=build,
                     cuda_build=cuda, cudnn_build=cudnn, rocm_build=rocm, plugins=plugins)  # fmt: skip


def _tensorflow(packages: list[Package]) -> Framework | None:
    for dist in ("tensorflow-gpu", "tensorflow-cpu", "tensorflow", "tf-nightly-gpu", "tf-nightly"):
        pkg = _package(packages, dist)
        if pkg is None:
            continue
        build = "cuda" if dist.endswith("-gpu") else ("cpu" if dist.endswith("-cpu") else None)
        return Framework(
            name="tensorflow", installed=True, distribution=dist, version=pkg.version, build=build
        )
    return None


def _jax(packages: list[Package]) -> Framework | None:
    jax, jaxlib = _package(packages, "jax"), _package(packages, "jaxlib")
    plugins = {p.name: p.version for p in packages if p.name.startswith(("jax-cuda", "jax-rocm", "libtpu"))}
    if jax is None and jaxlib is None:
        return None
    build = cuda = cudnn = None
    local = jaxlib.version.partition("+")[2].lower() if jaxlib else ""
    if m := re.match(r"cuda(\d+)(?:\.cudnn(\d)(\d+))?", local):
        build, cuda = "cuda", m.group(1)
        cudnn = f"{m.group(2)}.{m.group(3)}" if m.group(2) else None
    elif pm := next((re.match(r"jax-cuda(\d+)-", n) for n in plugins if n.startswith("jax-cuda")), None):
        build, cuda = "cuda", pm.group(1)
    found = jax if jax is not None else jaxlib
    version = found.version if found is not None else None
    return Framework(name="jax", installed=True, distribution="jax", version=version, build=build,
                     cuda_build=cuda, cudnn_build=cudnn, plugins=plugins)  # fmt: skip


def frameworks_from(packages: list[Package]) -> FrameworksInfo | None:
    """The frameworks and nvidia-* wheels a package list names (None when it names none)."""
    fws = [f for f in (_torch(packages), _tensorflow(packages), _jax(packages)) if f is not None]
    wheels = {
        p.name: p.version
        for p in packages
        if p.name.startswith("nvidia-") and (p.manager == "pip" or p.channel == "pypi")
    }
    if not fws and not wheels:
        return None
    return FrameworksInfo(frameworks=fws, nvidia_wheels=wheels or None)


# --------------------------------------------------------------------------- standalone lists


def _rows(doc: Doc, start: int, pattern: re.Pattern[str], manager: str) -> tuple[list[Package], int]:
    """Consecutive rows from ``start`` that match ``pattern``; returns them and the index after."""
    out: list[Package] = []
    i = start
    while i < len(doc.lines):
        text = strip_bullet(doc.lines[i].text).strip().strip("`")
        if not text:
            break
        m = pattern.match(text)
        if not m:
            if " @ " in text or text.startswith("-e "):  # pip freeze's "name @ file:///..." rows
                i += 1
                continue
            break
        extra = [*m.groups()[2:], None, None]  # the build and the channel, for the formats that have them
        out.append(Package(manager, _norm(m.group(1)), m.group(2), extra[0], extra[1]))
        i += 1
    return out, i


def _next(lines: list[Line], i: int) -> str:
    """The text of the line after ``i`` as a list row would be read."""
    return strip_bullet(lines[i + 1].text).strip().strip("`") if i + 1 < len(lines) else ""


def read(doc: Doc) -> list[Partial]:
    """Every pip/conda package list in ``doc`` (not collect_env's bracketed ones: collect_env reads those)."""
    out: list[Partial] = []
    i = 0
    lines = doc.lines
    while i < len(lines):
        text = strip_bullet(lines[i].text).strip().strip("`")
        kind: str | None = None
        packages: list[Package] = []
        end = i + 1
        if re.match(r"^#\s*packages in environment at", text):
            j = i + 1
            while j < len(lines) and lines[j].text.strip().startswith("#"):
                j += 1
            packages, end = _rows(doc, j, _COLUMNS, "conda")
            kind = "conda-list"
        elif re.match(r"^Package\s+Version(\s+\S+)*\s*$", text):
            j = i + 1
            if j < len(lines) and re.match(r"^-{3,}\s+-{3,}", lines[j].text.strip()):
                j += 1
            packages, end = _rows(doc, j, _COLUMNS, "pip")
            kind = "pip-list"
        elif (m0 := _EXPORT.match(text)) and (
            _INTERESTING.match(m0.group(1)) or _EXPORT.match(_next(lines, i))
        ):
            packages, end = _rows(doc, i, _EXPORT, "conda")
            kind = "conda-list"
        elif _PLAN.match(text):
            out.extend(_plan(doc, i))
            i += 1
            continue
        elif _FREEZE.match(text):
            packages, end = _rows(doc, i, _FREEZE, "pip")
            if len(packages) < 2 and not any(_INTERESTING.match(p.name) for p in packages):
                packages = []
            kind = "pip-freeze"
        elif (m := _COLUMNS.match(text)) and m.group(3) is not None and _after_conda_list(doc, i):
            packages, end = _rows(doc, i, _COLUMNS, "conda")  # `conda list | grep torch`: no header
            kind = "conda-list"
        elif (m := _COLUMNS.match(text)) and _INTERESTING.match(m.group(1)) and m.group(3) is None:
            packages, end = _rows(doc, i, _COLUMNS, "pip")  # `pip list | grep nvidia`
            packages = [p for p in packages if _INTERESTING.match(p.name)]
            if len(packages) < 2:
                packages = []
            kind = "pip-list"
        if kind and packages:
            for p in packages:
                if p.manager == "conda" and p.build == "pypi_0":
                    p.channel = p.channel or "pypi"
            fw = frameworks_from(packages)
            snap = Snapshot(frameworks=fw) if fw is not None else Snapshot()
            rows = lines[i:end]
            specs = _specs_before(lines, i) if kind == "conda-list" else set()
            out.append(Partial(kind, snap, lines[i].no, lines=_cpu_beside_cuda(packages, specs, rows)))
            i = max(end, i + 1)
            continue
        i += 1
    return out


def _after_conda_list(doc: Doc, i: int) -> bool:
    """Line ``i`` follows a ``conda list`` (``mamba``/``micromamba`` too, maybe piped to grep) typed at a
    shell prompt, with nothing but blank lines or fences between: its rows are conda's, header or not."""
    for idx, command in reversed(doc.commands):
        if idx >= i:
            continue
        between = (doc.lines[k].text.strip().strip("`") for k in range(idx + 1, i))
        return bool(re.match(r"(?:conda|mamba|micromamba)\s+list\b", command.strip())) and not any(between)
    return False


def _specs_before(lines: list[Line], start: int) -> set[str]:
    """The packages an ``environment.yml`` or a ``- name=version`` spec list above ``start`` asks for."""
    return {_norm(m.group("name")) for ln in lines[max(0, start - 40) : start] if (m := _SPEC.match(ln.text))}


def _plan(doc: Doc, start: int) -> list[Partial]:
    """conda's plan from its header at ``start``: the rows under it (skipping "......" a user put for
    rows left out), the specs asked for above it, and the OS its subdirs name."""
    lines = doc.lines
    packages: list[Package] = []
    subdirs: set[str] = set()
    j = start + 1
    while j < len(lines) and j < start + 2000:
        text = lines[j].text.strip()
        if m := _PLAN_ROW.match(text):
            name, version, build = m.group("spec").rsplit("-", 2)
            packages.append(Package("conda", _norm(name), version, build, m.group("channel")))
            if m.group("subdir"):
                subdirs.add(m.group("subdir").split("-", 1)[0])
        elif text and not set(text) <= {".", "…"} and not _PLAN.match(text):
            break
        j += 1
    specs = _specs_before(lines, start)
    if not packages:
        return []
    fw = frameworks_from(packages)
    os_name = _SUBDIR_OS.get(next(iter(subdirs))) if len(subdirs - {"noarch"}) == 1 else None
    if os_name is None and len(subdirs) > 1:
        os_name = next((_SUBDIR_OS[d] for d in subdirs if d in _SUBDIR_OS), None)
    snap = Snapshot(frameworks=fw, system=SystemInfo(os=os_name) if os_name else None)
    rows = lines[start:j]
    return [Partial("conda-list", snap, lines[start].no, lines=_cpu_beside_cuda(packages, specs, rows))]


def _cpu_beside_cuda(packages: list[Package], specs: set[str], rows: list[Line]) -> list[PastedLine]:
    """A ``conda-cpu-build`` line (the pytorch row) when conda holds a CPU pytorch beside a CUDA runtime
    package, installed or asked for."""
    torch = next((p for p in packages if p.manager == "conda" and p.name in ("pytorch", "torch")), None)
    if torch is None or not torch.build or "cpu" not in torch.build.lower():
        return []
    wanted = sorted({p.name for p in packages if p.name in _CUDA_PACKAGES} | (specs & set(_CUDA_PACKAGES)))
    row = next((ln for ln in rows if torch.build in ln.text and "torch" in ln.text), None)
    if not wanted or row is None:
        return []
    text = " ".join(row.text.split())
    return [PastedLine(kind="conda-cpu-build", text=text, values={"cuda_package": wanted[0]}, line=row.no)]


def available(fw: Framework, flag: bool | None) -> Framework:
    """``fw`` with what a dump says about whether it sees a GPU (``PyTorch version (GPU?): ... (True)``)."""
    if flag is None:
        return fw
    return fw.model_copy(update={"deep": FrameworkDevices(ok=True, gpu_available=flag)})
