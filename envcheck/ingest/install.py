"""Install commands and package records that say a framework is a CPU build, when no package list does.

* ``pip install torch==2.6.0 --index-url https://download.pytorch.org/whl/cpu`` (``uv pip``, ``pip3``,
  ``--extra-index-url``, ``-f .../whl/cpu/torch_stable.html``, ``torch==1.13.1+cpu``): PyTorch's CPU
  index serves CPU builds only, whatever the machine has. App installers (ComfyUI, Pinokio, A1111)
  print the command they ran, and an app that picked the CPU index is a common reason for "no GPU".
* ``conda install pytorch ... cpuonly``: the cpuonly package pins conda's CPU pytorch.
* a conda record quoted inline: ``pytorch=1.9.0=py3.8_cpu_0`` / ``pytorch-1.9.0-py3.8_cpu_0`` (the
  build string exists only in conda's own listings, so it is a fact about an environment, not advice).

Only the CPU direction is read: a command naming a CUDA index is as often advice ("try --index-url
.../cu121") as what ran, and would make a healthy verdict from a suggestion.
"""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import Framework, FrameworksInfo, Snapshot

__all__ = ["read"]

_PIP = re.compile(r"\b(?:uv\s+)?pip3?\s+install\b(?P<args>[^;&|]*)")
_CONDA = re.compile(r"\b(?:conda|mamba|micromamba)\s+install\b(?P<args>[^;&|]*)")
_CPU_INDEX = re.compile(r"download\.pytorch\.org/whl/(?:nightly/)?cpu\b")
_TORCH_PIN = re.compile(r"(?<![\w-])torch(?:==(?P<v>\d+\.\d+(?:\.\d+)?)(?P<local>\+cpu)?)?(?![\w-])")
_CONDA_RECORD = re.compile(r"(?<![\w-])(?:py)?torch[=-](?P<v>\d+\.\d+(?:\.\d+)?)[=-](?:py[\d.]+_)?cpu_\d+\b")
#: a line that suggests rather than reports ("try pip install ...", "you should install ...")
_ADVICE = re.compile(r"\b(?:try|should|instead|recommend|suggest|could|please|maybe)\b", re.I)


def _torch_cpu(text: str) -> tuple[str | None, int] | None:
    """(version or None, position) when the line installs or records a CPU torch."""
    if "torch" not in text:
        return None
    if m := _CONDA_RECORD.search(text):
        return m.group("v"), m.start()
    if _ADVICE.search(text):
        return None
    for cmd in (*_PIP.finditer(text), *_CONDA.finditer(text)):
        args = cmd.group("args")
        pin = _TORCH_PIN.search(args) or (re.search(r"(?<![\w-])pytorch(?![\w-])", args) if "conda" in
                                            cmd.group(0) or "mamba" in cmd.group(0) else None)  # fmt: skip
        if pin is None:
            continue
        cpu = bool(_CPU_INDEX.search(args)) or "+cpu" in args or re.search(r"(?<![\w-])cpuonly\b", args)
        if cpu:
            version = pin.groupdict().get("v") if pin.re is _TORCH_PIN else None
            return version, cmd.start()
    return None


def read(doc: Doc) -> list[Partial]:
    for ln in doc.lines:
        if (hit := _torch_cpu(ln.text)) is None:
            continue
        version, _ = hit
        fw = Framework(name="torch", installed=True, version=version, build="cpu")
        return [Partial("install-command", Snapshot(frameworks=FrameworksInfo(frameworks=[fw])), ln.no)]
    return []
