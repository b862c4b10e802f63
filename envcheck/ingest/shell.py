"""What the shell lines around a paste state: environment variables set for the run
(``CUDA_VISIBLE_DEVICES=2 python main.py``, ``export X=...``, ``os.environ["X"] = "..."``,
vLLM's "Environment Variables" section) and whether the errors come from inside a container
(``docker run --gpus all ...``, a ``root@3f2a1b9c8d7e:/#`` prompt), and the OS a traceback ran on when
all its paths point to one (``/Users/...`` on a Mac, ``C:\\...`` on Windows)."""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import ContainerInfo, Snapshot, SystemInfo

__all__ = ["ENV_NAMES", "read"]

#: variables that change what CUDA or the frameworks do; others are not facts we use
ENV_NAMES = (
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "LD_LIBRARY_PATH",
    "CUDA_HOME", "CUDA_PATH", "PYTORCH_CUDA_ALLOC_CONF", "CUDA_LAUNCH_BLOCKING", "NVIDIA_DRIVER_CAPABILITIES",
    "TF_FORCE_GPU_ALLOW_GROWTH", "XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_PLATFORMS", "NCCL_P2P_DISABLE",
    "NCCL_IB_DISABLE", "NCCL_CUMEM_ENABLE", "CUDA_MODULE_LOADING", "TORCH_CUDA_ARCH_LIST",
)  # fmt: skip
_NAMES = "|".join(ENV_NAMES)
_ASSIGN = re.compile(
    rf"(?:^|[\s;&(])(?:export\s+|set\s+)?(?P<name>{_NAMES})=(?P<q>['\"]?)(?P<value>[^'\"\s;&]*)(?P=q)(?=\s|$|;|&)"
)
#: error messages suggest settings ("consider passing CUDA_LAUNCH_BLOCKING=1", "try setting ..."); those
#: are not what the run had
_ADVICE = re.compile(r"\b(?:consider|try|please)\s+(?:passing|setting|using|to\s+set)\b|\bby setting\b", re.I)
_ENVIRON = re.compile(rf"os\.environ\[['\"](?P<name>{_NAMES})['\"]\]\s*=\s*['\"](?P<value>[^'\"]*)['\"]")
#: TensorFlow's dlerror lines end with the loader path it searched: "; LD_LIBRARY_PATH: /usr/local/..."
_DLERROR_PATH = re.compile(r"dlerror:.*?;\s*LD_LIBRARY_PATH:\s*(?P<value>\S*)")
_DOCKER_RUN = re.compile(r"\b(?:docker|podman|nvidia-docker)\s+(?:container\s+)?(?:run|exec|compose)\b[^\n]*")
_CONTAINER_PROMPT = re.compile(r"^\s*root@[0-9a-f]{12}:[^\s]*[#$]")
#: a run that asks for an NVIDIA GPU: Docker's flags and Compose keys, code that moves work to CUDA
_GPU_ASKED = re.compile(
    r"--gpus[= ]+\S|--runtime[= ]+nvidia\b|\bnvidia-docker\s+run\b|^\s*runtime:\s*nvidia\b|"
    r"\bcapabilities:\s*\[\s*\[?\s*['\"]?gpu\b|"
    r"\.cuda\(\)|\.to\(\s*['\"]cuda|\bdevice\s*=\s*['\"]cuda|torch\.device\(\s*['\"]cuda|--device[= ]+cuda\b"
)
#: an issue title (the first line, as a bot reading the issue sees it) about the NVIDIA GPU or CUDA
_GPU_TITLE = re.compile(r"^#\s.*\b(?:GPU|CUDA|NVIDIA|cuDNN)\b", re.I)
#: "I am using WSL2", "on WSL", "Windows 11 WSL": the user says where it ran (WSL has no other trace in a
#: log); a WSL2 kernel string is read by the dumps themselves
_ON_WSL_WORDS = re.compile(
    r"\b(?:using|on|in|under|inside|with|windows ?1[01])\s+(?:ubuntu\s+(?:on\s+)?)?WSL ?2?\b|\bWSL2\b", re.I
)
_IN_CONTAINER_WORDS = re.compile(
    r"\b(?:in(?:side)? (?:the |a |my |your )?(?:docker|container)|within (?:the )?container)\b", re.I
)


