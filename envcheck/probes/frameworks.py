"""torch, tensorflow and jax as installed: version and build facts read from files, never imported.

Importing torch costs ~2.7 s and TF ~4.8 s on our 2-core machine; reading ``torch/version.py``,
TF's generated ``build_info.py``, ``jaxlib/version.py`` and the dist-info metadata costs ~0.04 s
and answers the same build questions (CUDA or CPU, which CUDA/cuDNN, which GPU archs). The
files are parsed with ``ast``, never executed. With ``ctx.deep`` each framework is then imported
in its own child interpreter (``envcheck.probes.deep``).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envcheck.models import Framework, FrameworksInfo
from envcheck.probes import _dist, _libs

if TYPE_CHECKING:
    from envcheck.probes import ProbeContext

#: framework -> (top-level module, distributions that provide it, in preference order)
FRAMEWORKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("torch", ("torch",)),
    "tensorflow": (
        "tensorflow",
        (
            "tensorflow",
            "tensorflow-cpu",
            "tensorflow-gpu",
            "tf-nightly",
            "tf-nightly-cpu",
            "tensorflow-intel",
            "tensorflow-macos",
            "tensorflow-rocm",
            "tensorflow-aarch64",
        ),
    ),
    "jax": ("jax", ("jax",)),
}
#: distributions that are not nvidia's CUDA libraries although named nvidia-*
_NOT_CUDA_WHEELS = {"nvidia-ml-py", "nvidia-ml-py3", "nvidia-pyindex"}


# --------------------------------------------------------------------------- reading files


def literal_assignments(source: str) -> dict[str, Any]:
    """Module-level ``name = <literal>`` (and annotated) assignments of a Python file, not executed."""
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for t in targets:
            if isinstance(t, ast.Name) and value is not None:
                try:
                    found[t.id] = ast.literal_eval(value)
                except ValueError:
                    found[t.id] = _ordered_dict_literal(value)
    return {k: v for k, v in found.items() if v is not None or k in _KEEP_NONE}


_KEEP_NONE = {"cuda", "hip", "rocm", "xpu"}


def _ordered_dict_literal(node: ast.expr) -> Any:
    """``collections.OrderedDict([(k, v), ...])`` (TF's build_info) -> dict; anything else -> None."""
    if isinstance(node, ast.Call) and node.args and not node.keywords:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("OrderedDict", "dict"):
            try:
                return dict(ast.literal_eval(node.args[0]))
            except (ValueError, TypeError):
                return None
    return None


def _read_literals(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        return literal_assignments(path.read_text(encoding="utf-8", errors="replace")), None
    except OSError as exc:
        return {}, f"cannot read {path}: {exc.strerror or exc}"
    except SyntaxError as exc:
        return {}, f"cannot parse {path}: {exc.msg} (line {exc.lineno})"


def torch_facts(pkg: Path) -> dict[str, Any]:
    """``torch/version.py``: version, build kind and CUDA/ROCm versions."""
    values, error = _read_literals(pkg / "version.py")
    cuda, hip, xpu = values.get("cuda"), values.get("hip"), values.get("xpu")
    build = "cuda" if cuda else "rocm" if hip else "xpu" if xpu else "cpu" if values else None
    return {
        "version": values.get("__version__"),
        "build": build,
        "cuda_build": cuda if isinstance(cuda, str) else None,
        "rocm_build": hip if isinstance(hip, str) else None,
        "git_version": values.get("git_version"),
        "error": error,
    }


def tensorflow_facts(pkg: Path) -> dict[str, Any]:
    """``tensorflow/python/platform/build_info.py``: CUDA/ROCm build, CUDA, cuDNN, compute capabilities."""
    values, error = _read_literals(pkg / "python" / "platform" / "build_info.py")
    info = values.get("build_info")
    info = dict(info) if isinstance(info, dict) else {}
    info.update({k: v for k, v in values.items() if k != "build_info"})  # older TF: module-level names
    if not info:
        return {"error": error or "build_info.py has no build facts"}
    build = "cuda" if info.get("is_cuda_build") else "rocm" if info.get("is_rocm_build") else "cpu"
    archs = info.get("cuda_compute_capabilities")
    return {
        "build": build,
        "cuda_build": _str_or_none(info.get("cuda_version")),
        "cudnn_build": _str_or_none(info.get("cudnn_version")),
        "rocm_build": _str_or_none(info.get("rocm_version")),
        "arch_list": [str(a) for a in archs] if isinstance(archs, (list, tuple)) else None,
        "error": error,
    }


#: libraries built against one exact torch version, reported beside it
_TORCH_COMPANIONS = ("torchvision", "torchaudio")
#: the library whose arch-flags string ``torch.cuda.get_arch_list()`` returns
_TORCH_ARCH_LIBRARY = ("lib", "libtorch_python.so")


def torch_arch_flags(pkg: Path) -> list[str] | None:
    """The GPU code a CUDA torch carries, read from the arch-flags string compiled into
    ``lib/libtorch_python.so`` (mapped, searched, never loaded: ~20-90 ms, no import)."""
    import mmap

    from envcheck.knowledge.archs import find_arch_flags

    try:
        with (
            open(pkg.joinpath(*_TORCH_ARCH_LIBRARY), "rb") as fh,
            mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            found = find_arch_flags(data)
    except (OSError, ValueError):
        return None
    return list(found[0]) if found else None


def _beyond_tables(framework: str, version: str | None) -> bool:
    """Is this release outside envcheck's version tables (so its own files must speak for it)?"""
    from envcheck.knowledge import coverage

    try:
        return coverage.outside(framework, version) is not None
    except Exception:  # a broken table must not cost the probe
        return False


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def jaxlib_version(pkg: Path) -> str | None:
    """``jaxlib/version.py``'s release version (set in built wheels)."""
    values, _ = _read_literals(pkg / "version.py")
    version = values.get("_release_version") or values.get("_version")
    return version if isinstance(version, str) else None


# --------------------------------------------------------------------------- distributions


def _pinned(dist_path: str, prefix: str) -> str | None:
    """The ``==`` pin of the first requirement named ``prefix*`` (torch pins the cuDNN it was built with)."""
    for line in _dist.requires(dist_path):
        m = _dist.REQUIREMENT.match(line)
        if not m or not _dist.canonicalize_name(m.group(1)).startswith(prefix):
            continue
        if m.group(3) and re.search(r"\bextra\s*==", m.group(3)):
            continue  # an optional extra's requirement says nothing about the build
        pins = re.findall(r"(?<![<>=!~])==(?!=)\s*([^\s,]+)", m.group(2))
        if pins:
            return pins[0]
    return None


def _find_package(module: str, paths: list[str], in_process: bool) -> Path | None:
    """Directory of a top-level package as ``import`` would find it, without importing it."""
    try:
        if in_process:
            spec = importlib.util.find_spec(module)
        else:
            spec = importlib.machinery.PathFinder.find_spec(module, paths)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    return Path(spec.origin).parent if spec.origin else None


# --------------------------------------------------------------------------- per framework


def _framework(name: str, paths: list[str], dists: _dist.DistIndex, in_process: bool) -> Framework:
    module, dist_names = FRAMEWORKS[name]
    pkg = _find_package(module, paths, in_process)
    if pkg is None:
        return Framework(name=name, installed=False)
    site = str(pkg.parent)
    dist = next((d for d in (dists.find(n, site) for n in dist_names) if d), None)
    dist_name = next((n for n in dist_names if dists.find(n, site)), None)
    fw = Framework(
        name=name,
        installed=True,
        distribution=dist_name,
        version=dist[1] if dist else None,
        location=str(pkg),
    )
    facts: dict[str, Any] = {}
    if name == "torch":
        facts = torch_facts(pkg)
        if dist and facts.get("build") == "cuda":
            facts["cudnn_build"] = _pinned(dist[0], "nvidia-cudnn")
        version = fw.version or facts.get("version")
        if facts.get("build") == "cuda" and _beyond_tables("torch", version):
            facts["arch_list"] = torch_arch_flags(pkg)  # the tables cannot say: ask the binary
        companions = {n: found[1] for n in _TORCH_COMPANIONS if (found := dists.find(n, site))}
        if companions:
            facts["plugins"] = companions
    elif name == "tensorflow":
        facts = tensorflow_facts(pkg)
    elif name == "jax":
        facts = _jax_facts(pkg, site, dists)
    for key, value in facts.items():
        if value is not None and (key != "version" or fw.version is None):
            setattr(fw, key, value)
    if fw.build == "cpu" and fw.arch_list is None:
        fw.arch_list = []  # a CPU build carries no GPU code: known to be none, not unknown
    return fw


def _jax_facts(pkg: Path, site: str, dists: _dist.DistIndex) -> dict[str, Any]:
    """jaxlib's version, the CUDA/ROCm plugins and libtpu; the build kind follows from the plugins."""
    plugins: dict[str, str] = {}
    jaxlib = dists.find("jaxlib")
    jaxlib_dir = pkg.parent / "jaxlib"
    plugins["jaxlib"] = (jaxlib[1] if jaxlib else None) or jaxlib_version(jaxlib_dir) or "?"
    if not jaxlib and not jaxlib_dir.is_dir():
        del plugins["jaxlib"]
    for n in dists.names_matching(r"^(jax-(cuda|rocm)\d+-(plugin|pjrt)|libtpu(-nightly)?)$"):
        found = dists.find(n)
        if found:
            plugins[n] = found[1]
    facts: dict[str, Any] = {"plugins": plugins, "build": "cpu" if plugins.get("jaxlib") else None}
    cuda = sorted({m.group(1) for n in plugins if (m := re.match(r"jax-cuda(\d+)-", n))}, key=int)
    # jaxlib < 0.4.14 shipped CUDA inside jaxlib itself: "0.4.13+cuda12.cudnn89"
    legacy = re.search(r"\+cuda(\d+)\.cudnn(\d)(\d+)", plugins.get("jaxlib", ""))
    if cuda:
        facts.update(build="cuda", cuda_build=cuda[-1])
    elif legacy:
        facts.update(
            build="cuda", cuda_build=legacy.group(1), cudnn_build=f"{legacy.group(2)}.{legacy.group(3)}"
        )
    elif any(re.match(r"jax-rocm", n) for n in plugins) or "+rocm" in plugins.get("jaxlib", ""):
        facts["build"] = "rocm"
    elif any(n.startswith("libtpu") for n in plugins):
        facts["build"] = "tpu"
    return facts


def nvidia_wheels(dists: _dist.DistIndex) -> dict[str, str]:
    """nvidia-* CUDA library wheels: name -> version (first on the path wins, like the loader's view)."""
    wheels: dict[str, str] = {}
    for n in dists.names_matching(r"^nvidia-"):
        found = dists.find(n)
        if n not in _NOT_CUDA_WHEELS and found:
            wheels[n] = found[1]
    return wheels


def probe_static(ctx: ProbeContext) -> FrameworksInfo:
    """Every framework's static facts and the nvidia-* wheels, from files only."""
    paths = _libs.python_paths(ctx)
    in_process = _libs.is_this_interpreter(ctx)
    dists = _dist.DistIndex(paths)
    frameworks: list[Framework] = []
    for name in FRAMEWORKS:
        try:
            frameworks.append(_framework(name, paths, dists, in_process))
        except Exception as exc:  # one odd install must not hide the others
            frameworks.append(Framework(name=name, installed=False, error=f"{type(exc).__name__}: {exc}"))
    info = FrameworksInfo(frameworks=frameworks, nvidia_wheels=nvidia_wheels(dists))
    if not paths:
        info.error = f"could not read sys.path of {ctx.python}"
    return info


def probe(ctx: ProbeContext) -> FrameworksInfo:
    """Static facts always; with ``ctx.deep`` also what each framework sees when imported in a child."""
    info = probe_static(ctx)
    if ctx.deep:
        from envcheck.probes import deep

        deep.attach(ctx, info)
    return info
