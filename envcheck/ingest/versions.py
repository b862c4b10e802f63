"""The short "Versions" lists issue templates ask for and people type by hand:

    - PyTorch: `2.10.0`          torch version: 2.1.0+cu121        ### OS platform and distribution
    - OS: `macOS 26.3.1`         Python: 3.10                      Windows 11 24h2
    - Hardware: `Apple M2 Max`   GPU: NVIDIA GeForce RTX 4090      NVIDIA driver: 535.129.03

Only a line that is nothing but a known key and its value counts (so prose never becomes a fact),
and only what such a line can state without doubt: framework versions (their local tags name the
build), Python, the OS family, an NVIDIA GPU's name and a driver version. "CUDA version: 12.1" is
left alone: people mean the toolkit, the driver's ceiling or the wheel's CUDA, and it is not
possible to tell which.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import (
    Partial,
    is_nvidia_name,
    platform_system,
    python_env,
    strip_bullet,
    torch_local,
)
from envcheck.ingest._text import Doc
from envcheck.models import Framework, FrameworksInfo, Gpu, NvidiaInfo, Snapshot, SystemInfo

__all__ = ["os_family", "read"]

_V = r"v?(?P<v>\d+\.\d+(?:\.\d+)?(?:[.+\-]?[a-z]+[\w.]*)?)"
_FRAMEWORK = re.compile(
    rf"^(?P<name>py ?torch|torch|tensorflow(?:-gpu|-cpu)?|tf|jax|jaxlib)(?: version)?\s*(?:[:=]|==)\s*{_V}$",
    re.IGNORECASE,
)
_PYTHON = re.compile(rf"^python(?: version)?\s*[:=]\s*{_V}\b.*$", re.IGNORECASE)
_OS_KEY = re.compile(
    r"^(?:os|operating system|os platform(?: and distribution)?|os version|platform|system)"
    r"(?:\s*[:=]\s*(?P<v>.*)|\s*)$",
    re.IGNORECASE,
)
_GPU_KEY = re.compile(
    r"^(?:gpu|gpus|gpu model(?: and memory)?|gpu type|graphics card|video card|hardware|device)"
    r"(?:\s*[:=]\s*(?P<v>.*)|\s*)$",
    re.IGNORECASE,
)
#: nvidia-smi's own label, quoted in a sentence or a title ("[GTX1080 Driver Version: 375.26 ]")
_SMI_DRIVER = re.compile(r"\bDriver Version: (?P<v>\d{3}\.\d{2,3}(?:\.\d{2})?)\b")
_DRIVER = re.compile(
    r"^(?:nvidia )?(?:gpu )?driver(?: version)?\s*[:=]\s*(?P<v>\d{3}\.\d{2,3}(?:\.\d{2})?)$", re.I
)
_HEADING = re.compile(r"^#{2,4}\s+")
#: how every line this reader takes starts (a cheap test before its patterns)
_KEY_STARTS = (
    "py", "torch", "tensorflow", "tf", "jax", "os", "operating", "platform", "system", "gpu", "graphics",
    "video", "hardware", "device", "nvidia", "driver",
)  # fmt: skip
#: the nvidia-smi label is read anywhere on a line, so such lines pass the cheap test too
#: keys those dumps print that this reader would otherwise read again
_IN_DUMPS = re.compile(r"^(?:python|pytorch|platform|os|gpu[\s\d,]*|jax|jaxlib)\s*:", re.I)
_LINUX = re.compile(
    r"\b(?:linux|ubuntu|debian|centos|fedora|rhel|red hat|rocky|almalinux|arch|manjaro|opensuse|mint|"
    r"pop!_os)\b",
    re.I,
)


def os_family(text: str) -> tuple[str | None, bool]:
    """("Windows"/"Darwin"/"Linux" or None, WSL?) for how people name their OS."""
    low = text.lower()
    wsl = "wsl" in low
    if re.search(r"\bmac ?os\b|\bos ?x\b|\bdarwin\b|\bsonoma\b|\bsequoia\b|\bventura\b", low):
        return "Darwin", False
    if "windows" in low and not wsl:
        return "Windows", False
    if _LINUX.search(low) or wsl:
        return "Linux", wsl
    return None, False


def _value(lines: list[str], i: int, value: str) -> str:
    """A heading's value sits on the next non-empty line ("### OS platform" / "Windows 11")."""
    if value:
        return value
    for nxt in lines[i + 1 : i + 3]:
        if nxt.strip():
            return nxt.strip().strip("`*").strip()
    return ""


def _claimed(text: str) -> bool:
    """A line another dump's reader owns (collect_env's "OS:", the HF tools' "Python version:")."""
    from envcheck.ingest import collect_env, hf_env

    key = text.split(":", 1)[0].strip().lower()
    return collect_env.claims(text) or hf_env.claims(key)


#: first lines of dumps that print "Python: 3.10" or "OS: Linux" themselves (OpenMMLab, detectron2, Lightning,
#: jax.print_environment_info)
_DUMP_MARKERS = re.compile(r"^(?:sys\.platform\b|\* CUDA:$|jax:\s+\d)")
#: words one of those dumps' lines holds (a cheap test before reading every line)
_DUMP_WORDS = (
    "is cuda available", "used to build pytorch", "nvidia driver version", "gpu models", "is debug build",
    "relevant libraries", "vllm", "version:", "sys.platform", "* cuda:", "jax:",
)  # fmt: skip