#: where a Python traceback's files live says which OS ran it: a Mac's home is /Users, Homebrew's prefix
#: /opt/homebrew, python.org's framework /Library/Frameworks; Windows paths start with a drive letter
_TRACEBACK_FILE = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')
_MAC_PATH = re.compile(r"^(?:/Users/|/opt/homebrew/|/Library/Frameworks/Python\.framework/)")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:\\")


def _traceback_os(doc: Doc) -> str | None:
    """ "Darwin" or "Windows" when every traceback path in the paste points there; None otherwise."""
    seen: set[str] = set()
    for ln in doc.lines:
        if 'File "' not in ln.text or (m := _TRACEBACK_FILE.match(ln.text)) is None:
            continue
        path = m.group("path")
        if path.startswith("<"):
            continue  # "<string>", "<frozen runpy>": no place on disk
        seen.add("Darwin" if _MAC_PATH.match(path) else ("Windows" if _WINDOWS_PATH.match(path) else "other"))
    return next(iter(seen)) if len(seen) == 1 and "other" not in seen else None


def read(doc: Doc) -> list[Partial]:
    env: dict[str, str] = {}
    first = None
    hint = wanted = None
    for i, ln in enumerate(doc.lines):
        text = ln.text
        if "=" in text:
            for m in (*_ASSIGN.finditer(text), *_ENVIRON.finditer(text)):
                if _ADVICE.search(text[: m.start()]):
                    continue  # "consider passing CUDA_LAUNCH_BLOCKING=1.": advice, not a setting
                env.setdefault(m.group("name"), m.group("value").rstrip("."))
                first = first or ln.no
        if "LD_LIBRARY_PATH" not in env and "dlerror" in text and (d0 := _DLERROR_PATH.search(text)):
            env["LD_LIBRARY_PATH"] = d0.group("value")
            first = first or ln.no
        if wanted is None and (_GPU_ASKED.search(text) or (ln is doc.lines[0] and _GPU_TITLE.match(text))):
            wanted = text.strip()[:200]
        if hint is not None:
            continue
        lowered = text.lower()
        if ("docker" in text or "podman" in text) and (d := _DOCKER_RUN.search(text)):
            hint = _continued(doc, i, d.group(0).strip())
        elif _CONTAINER_PROMPT.match(text) or (
            ("container" in lowered or "docker" in lowered) and (_IN_CONTAINER_WORDS.search(text))
        ):
            hint = text.strip()[:200]
    os_name = _traceback_os(doc)
    if os_name is None and "nvcuda.dll" in doc.text.lower():
        os_name = "Windows"  # the CUDA driver's library on Windows (Linux: libcuda.so)
    wsl = any(("WSL" in ln.text or "wsl" in ln.text) and _ON_WSL_WORDS.search(ln.text) for ln in doc.lines)
    if not env and hint is None and os_name is None and not wsl and wanted is None:
        return []
    system = SystemInfo(env=env, os=os_name or ("Linux" if wsl else None),
                        container=ContainerInfo(wsl=True) if wsl else None)  # fmt: skip
    snap = Snapshot(system=system) if env or os_name or wsl else Snapshot()
    line = first or next((ln.no for ln in doc.lines if hint and hint in ln.text), 1)
    return [Partial("shell", snap, line, container_hint=hint, gpu_wanted=wanted)]


def _continued(doc: Doc, i: int, command: str) -> str:
    """A command with the lines its trailing backslashes continue onto (the image is often last)."""
    parts = [command]
    j = i
    while parts[-1].endswith("\\") and j + 1 < len(doc.lines) and j < i + 12:
        j += 1
        parts[-1] = parts[-1][:-1].rstrip()
        parts.append(doc.lines[j].text.strip())
    return " ".join(parts)[:400]
