"""Readers for other people's reports: an envcheck JSON file or PyTorch collect_env text.

``load`` decides which one it was given, so ``envcheck diagnose FILE`` accepts either, pasted
raw or as GitHub shows it (fences, ``<details>``). The returned Report carries no findings for
collect_env text: the caller re-evaluates today's rules on the Snapshot.
"""

from __future__ import annotations

import datetime as _dt
import re

from envcheck import __version__
from envcheck.errors import UsageError
from envcheck.ingest import collect_env
from envcheck.ingest._json import load_json
from envcheck.ingest._text import unwrap
from envcheck.models import Report

__all__ = ["load"]

_HINT = "give a file written by `envcheck --json`, or the output of `python -m torch.utils.collect_env`"


def load(text: str, origin: str) -> Report:
    """The Report in ``text`` (``origin`` names it in error messages: a path or "stdin")."""
    body = unwrap(text)
    if not body:
        raise UsageError(f"{origin}: empty input", hint=_HINT)
    lines = collect_env.looks_like(body)
    if body.startswith("{") or (body.startswith("[") and lines == 0):
        return load_json(body, origin)
    if lines == 0 and (start := re.search(r"^\{", body, re.MULTILINE)):  # JSON after a shell prompt
        return load_json(body[start.start() :], origin)
    if lines == 0:
        first = body.split("\n", 1)[0][:60]
        raise UsageError(
            f"{origin}: neither an envcheck JSON report nor collect_env output (starts {first!r})",
            hint=_HINT,
        )
    snapshot = collect_env.parse(body, origin)
    return Report(
        tool_version=__version__,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        snapshot=snapshot,
    )
