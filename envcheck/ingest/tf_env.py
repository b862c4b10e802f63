"""TensorFlow's ways of describing itself in a bug report.

* ``tools/tf_env_collect.sh`` output (``tf_env.txt``): ``== check python ===`` sections,
  ``tf.version.VERSION = 2.4.1``, ``LD_LIBRARY_PATH ...``, the ``== cuda libs ==`` file list
  (its nvidia-smi and pip sections are read by those recognisers);
* ``tf.sysconfig.get_build_info()`` printed as a dict or a pprinted OrderedDict;
* the issue template, as ``### Tensorflow Version`` headings or ``- TensorFlow version: ...``
  bullets (the user's own "CUDA/cuDNN version" and "GPU model" lines are claims about what they
  installed, not facts about the build: the CUDA/cuDNN answer is kept apart, as a claim, in
  PasteInfo.stated_cuda);
* TensorFlow's start-up log: "Found device 0 with properties ... computeCapability: 6.1",
  "Created device ... name: NVIDIA GeForce RTX 3090, ... compute capability: 8.6", XLA's
  "StreamExecutor device (0): Tesla T4, Compute Capability 7.5", "Successfully opened dynamic
  library libcudart.so.10.1". These prove a CUDA build that saw the GPU.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, is_nvidia_name, platform_system, python_env, strip_bullet
from envcheck.ingest._text import Doc
from envcheck.models import (
    CudaInfo,
    CudaLibrary,
    Framework,
    FrameworksInfo,
    Gpu,
    NvidiaInfo,
    Snapshot,
    SystemInfo,
)

__all__ = ["read"]

_SECTION = re.compile(r"^==\s*(?P<title>[a-z][a-z +/-]*?)\s*=+\s*$", re.IGNORECASE)
_TF_VERSION = re.compile(r"^tf\.(?:version\.)?VERSION\s*=\s*(?P<v>\d\S*)")
_BUILD_KEY = re.compile(
    r"['\"](?P<key>cuda_version|cudnn_version|is_cuda_build|is_rocm_build|cuda_compute_capabilities)['\"]"
    r"\s*[:,]\s*(?P<value>\[[^\]]*\]?|'[^']*'|\"[^\"]*\"|True|False)"
)
_TEMPLATE_KEY = re.compile(
    r"^(?:#{2,4}\s*)?\**\s*(?P<key>tensorflow version|tf "
    r"version)(?!\s*\(gpu)\b[^:]*?:?\**\s*:?\s*(?P<value>.*)$",
    re.I,
)
#: "CUDA/cuDNN version", "### CUDA/cuDNN version", "**CUDA/cuDNN version**:"
_CUDA_FIELD = re.compile(
    r"^(?:#{2,4}\s*)?\**\s*CUDA\s*/\s*cuDNN version\b[^:]*?:?\**\s*:?\s*(?P<value>.*)$", re.I
)
_STATED_VERSION = re.compile(r"(?<![\d.])\d{1,3}\.\d+(?:\.\d+)*")
_NAMED_VERSION = re.compile(
    r"\b(?P<lib>cuda|cudnn)\W{0,3}(?:version\W{0,3})?v?(?P<v>\d{1,2}\.\d+(?:\.\d+)*)", re.I
)
_TF_VERSION_VALUE = re.compile(r"(?<![\d.])(\d{1,4}\.\d+(?:\.\d+)?(?:[.-]?(?:dev|rc)\d*)?)")
#: TF 1.x "name: GRID K520" / "major: 3 minor: 0"; TF 2.0-2.4 "name: ... computeCapability: 6.1"
_FOUND_DEVICE = re.compile(r"Found device (?P<idx>\d+) with properties")
_NAME_CC = re.compile(r"name: (?P<name>.+?)\s+computeCapability: (?P<cc>\d+\.\d+)")
_NAME_ONLY = re.compile(r"^\s*name: (?P<name>.+?)\s*$")
_MAJOR_MINOR = re.compile(r"major: (?P<major>\d+) minor: (?P<minor>\d+)")
_CREATED = re.compile(
    r"Created (?:TensorFlow )?device .*?GPU:(?P<idx>\d+).*?name: (?P<name>[^,]+),.*?compute capability: "
    r"(?P<cc>\d+\.\d+)"
)
_XLA_DEVICE = re.compile(
    r"StreamExecutor device \((?P<idx>\d+)\): (?P<name>[^,]+), Compute Capability (?P<cc>\d+\.\d+)"
)
_OPENED = re.compile(
    r"(?:Successfully opened dynamic library|successfully opened CUDA library) (?P<lib>lib[\w.+-]+\.so[\w.]*)"
)
_CUDA_LIB_FILE = re.compile(r"^\s*(?P<path>/\S*/(?P<base>libcudart\.so\.(?P<v>\d+(?:\.\d+)+)))\s*$")


def read(doc: Doc) -> list[Partial]:
    return [p for p in (_env_collect(doc), _build_info(doc), _template(doc), _log(doc)) if p is not None]


def _tf(version: str | None = None, **more: object) -> FrameworksInfo:
    return FrameworksInfo(frameworks=[Framework(name="tensorflow", installed=True, version=version, **more)])  # type: ignore[arg-type]


def _env_collect(doc: Doc) -> Partial | None:
    sections = [
        (i, m.group("title").lower())
        for i, ln in enumerate(doc.lines)
        if (m := _SECTION.match(ln.text.strip()))
    ]
    titles = {t for _, t in sections}
    if not ({"check python", "tensorflow import", "check pips", "cuda libs"} & titles) or len(sections) < 2:
        return None
    version = None
    env: dict[str, str] = {}
    libs: list[CudaLibrary] = []
    system: SystemInfo | None = None
    python = None
    for ln in doc.lines:
        text = ln.text.strip()
        if m := _TF_VERSION.match(text):
            version = version or m.group("v")
        elif m2 := re.match(r"^(LD_LIBRARY_PATH|DYLD_LIBRARY_PATH) (?P<v>\S.*)$", text):
            if m2.group("v").strip() != "is unset":  # the script's words for an unset variable
                env[m2.group(1)] = m2.group("v").strip()
        elif m5 := re.match(r"^python version: (?P<v>\d\S*)", text):
            python = python or python_env(m5.group("v"))
        elif m3 := re.match(r"^os platform: (?P<p>\S+)", text):
            system = platform_system(m3.group("p"))
        elif m4 := _CUDA_LIB_FILE.match(text):
            libs.append(
                CudaLibrary(
                    name="cudart",
                    soname=m4.group("base"),
                    path=m4.group("path"),
                    version=m4.group("v"),
                    origin="toolkit",
                )
            )
    if env or python:
        system = (system or SystemInfo()).model_copy(update={"env": env, "python": python})
    snap = Snapshot(
        system=system,
        cuda=CudaInfo(libraries=libs) if libs else None,
        frameworks=_tf(version) if version else None,
    )
    return Partial("tf-env-collect", snap, doc.lines[sections[0][0]].no)


def _build_info(doc: Doc) -> Partial | None:
    if "cuda_version" not in doc.text and "is_cuda_build" not in doc.text:
        return None
    values: dict[str, str] = {}
    first = None
    for m in _BUILD_KEY.finditer(doc.text):
        values.setdefault(m.group("key"), m.group("value"))
        first = first if first is not None else m.start()
    if first is None:
        return None
    if "cuda_compute_capabilities" in doc.text and "cuda_compute_capabilities" not in values:
        # pprint puts the list on the following lines
        at = doc.text.index("cuda_compute_capabilities")
        values["cuda_compute_capabilities"] = doc.text[at : at + 400].split("]", 1)[0]
    cuda = values.get("cuda_version", "").strip("'\"") or None
    cudnn = values.get("cudnn_version", "").strip("'\"") or None
    archs = re.findall(r"(?:sm|compute)_\d+[a-z]?", values.get("cuda_compute_capabilities", ""))
    is_cuda = values.get("is_cuda_build")
    build = (
        "cuda" if is_cuda == "True" or cuda else ("rocm" if values.get("is_rocm_build") == "True" else None)
    )
    if is_cuda == "False" and build is None:
        build = "cpu"
    fw = _tf(None, build=build, cuda_build=cuda, cudnn_build=cudnn, arch_list=archs or None)
    return Partial("tf-build-info", Snapshot(frameworks=fw), doc.line_no(first) or 1)


def _field(doc: Doc, i: int, value: str) -> str:
    """A template field's value: on its own line, or on the lines after a "### Heading"."""
    j = i + 1
    while not value and j < len(doc.lines) and j <= i + 3:
        value = doc.lines[j].text.strip()
        j += 1
    return value