def _has_dump(texts: list[str], lowered: str) -> bool:
    """The paste holds a dump (collect_env, a Hugging Face env, OpenMMLab's...) whose lines are its own."""
    from envcheck.ingest import collect_env, hf_env

    if not any(word in lowered for word in _DUMP_WORDS):
        return False
    return any(
        collect_env.distinctive(t) or hf_env.names_tool(t) or _DUMP_MARKERS.match(t) for t in texts if t
    )


def read(doc: Doc) -> list[Partial]:
    texts = [
        strip_bullet(_HEADING.sub("", ln.text)).strip().replace("`", "").replace("**", "") for ln in doc.lines
    ]
    if _has_dump(texts, doc.text.lower()):  # a dump's own lines are read by its reader, not taken twice
        # only lines the loop below reads can be taken twice: those starting with a key, and quoted
        # nvidia-smi driver labels
        texts = [
            ""
            if ":" in t
            and (t[:12].lower().startswith(_KEY_STARTS) or "Driver Version: " in t)
            and (_claimed(t) or _IN_DUMPS.match(t))
            else t
            for t in texts
        ]
    frameworks: dict[str, Framework] = {}
    system = SystemInfo()
    gpus: list[Gpu] = []
    driver = None
    first = None
    for i, text in enumerate(texts):
        if not text or len(text) > 160:
            continue
        if not text[:12].lower().startswith(_KEY_STARTS):
            if (
                driver is None
                and "Driver Version: " in text
                and "NVIDIA-SMI" not in text
                and (m0 := _SMI_DRIVER.search(text))
            ):
                driver, first = m0.group("v"), first or doc.lines[i].no
            continue
        line_no = doc.lines[i].no
        if m := _FRAMEWORK.match(text):
            name = m.group("name").lower().replace(" ", "")
            name = {"pytorch": "torch", "tf": "tensorflow", "jaxlib": "jax"}.get(name, name)
            name = "tensorflow" if name.startswith("tensorflow") else name
            if name not in frameworks:
                frameworks[name] = _framework(name, m.group("v"), m.group("name").lower())
                first = first or line_no
        elif m2 := _PYTHON.match(text):
            system.python = system.python or python_env(m2.group("v"))
            first = first or line_no
        elif (m3 := _OS_KEY.match(text)) and system.os is None:
            raw = _value(texts, i, m3.group("v") or "")
            family, wsl = os_family(raw)
            if (plat := platform_system(raw)) and plat.kernel:  # "Platform: Linux-5.15.148-tegra-aarch64-..."
                system.os, system.kernel, system.arch = plat.os, plat.kernel, plat.arch
                system.glibc, system.container = plat.glibc, plat.container
                first = first or line_no
            elif family and (m3.group("v") or _HEADING.match(doc.lines[i].text)):
                system.os, system.distro = family, raw[:80]
                if wsl:
                    from envcheck.models import ContainerInfo

                    system.container = ContainerInfo(wsl=True)
                first = first or line_no
        elif (m4 := _GPU_KEY.match(text)) and not gpus:
            raw = _value(texts, i, m4.group("v") or "")
            name = re.split(r"\s*[,(|]\s*|\s+\d+\s*GB\b", raw, maxsplit=1)[0].strip()
            if name and (m4.group("v") or _HEADING.match(doc.lines[i].text)) and is_nvidia_name(name):
                gpus.append(Gpu(index=0, name=name))
                first = first or line_no
        elif m5 := _DRIVER.match(text):
            driver = driver or m5.group("v")
            first = first or line_no
        if (
            driver is None
            and "Driver Version: " in text
            and "NVIDIA-SMI" not in text
            and (m6 := _SMI_DRIVER.search(text))
        ):
            driver = m6.group("v")
            first = first or line_no
    has_system = bool(system.os or system.python)
    if not frameworks and not gpus and not driver and not system.os:
        return []
    snap = Snapshot(
        system=system if has_system else None,
        nvidia=NvidiaInfo(gpus=gpus or None, driver_version=driver) if gpus or driver else None,
        frameworks=FrameworksInfo(frameworks=list(frameworks.values())) if frameworks else None,
    )
    return [Partial("versions", snap, first or 1)]


def _framework(name: str, version: str, spelled: str) -> Framework:
    if name == "torch":
        build, cuda, rocm = torch_local(version)
        return Framework(name="torch", installed=True, distribution="torch", version=version, build=build,
                         cuda_build=cuda, rocm_build=rocm)  # fmt: skip
    if name == "tensorflow":
        dist = (
            "tensorflow-gpu"
            if spelled.endswith("-gpu")
            else ("tensorflow-cpu" if spelled.endswith("-cpu") else None)
        )
        build = "cuda" if dist == "tensorflow-gpu" else ("cpu" if dist == "tensorflow-cpu" else None)
        return Framework(name="tensorflow", installed=True, distribution=dist, version=version, build=build)
    if spelled == "jaxlib":
        local = version.partition("+")[2].lower()
        cuda = m.group(1) if (m := re.match(r"cuda(\d+)", local)) else None
        return Framework(name="jax", installed=True, distribution="jax", build="cuda" if cuda else None,
                         cuda_build=cuda, plugins={"jaxlib": version})  # fmt: skip
    return Framework(name="jax", installed=True, distribution="jax", version=version)
