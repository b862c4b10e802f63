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


_PYTORCH = re.compile(r"(?<![\w-])pytorch(?![\w-])")  # conda's package name


def _torch_cpu(text: str) -> Framework | None:
    """The CPU torch a line installs or records, else None."""
    if "torch" not in text:
        return None
    if m := _CONDA_RECORD.search(text):
        return _cpu_torch(m.group("v"))
    if _ADVICE.search(text):
        return None
    for cmd in (*_PIP.finditer(text), *_CONDA.finditer(text)):
        args = cmd.group("args")
        pin = _TORCH_PIN.search(args) or (_PYTORCH.search(args) if cmd.re is _CONDA else None)
        if pin is None:
            continue
        if _CPU_INDEX.search(args) or "+cpu" in args or re.search(r"(?<![\w-])cpuonly\b", args):
            return _cpu_torch(pin.group("v") if pin.re is _TORCH_PIN else None)
    return None


def _cpu_torch(version: str | None) -> Framework:
    return Framework(name="torch", installed=True, version=version, build="cpu")


def read(doc: Doc) -> list[Partial]:
    for ln in doc.lines:
        if (fw := _torch_cpu(ln.text)) is not None:
            return [Partial("install-command", Snapshot(frameworks=FrameworksInfo(frameworks=[fw])), ln.no)]
    return []