def _stated_cuda(doc: Doc) -> tuple[str | None, str | None]:
    """The template's "CUDA/cuDNN version" answer ("11.8/8.6", "10.2.89", "CUDA 11.2, cuDNN 8.1"): what
    the user says is installed, kept as a claim (PasteInfo.stated_cuda), never as a library listing."""
    for i, ln in enumerate(doc.lines):
        text = strip_bullet(ln.text).strip()
        if (m := _CUDA_FIELD.match(text)) is None:
            continue
        value = _field(doc, i, m.group("value").strip())
        named = {m.group("lib").lower(): m.group("v") for m in _NAMED_VERSION.finditer(value)}
        found = [vm.group(0) for vm in _STATED_VERSION.finditer(value)]  # the field's order: CUDA/cuDNN
        cuda = named.get("cuda") or (found[0] if found else None)
        cudnn = named.get("cudnn") or next((v for v in found[1:] if v != cuda), None)
        if cuda and not 7 <= int(cuda.split(".")[0]) <= 13:
            cuda = None  # not a CUDA release ("2.4", a driver "535.54")
        return cuda, cudnn
    return None, None


def _template(doc: Doc) -> Partial | None:
    for i, ln in enumerate(doc.lines):
        text = strip_bullet(ln.text).strip()
        m = _TEMPLATE_KEY.match(text)
        if not m:
            continue
        value = _field(doc, i, m.group("value").strip())
        vm = _TF_VERSION_VALUE.findall(value)
        if not vm:
            continue
        dist = None
        low = value.lower()
        if "tensorflow-gpu" in low or "tf-nightly-gpu" in low:
            dist = "tensorflow-gpu"
        build = "cuda" if dist else ("cpu" if "tensorflow-cpu" in low else None)
        fw = _tf(vm[-1], distribution=dist, build=build)
        cuda, cudnn = _stated_cuda(doc)
        snap = Snapshot(frameworks=fw)
        return Partial("tf-issue-template", snap, ln.no, stated_cuda=cuda, stated_cudnn=cudnn)
    return None


