"""What the refresh read from an artifact, kept on disk by the artifact's sha256.

A released wheel never changes (its sha256 is in the index), so a fact read from it once (its
METADATA, its ``version.py``, the arch-flags string in its binary) can be reused by every later
refresh: a second run fetches only the index pages. Entries are written atomically; an unreadable
or corrupt entry is a miss, never an error.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Cache:
    """JSON values under ``root/<sha256[:2]>/<sha256>/<key>.json``; ``root`` None disables caching."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.hits = 0

    def _path(self, sha256: str, key: str) -> Path | None:
        if self.root is None or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        return self.root / sha256[:2] / sha256 / f"{_SAFE.sub('_', key)}.json"

    def get(self, sha256: str, key: str) -> Any:
        """The cached value, or None when absent or unreadable."""
        path = self._path(sha256, key)
        if path is None:
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.hits += 1
        return value

    def put(self, sha256: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable); a cache that cannot be written is silently skipped."""
        path = self._path(sha256, key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(value, fh)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError):
            Path(tmp).unlink(missing_ok=True)
