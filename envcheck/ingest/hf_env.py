"""The Hugging Face tools' ``env`` commands: ``transformers env`` (``transformers-cli env``),
``accelerate env``, ``diffusers-cli env`` and ``huggingface-cli env``.

All print "- Key: value" bullets (the dashes are often lost in a paste): the platform string,
Python, "PyTorch version (GPU?): 2.3.0+cu121 (True)", TensorFlow, Flax/JAX, and on newer
versions the GPU ("GPU type: NVIDIA RTX A6000", "Accelerator: NVIDIA A100-SXM4-40GB, 40960 MiB").
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import (
    Partial,
    is_nvidia_name,
    known,
    platform_system,
    python_env,
    strip_bullet,
    torch_local,
)
from envcheck.ingest._text import Doc
from envcheck.ingest.packages import available
from envcheck.models import Framework, FrameworksInfo, Gpu, MemoryInfo, NvidiaInfo, Snapshot

__all__ = ["read"]

_LINE = re.compile(r"^(?P<key>[^:]{2,60}?)\s*:\s*(?P<value>.*?)\s*$")
#: the key that names the tool, and so the dump's kind
_TOOLS = {
    "transformers version": "transformers-env",
    "accelerate version": "accelerate-env",
    "diffusers version": "diffusers-env",
    "huggingface_hub version": "huggingface-cli-env",
}
_KEYS = {
    *_TOOLS, "platform", "python version", "pytorch version (gpu?)", "tensorflow version (gpu?)",
    "flax version (cpu?/gpu?/tpu?)", "jax version", "jaxlib version", "gpu type", "accelerator",
    "torch", "tensorflow", "system ram", "numpy version", "huggingface_hub version",
    "safetensors version", "accelerate config", "accelerate default config", "using gpu in script?",
    "using distributed or parallel set-up in script?", "running in ipython ?", "running in notebook ?",
    "running in google colab ?", "running on google colab?", "token path ?", "has saved token ?",
    "transformers version", "peft version", "bitsandbytes version", "xformers version",
    "pytorch xpu available", "pytorch npu available", "pytorch mlu available", "pytorch musa available",
    "accelerate bash location", "who am i ?", "configured git credential helpers", "fastai",
}  # fmt: skip


def names_tool(line: str) -> bool:
    """True when ``line`` is the tool's own version line ("- `transformers` version: 4.40.0")."""
    m = _LINE.match(strip_bullet(line).strip())
    return m is not None and _key(m.group("key")) in _TOOLS


def claims(key: str) -> bool:
    """True when ``key`` (lower-cased) is a key the Hugging Face tools print."""
    return _key(key) in _KEYS


def _key(raw: str) -> str:
    k = raw.replace("`", "").replace("🤗", "").strip().lower()
    return re.sub(r"\s+", " ", k)


def read(doc: Doc) -> list[Partial]:
    blocks: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] | None = None
    first = 0
    gap = 0
    for ln in doc.lines:
        m = _LINE.match(strip_bullet(ln.text).strip()) if ":" in ln.text else None
        key = _key(m.group("key")) if m else None
        if key is None or key not in _KEYS:
            gap += 1
            if current is not None and gap > 12:
                blocks.append((first, current))
                current = None
            continue
        gap = 0
        assert m is not None
        if current is None or key in current:
            if current is not None:
                blocks.append((first, current))
            current, first = {}, ln.no
        current[key] = m.group("value")
    if current is not None:
        blocks.append((first, current))
    return [p for first, kv in blocks if (p := _partial(first, kv)) is not None]


def _with_flag(value: str | None) -> tuple[str | None, bool | None]:
    """ "2.3.0+cu121 (True)" -> ("2.3.0+cu121", True); "not installed (NA)" -> (None, None)."""
    v = known(value)
    if v is None:
        return None, None
    m = re.match(r"^(?P<version>\S+)\s*\((?P<flag>[^)]*)\)", v)
    if not m:
        return (v.split()[0] if v[:1].isdigit() else None), None
    flag = {"true": True, "false": False, "gpu": True, "cpu": False}.get(m.group("flag").strip().lower())
    return m.group("version"), flag


def _torch(version: str, flag: bool | None) -> Framework:
    build, cuda, rocm = torch_local(version)
    fw = Framework(name="torch", installed=True, distribution="torch", version=version, build=build,
                   cuda_build=cuda, rocm_build=rocm)  # fmt: skip
    return available(fw, flag)


def _partial(first: int, kv: dict[str, str]) -> Partial | None:
    # the tool's own version line comes first (diffusers-cli env also prints "Transformers version")
    tool = next((_TOOLS[key] for key in kv if key in _TOOLS), None)
    if tool is None:
        return None
    system = platform_system(kv.get("platform", "")) if kv.get("platform") else None
    if (py := python_env(kv.get("python version"))) is not None:
        from envcheck.models import SystemInfo

        system = (system or SystemInfo()).model_copy(update={"python": py})
    frameworks: list[Framework] = []
    torch_value = kv.get("pytorch version (gpu?)", kv.get("torch"))
    version, flag = _with_flag(torch_value)
    if version:
        frameworks.append(_torch(version, flag))
    elif torch_value is not None and known(torch_value) is None:
        frameworks.append(Framework(name="torch", installed=False))
    tf_version, tf_flag = _with_flag(kv.get("tensorflow version (gpu?)", kv.get("tensorflow")))
    if tf_version:
        frameworks.append(
            available(Framework(name="tensorflow", installed=True, version=tf_version), tf_flag)
        )
    jax_version = known(kv.get("jax version"))
    if jax_version:
        _, flax_flag = _with_flag(kv.get("flax version (cpu?/gpu?/tpu?)"))
        jax = Framework(name="jax", installed=True, distribution="jax", version=jax_version)
        frameworks.append(available(jax, flax_flag))
    gpus: list[Gpu] = []
    for key in ("gpu type", "accelerator"):
        name = known(kv.get(key))
        if name and is_nvidia_name(name):
            model, _, rest = name.partition(",")
            mem = re.search(r"(\d+)\s*MiB", rest)
            gpus.append(Gpu(index=0, name=model.strip(), memory_total_mib=int(mem.group(1)) if mem else None))
            break
    memory = None
    if ram := re.match(r"^(\d+(?:\.\d+)?)\s*GB$", (kv.get("system ram") or "").strip()):
        memory = MemoryInfo(total_bytes=int(float(ram.group(1)) * 2**30))  # psutil total / 1024**3
    snap = Snapshot(
        system=system,
        memory=memory,
        nvidia=NvidiaInfo(gpus=gpus) if gpus else None,
        frameworks=FrameworksInfo(frameworks=frameworks) if frameworks else None,
    )
    return Partial(tool, snap, first)