def _log(doc: Doc) -> Partial | None:
    gpus: dict[int, Gpu] = {}
    first: int | None = None
    opened: list[str] = []
    for i, ln in enumerate(doc.lines):
        text = ln.text
        hit = None
        if (m := _CREATED.search(text)) or (m := _XLA_DEVICE.search(text)):
            hit = (int(m.group("idx")), m.group("name").strip(), m.group("cc"))
        elif m := _FOUND_DEVICE.search(text):
            window = " ".join(x.text for x in doc.lines[i : i + 4])
            if nc := _NAME_CC.search(window):
                hit = (int(m.group("idx")), nc.group("name").strip(), nc.group("cc"))
            else:
                name = next(
                    (nm.group("name") for x in doc.lines[i + 1 : i + 3] if (nm := _NAME_ONLY.match(x.text))),
                    None,
                )
                mm = _MAJOR_MINOR.search(window)
                if name and mm:
                    hit = (int(m.group("idx")), name.strip(), f"{mm.group('major')}.{mm.group('minor')}")
        if m2 := _OPENED.search(text):
            opened.append(m2.group("lib"))
            first = first or ln.no
        if hit and is_nvidia_name(hit[1]):
            gpus.setdefault(hit[0], Gpu(index=hit[0], name=hit[1], compute_capability=hit[2]))
            first = first or ln.no
    if first is None:
        return None
    cuda_build = None
    for lib in opened:
        # before CUDA 11 the soname is the exact release TF was built for
        if (cm := re.match(r"libcudart\.so\.(\d+)\.(\d+)", lib)) and int(cm.group(1)) < 11:
            cuda_build = f"{cm.group(1)}.{cm.group(2)}"
    is_tf = "tensorflow/" in doc.text or "local_xla" in doc.text
    snap = Snapshot(
        nvidia=NvidiaInfo(gpus=sorted(gpus.values(), key=lambda g: g.index)) if gpus else None,
        frameworks=_tf(None, build="cuda", cuda_build=cuda_build) if is_tf else None,
    )
    return Partial("tf-log", snap, first)
