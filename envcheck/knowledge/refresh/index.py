"""A package index as pip sees it: the simple repository API (PEP 503/691), JSON where the index
serves it (PyPI does, with ``Accept: application/vnd.pypi.simple.v1+json``), HTML otherwise
(download.pytorch.org's per-variant indexes), with each file's sha256, Requires-Python, size,
upload time and whether its metadata file is served on its own (PEP 658/714).
"""

from __future__ import annotations

import html.parser
import json
import urllib.parse
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from envcheck.knowledge.refresh._http import Fetcher, FetchError

PYPI = "https://pypi.org/simple/"
ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


@dataclass(frozen=True)
class IndexFile:
    """One file an index lists for a project."""

    filename: str
    url: str
    sha256: str
    size: int | None = None
    requires_python: str | None = None
    upload_time: str | None = None
    yanked: bool = False
    #: the index serves ``<url>.metadata`` (PEP 658 / 714)
    has_metadata: bool = False

    @cached_property
    def wheel(self) -> tuple[Version, frozenset[Tag]] | None:
        """(version, tags) of a wheel; None for an sdist or an unparsable name."""
        if not self.filename.endswith(".whl"):
            return None
        try:
            _, version, _, tags = parse_wheel_filename(self.filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return version, tags

    @property
    def version(self) -> Version | None:
        return self.wheel[0] if self.wheel else None

    def linux_x86_64(self) -> bool:
        """A wheel installable on x86_64 Linux (manylinux, or a plain linux tag as PyTorch uses)."""
        if not self.wheel:
            return False
        return any(
            t.platform == "any" or ("linux" in t.platform and t.platform.endswith("x86_64"))
            for t in self.wheel[1]
        )

    def cpython(self) -> set[str]:
        """The CPython versions it is built for: {"3.12"}, {"3.14t"} (free-threaded)."""
        out: set[str] = set()
        for t in self.wheel[1] if self.wheel else ():
            if t.interpreter.startswith("cp") and t.interpreter[2:].isdigit():
                digits = t.interpreter[2:]
                version = f"{digits[0]}.{digits[1:]}"
                out.add(version + ("t" if t.abi.endswith("t") else ""))
        return out


class SimpleIndex:
    """One index (``base`` ends with "/"); ``files(project)`` lists a project's files."""

    def __init__(self, fetcher: Fetcher, base: str = PYPI) -> None:
        self.fetcher = fetcher
        self.base = base if base.endswith("/") else base + "/"

    @property
    def host(self) -> str:
        return urllib.parse.urlparse(self.base).netloc or self.base

    def project_url(self, project: str) -> str:
        return urllib.parse.urljoin(self.base, project.lower().replace("_", "-") + "/")

    def files(self, project: str) -> list[IndexFile]:
        """Every file of ``project``; raises FetchError when the index cannot be read."""
        url = self.project_url(project)
        body, ctype = self.fetcher.get(url, accept=ACCEPT)
        if "json" in ctype or body.lstrip().startswith(b"{"):
            return _from_json(url, body)
        return _from_html(url, body.decode("utf-8", errors="replace"))


def _from_json(url: str, body: bytes) -> list[IndexFile]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FetchError(url, f"index answered invalid JSON: {exc}") from None
    out = []
    for f in data.get("files", []):
        meta = f.get("core-metadata", f.get("data-dist-info-metadata", False))
        yanked = f.get("yanked", False)
        out.append(
            IndexFile(
                filename=f["filename"],
                url=urllib.parse.urljoin(url, f["url"]),
                sha256=(f.get("hashes") or {}).get("sha256", ""),
                size=f.get("size"),
                requires_python=f.get("requires-python") or None,
                upload_time=f.get("upload-time"),
                yanked=bool(yanked),
                has_metadata=bool(meta),
            )
        )
    return out


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current, self._text = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.found.append((self._current.get("href") or "", self._current, self._text.strip()))
            self._current = None


def _from_html(url: str, text: str) -> list[IndexFile]:
    parser = _Anchors()
    parser.feed(text)
    out = []
    for href, attrs, label in parser.found:
        absolute = urllib.parse.urljoin(url, href)
        path, _, fragment = absolute.partition("#")
        filename = urllib.parse.unquote(path.rsplit("/", 1)[-1]) or label
        sha = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else ""
        meta = attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata")
        out.append(
            IndexFile(
                filename=filename,
                url=path,
                sha256=sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked="data-yanked" in attrs,
                has_metadata=bool(meta) and meta != "false",
            )
        )
    return out
