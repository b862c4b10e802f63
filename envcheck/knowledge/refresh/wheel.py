"""The facts of one released wheel, read with as few bytes as the index allows and cached by sha256.

METADATA comes from the index's own ``.metadata`` file when it serves one (PEP 658), else from
the wheel's central directory and that one member. A small source file (``torch/version.py``,
TensorFlow's ``build_info.py``) is read the same way. The arch-flags string is looked for in one
shared library, streamed and stopped as soon as it is found.
"""

from __future__ import annotations

import email.parser
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

from envcheck.knowledge import archs
from envcheck.knowledge.refresh._cache import Cache
from envcheck.knowledge.refresh._http import Fetcher, FetchError
from envcheck.knowledge.refresh._zip import Member, RemoteZip, ZipError
from envcheck.knowledge.refresh.index import IndexFile

#: the platform every table describes (official wheels for x86_64 Linux)
ENVIRONMENT = {
    "platform_system": "Linux",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


#: bump when the arch-flags search changes, so cached answers (including "none found") are re-read
ARCH_FLAGS_READER = 2
#: the same for the nvcc ``-gencode`` flags search
GENCODE_READER = 1


class WheelError(Exception):
    """A fact could not be read from a wheel (with the reason)."""


@dataclass
class Metadata:
    """The fields of METADATA the tables use."""

    name: str
    version: str
    requires_python: str | None
    requires_dist: list[str] = field(default_factory=list)

    def pins(self, *, extra: str | None = None, python: str = "3.12") -> dict[str, str]:
        """``name -> version`` for every ``==`` requirement that applies on x86_64 Linux.

        ``extra`` includes that extra's requirements ("and-cuda", "with-cuda", "cublas"); a
        trailing ``.*`` ("13.4.1.3.*") is dropped.
        """
        out: dict[str, str] = {}
        for req in self.requirements(extra=extra, python=python):
            for spec in req.specifier:
                if spec.operator == "==":
                    out[req.name.lower()] = spec.version.removesuffix(".*")
        return out

    def floors(self, *, extra: str | None = None, python: str = "3.12") -> dict[str, str]:
        """Like ``pins``, falling back to the ``>=`` lower bound ("nvidia-cudnn-cu12>=9.3.0.75,<10"
        -> "9.3.0.75": the version the release was built and tested with)."""
        out: dict[str, str] = {}
        for req in self.requirements(extra=extra, python=python):
            exact = [s.version for s in req.specifier if s.operator == "=="]
            lower = [s.version for s in req.specifier if s.operator == ">="]
            if exact or lower:
                out[req.name.lower()] = (exact or lower)[0].removesuffix(".*")
        return out

    def specs(self, *, extra: str | None = None, python: str = "3.12") -> dict[str, str]:
        """``name -> specifier text`` (">=9.8,<10") of every requirement that applies."""
        return {r.name.lower(): str(r.specifier) for r in self.requirements(extra=extra, python=python)}

    def requirements(self, *, extra: str | None = None, python: str = "3.12") -> list[Requirement]:
        env = {**ENVIRONMENT, "python_version": python, "python_full_version": f"{python}.0"}
        out = []
        for line in self.requires_dist:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            marker: Marker | None = req.marker
            if marker is not None:
                if not marker.evaluate({**env, "extra": extra or ""}):
                    continue
                if extra is None and "extra" in str(marker):
                    continue
            out.append(req)
        return out


def parse_metadata(text: str) -> Metadata:
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    return Metadata(
        name=msg.get("Name", ""),
        version=msg.get("Version", ""),
        requires_python=msg.get("Requires-Python"),
        requires_dist=list(msg.get_all("Requires-Dist") or []),
    )


class WheelReader:
    """Reads facts from wheels through one Fetcher and one Cache."""

    def __init__(self, fetcher: Fetcher, cache: Cache) -> None:
        self.fetcher = fetcher
        self.cache = cache
        self._zips: dict[str, RemoteZip] = {}

    def _zip(self, f: IndexFile) -> RemoteZip:
        if f.url not in self._zips:
            self._zips[f.url] = RemoteZip(self.fetcher, f.url, f.size)
        return self._zips[f.url]

    def _cached(self, f: IndexFile, key: str, read: Callable[[], Any]) -> Any:
        hit = self.cache.get(f.sha256, key)
        if hit is not None:
            return hit["value"]
        try:
            value = read()
        except (FetchError, ZipError) as exc:
            raise WheelError(f"{f.filename}: {exc}") from None
        self.cache.put(f.sha256, key, {"value": value, "artifact": f.filename})
        return value

    def metadata(self, f: IndexFile) -> Metadata:
        """METADATA of the wheel: the index's ``.metadata`` file, else the dist-info member."""

        def read() -> str:
            if f.has_metadata:
                try:
                    body, _ = self.fetcher.get(f.url + ".metadata")
                    return body.decode("utf-8", errors="replace")
                except FetchError:
                    pass  # advertised but not served: read it from the wheel
            member = self._zip(f).find(lambda n: n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
            if member is None:
                raise ZipError("no *.dist-info/METADATA member")
            return self._zip(f).read(member).decode("utf-8", errors="replace")

        return parse_metadata(self._cached(f, "METADATA", read))

    def text_member(self, f: IndexFile, path: str) -> str | None:
        """A small text member (``torch/version.py``); None when the wheel has none."""

        def read() -> str:
            member = self._zip(f).members().get(path)
            return (
                "" if member is None else self._zip(f).read(member, limit=1 << 20).decode("utf-8", "replace")
            )

        text = self._cached(f, path, read)
        return text or None

    def arch_flags(self, f: IndexFile, libraries: tuple[str, ...]) -> tuple[list[str], str] | None:
        """The arch-flags string compiled into the first of ``libraries`` that holds one, and that
        library's path; None when none does. Each library is streamed and the download stopped at
        the string."""

        def read() -> list[str] | None:
            for suffix in libraries:
                member = self._zip(f).find(lambda n, s=suffix: n.endswith(s))  # type: ignore[misc]
                if member is None:
                    continue
                found = self._zip(f).scan(member, _flags_in)
                if found is not None:
                    return [member.name, *found]
            return None

        value = self._cached(f, f"arch_flags-v{ARCH_FLAGS_READER}:" + ",".join(libraries), read)
        if not value:
            return None
        return list(value[1:]), value[0]

    def text_member_ending(self, f: IndexFile, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
        """(name, text) of the first small member whose name ends with one of ``suffixes`` (the same
        file sits under ``tensorflow/``, ``tensorflow_core/`` or ``<dist>.data/purelib/`` by release);
        None when the wheel has none."""

        def read() -> list[str] | None:
            for suffix in suffixes:
                member = self._zip(f).find(lambda n, s=suffix: n.endswith(s))  # type: ignore[misc]
                if member is not None:
                    text = self._zip(f).read(member, limit=1 << 20).decode("utf-8", "replace")
                    return [member.name, text]
            return None

        value = self._cached(f, "member:" + ",".join(suffixes), read)
        return (value[0], value[1]) if value else None

    def gencode_flags(self, f: IndexFile, libraries: tuple[str, ...]) -> tuple[list[str], str] | None:
        """The arch list named by nvcc's ``-gencode`` flags string in the first of ``libraries`` that
        holds one (torch 1.2-1.5 keep it for ``torch.__config__.show()``), and that library's path."""

        def read() -> list[str] | None:
            for suffix in libraries:
                member = self._zip(f).members().get(suffix)
                if member is None:
                    continue
                found = self._zip(f).scan(member, archs.find_gencode_flags)
                if found is not None:
                    return [member.name, *found]
            return None

        value = self._cached(f, f"gencode-v{GENCODE_READER}:" + ",".join(libraries), read)
        if not value:
            return None
        return list(value[1:]), value[0]

    def member_names(self, f: IndexFile) -> list[str]:
        return list(self._zip(f).members())

    def member(self, f: IndexFile, name: str) -> Member | None:
        return self._zip(f).members().get(name)


def _flags_in(window: bytes) -> tuple[str, ...] | None:
    hit = archs.find_arch_flags(window)
    return hit[0] if hit else None


def literal_assignments(source: str) -> dict[str, Any]:
    """Module-level ``name = <literal>`` assignments of a Python file (``version.py``), not executed."""
    from envcheck.probes.frameworks import literal_assignments as parse

    try:
        return parse(source)
    except SyntaxError:
        return {}


__all__ = ["Metadata", "WheelError", "WheelReader", "literal_assignments", "parse_metadata"]
