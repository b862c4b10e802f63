"""``jax.print_environment_info()``: "jax: 0.4.25", "jaxlib: 0.4.25", "python: ...",
"jax.devices (1 total, 1 local): [CpuDevice(id=0)]" (or "[cuda(id=0)]"), "platform: uname_result(...)",
then nvidia-smi (read by its own recogniser)."""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial, python_env
from envcheck.ingest._text import Doc
from envcheck.ingest.packages import available
from envcheck.models import Framework, FrameworksInfo, Snapshot, SystemInfo

__all__ = ["read"]

_JAX = re.compile(r"^\s*jax:\s+(?P<v>\d\S*)\s*$")
_JAXLIB = re.compile(r"^\s*jaxlib:\s+(?P<v>\d\S*)\s*$")
_DEVICES = re.compile(r"^\s*jax\.devices \((?P<n>\d+) total, \d+ local\):\s*\[(?P<devices>.*)")
_PYTHON = re.compile(r"^\s*python:\s+(?P<v>\d.*)$")
_UNAME = re.compile(r"release='(?P<release>[^']+)'.*?machine='(?P<machine>[^']+)'")


def read(doc: Doc) -> list[Partial]:
    for i, ln in enumerate(doc.lines):
        m = _JAX.match(ln.text)
        if not m:
            continue
        window = doc.lines[i : i + 12]
        jaxlib = next((x.group("v") for w in window if (x := _JAXLIB.match(w.text))), None)
        if jaxlib is None:
            continue
        flag = None
        devices = next((x for w in window if (x := _DEVICES.match(w.text))), None)
        if devices:
            listed = devices.group("devices").lower()
            flag = any(k in listed for k in ("cuda", "gpu")) if listed.strip() else None
        plugins = {"jaxlib": jaxlib}
        fw = available(Framework(name="jax", installed=True, distribution="jax", version=m.group("v"),
                                 build="cuda" if flag else None, plugins=plugins), flag)  # fmt: skip
        system = None
        if py := next((x.group("v") for w in window if (x := _PYTHON.match(w.text))), None):
            system = SystemInfo(python=python_env(py))
        uname = next((x for w in doc.lines[i : i + 20] if (x := _UNAME.search(w.text))), None)
        if uname:
            release = uname.group("release")
            system = (system or SystemInfo()).model_copy(
                update={"os": "Linux", "kernel": release, "arch": uname.group("machine")}
            )
        snap = Snapshot(system=system, frameworks=FrameworksInfo(frameworks=[fw]))
        return [Partial("jax-env", snap, ln.no)]
    return []
