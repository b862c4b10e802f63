"""``docker info`` as pasted (usually ``docker info | grep -i runtime``): which runtimes the Docker
daemon knows. ``--gpus`` needs the ``nvidia`` one (or CDI); without it Docker answers
'could not select device driver "" with capabilities: [[gpu]]'."""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import Snapshot

__all__ = ["read"]

_RUNTIMES = re.compile(r"^\s*Runtimes:\s+(?P<list>\S.*?)\s*$")
_DEFAULT = re.compile(r"^\s*Default Runtime:\s+(?P<name>\S+)\s*$")


def read(doc: Doc) -> list[Partial]:
    for i, ln in enumerate(doc.lines):
        m = _RUNTIMES.match(ln.text)
        if not m:
            continue
        runtimes = m.group("list").split()
        nearby = " ".join(x.text for x in doc.lines[max(0, i - 3) : i + 4])
        if not _DEFAULT.search(nearby) and "runc" not in runtimes:
            continue  # a "Runtimes:" line of something else
        return [Partial("docker-info", Snapshot(), ln.no, docker_runtimes=runtimes)]
    return []
