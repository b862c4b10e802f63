"""HTTP for the refresh: plain GETs and byte ranges with a timeout, every byte counted, and every
failure one :class:`FetchError` that says whether the host could not be reached at all.

urllib is enough: the refresh talks to package indexes (PyPI's simple API, files.pythonhosted.org)
that answer ordinary GETs and honour ``Range``; a ranged read that a server answers with the whole
file is refused rather than downloading a multi-GB wheel.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPResponse

USER_AGENT = "mlrig-refresh-knowledge/1 (+https://github.com/mlrig/mlrig)"
#: a ranged GET answered with 200 may still be read when the whole body is at most this big
_SMALL_BODY = 4 << 20


class FetchError(Exception):
    """A GET failed. ``unreachable`` is True when no HTTP answer came back (DNS, refused, timeout)."""

    def __init__(self, url: str, reason: str, *, status: int | None = None, unreachable: bool = False):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status
        self.unreachable = unreachable


@dataclass
class Fetcher:
    """Counts requests and bytes so the refresh can print what it cost."""

    timeout: float = 60.0
    requests: int = 0
    bytes_read: int = 0
    #: host -> why it could not be reached (the first failure seen)
    unreachable: dict[str, str] = field(default_factory=dict)

    def _open(self, url: str, headers: dict[str, str]) -> HTTPResponse:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        self.requests += 1
        try:
            resp: HTTPResponse = urllib.request.urlopen(req, timeout=self.timeout)
            return resp
        except urllib.error.HTTPError as exc:
            raise FetchError(url, f"HTTP {exc.code} {exc.reason}", status=exc.code) from None
        except urllib.error.URLError as exc:
            reason = _reason(exc.reason)
            self.unreachable.setdefault(_host(url), reason)
            raise FetchError(url, reason, unreachable=True) from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            reason = _reason(exc)
            self.unreachable.setdefault(_host(url), reason)
            raise FetchError(url, reason, unreachable=True) from None

    def get(self, url: str, *, accept: str | None = None) -> tuple[bytes, str]:
        """The body of ``url`` and its content type."""
        with self._open(url, {"Accept": accept} if accept else {}) as resp:
            body = self._read_all(url, resp)
            return body, resp.headers.get("Content-Type", "")

    def get_range(self, url: str, start: int, end: int) -> bytes:
        """Bytes ``start``..``end`` (inclusive) of ``url``."""
        return b"".join(self.stream_range(url, start, end))

    def stream_range(self, url: str, start: int, end: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Bytes ``start``..``end`` of ``url`` in chunks; stop iterating to stop the download."""
        if end < start:
            return
        with self._open(url, {"Range": f"bytes={start}-{end}"}) as resp:
            status = getattr(resp, "status", 200)
            if status != 206:
                length = int(resp.headers.get("Content-Length") or 0)
                if status != 200 or not length or length > _SMALL_BODY:
                    raise FetchError(url, f"server ignored the byte range (HTTP {status}, {length} bytes)")
                yield self._read_all(url, resp)[start : end + 1]
                return
            while True:
                try:
                    block = resp.read(chunk)
                except (TimeoutError, OSError) as exc:
                    raise FetchError(url, _reason(exc)) from None
                if not block:
                    return
                self.bytes_read += len(block)
                yield block

    def get_tail(self, url: str, length: int) -> tuple[bytes, int]:
        """The last ``length`` bytes of ``url`` and the file's total size (a suffix range)."""
        with self._open(url, {"Range": f"bytes=-{length}"}) as resp:
            total = (resp.headers.get("Content-Range") or "").rpartition("/")[2]
            if getattr(resp, "status", 200) != 206 or not total.isdigit():
                raise FetchError(url, "server does not answer suffix byte ranges")
            return self._read_all(url, resp), int(total)

    def _read_all(self, url: str, resp: HTTPResponse) -> bytes:
        try:
            body: bytes = resp.read()
        except (TimeoutError, OSError) as exc:
            raise FetchError(url, _reason(exc)) from None
        self.bytes_read += len(body)
        return body


def _host(url: str) -> str:
    return urllib.parse.urlparse(url).netloc


def _reason(exc: object) -> str:
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed ({exc.strerror or exc})"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
