"""Installed distributions, read straight from their dist-info directories.

importlib.metadata would do, but importing it (and the email package it parses METADATA with)
costs ~15 ms of a report whose whole budget is ~0.2 s; the two fields envcheck needs, Version
and Requires-Dist, are plain ``Key: value`` header lines.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from functools import lru_cache

_DIST_DIR = re.compile(r"^(.+?)-([^-]+?)\.(dist-info|egg-info)$")

#: "name[extras] (==1.2.3, ...) ; marker" as in METADATA Requires-Dist: name, specifiers, marker
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*\(?([^;]*?)\)?\s*(?:;(.*))?$")


def canonicalize_name(name: str) -> str:
    """PEP 503 normalised project name (what packaging.utils does, without its import cost)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _headers(dist_dir: str) -> list[tuple[str, str]]:
    """The METADATA (or egg-info PKG-INFO) header fields, in order; [] when unreadable."""
    for fname in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_dir, fname), encoding="utf-8", errors="replace") as fh:
                fields: list[tuple[str, str]] = []
                for line in fh:
                    if not line.strip():
                        break  # the body (long description) follows the first blank line
                    key, sep, value = line.partition(":")
                    if sep and not key.startswith((" ", "\t")):
                        fields.append((key.strip(), value.strip()))
                return fields
        except OSError:
            continue
    return []


def version(dist_dir: str) -> str | None:
    """The Version field of a dist-info directory."""
    return next((v for k, v in _headers(dist_dir) if k.lower() == "version"), None)


def requires(dist_dir: str) -> list[str]:
    """The Requires-Dist lines of a dist-info directory (egg-info: none)."""
    return [v for k, v in _headers(dist_dir) if k.lower() == "requires-dist"]


class DistIndex:
    """dist-info/egg-info directories on a path list: canonical name -> [(directory, version)], path order."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.by_name: dict[str, list[tuple[str, str]]] = {}
        for entry in paths:
            try:
                names = os.listdir(entry)
            except OSError:
                continue
            for fname in names:
                m = _DIST_DIR.match(fname)
                if m:
                    self.by_name.setdefault(canonicalize_name(m.group(1)), []).append(
                        (os.path.join(entry, fname), m.group(2))
                    )

    def find(self, name: str, directory: str | None = None) -> tuple[str, str] | None:
        """(dist-info path, version) of ``name``: the one in ``directory`` if given, else the first."""
        found = self.by_name.get(canonicalize_name(name), [])
        if directory is not None:
            where = os.path.normpath(directory)
            found = [f for f in found if os.path.normpath(os.path.dirname(f[0])) == where]
        if not found:
            return None
        path, dir_version = found[0]
        return path, version(path) or dir_version

    def names_matching(self, pattern: str) -> list[str]:
        return sorted(n for n in self.by_name if re.match(pattern, n))


@lru_cache(maxsize=1)
def _this_interpreter() -> DistIndex:
    return DistIndex(p or os.getcwd() for p in sys.path)


def installed_version(name: str) -> str | None:
    """Version of distribution ``name`` as this interpreter would import it, or None."""
    found = _this_interpreter().find(name)
    return found[1] if found else None
