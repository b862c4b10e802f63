"""Python sessions pasted with their answers, the commonest "environment" in a bug report:

    >>> import torch                      In [2]: tf.test.is_built_with_cuda()
    >>> torch.__version__                 Out[2]: False
    '2.1.0+cpu'
    >>> print(torch.cuda.is_available())
    False

An expression counts only with its printed answer on the next line (or an IPython ``Out[n]:``),
and only the few expressions whose answer is a fact: versions, ``torch.version.cuda``,
``is_available()``, ``is_built_with_cuda()``, the GPU list and a device name. Each interpreter
start-up banner ("Type "help", "copyright", ...") opens a new session, read on its own: two sessions
pasted together are often two environments (two containers, before and after a reinstall).
"""

from __future__ import annotations

import itertools
import re

from envcheck.ingest._partial import Partial, is_nvidia_name
from envcheck.ingest._text import Doc
from envcheck.ingest.packages import available
from envcheck.models import Framework, FrameworksInfo, Gpu, NvidiaInfo, Snapshot

__all__ = ["read"]

_PROMPT = re.compile(
    r"^\s*(?:>>>|In \[\d+\]:)\s*(?:print\()?\s*(?P<expr>[\w.]+(?:\((?:[^()]|\([^()]*\))*\))?)\s*\)?\s*;?$"
)
_OUT = re.compile(r"^\s*(?:Out\[\d+\]:\s*)?(?P<value>\S.*?)\s*$")
_BANNER = re.compile(r'^\s*Type "help", "copyright", "credits" or "license"')
_TORCH_ALIASES = ("torch", "pt", "th")
_TF_ALIASES = ("tf", "tensorflow")


def _answer(doc: Doc, i: int) -> str | None:
    """The printed answer to the prompt on line ``i``: the next non-empty line, if it is not a prompt."""
    for nxt in doc.lines[i + 1 : i + 3]:
        text = nxt.text.strip()
        if not text:
            continue
        if text.startswith((">>>", "...", "In [", "Traceback", "File ")):
            return None
        m = _OUT.match(text)
        return m.group("value").strip().strip("'\"") if m else None
    return None


def read(doc: Doc) -> list[Partial]:
    starts = [i for i, ln in enumerate(doc.lines) if "copyright" in ln.text and _BANNER.match(ln.text)]
    bounds = [0, *[s for s in starts if s > 0], len(doc.lines)]
    return [p for a, b in itertools.pairwise(bounds) for p in _session(doc, a, b)]


def _session(doc: Doc, start: int, end: int) -> list[Partial]:
    torch: dict[str, object] = {}
    tf: dict[str, object] = {}
    gpu_name: str | None = None
    first: int | None = None
    for i in range(start, end):
        ln = doc.lines[i]
        if ">>>" not in ln.text and "In [" not in ln.text:
            continue
        m = _PROMPT.match(ln.text)
        if m is None:
            continue
        expr = m.group("expr").replace(" ", "")
        head, _, attr = expr.partition(".")
        value = _answer(doc, i)
        if value is None:
            continue
        hit = True
        if head in _TORCH_ALIASES:
            if attr == "__version__" and value[:1].isdigit():
                torch["version"] = value
            elif attr == "version.cuda":
                torch["cuda"] = value
            elif attr == "cuda.is_available()" and value in ("True", "False"):
                torch["seen"] = value == "True"
            elif attr.startswith("cuda.get_device_name(") and is_nvidia_name(value):
                gpu_name = value
            else:
                hit = False
        elif head in _TF_ALIASES:
            if attr == "__version__" and value[:1].isdigit():
                tf["version"] = value
            elif attr == "test.is_built_with_cuda()" and value in ("True", "False"):
                tf["build"] = "cuda" if value == "True" else "cpu"
            elif attr.startswith(
                ("config.list_physical_devices(", "config.experimental.list_physical_devices(")
            ) and ("GPU" in attr.upper()):
                tf["seen"] = value not in ("[]", "")
            else:
                hit = False
        else:
            hit = False
        if hit:
            first = first or ln.no
    if first is None:
        return []
    fws = []
    if torch:
        fws.append(_torch(torch))
    if tf:
        fw = Framework(name="tensorflow", installed=True, version=tf.get("version"), build=tf.get("build"))  # type: ignore[arg-type]
        fws.append(available(fw, tf.get("seen")))  # type: ignore[arg-type]
    snap = Snapshot(
        nvidia=NvidiaInfo(gpus=[Gpu(index=0, name=gpu_name)]) if gpu_name else None,
        frameworks=FrameworksInfo(frameworks=fws) if fws else None,
    )
    return [Partial("python-repl", snap, first)]


def _torch(facts: dict[str, object]) -> Framework:
    from envcheck.ingest._partial import torch_local

    version = facts.get("version")
    build, cuda, rocm = torch_local(str(version)) if version else (None, None, None)
    said = facts.get("cuda")
    if isinstance(said, str) and re.fullmatch(r"\d+\.\d+", said):
        build, cuda = build or "cuda", said
    elif said == "None" and build is None:
        build = "cpu"  # torch.version.cuda is None (ROCm builds name their HIP in version.hip)
    fw = Framework(name="torch", installed=True, distribution="torch", version=version, build=build,  # type: ignore[arg-type]
                   cuda_build=cuda, rocm_build=rocm)  # fmt: skip
    return available(fw, facts.get("seen"))  # type: ignore[arg-type]
