"""Read single members of a remote wheel (a zip file) with HTTP byte ranges.

A torch wheel is 0.5-3 GB; the facts the refresh needs are in a few kB of METADATA and
``version.py`` and one string inside ``libtorch_python.so``. So: read the end of the file (the
end-of-central-directory record, ZIP64 aware), then the central directory, then only the bytes of
the members asked for. A member can be streamed and the download stopped as soon as a pattern is
found.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from envcheck.knowledge.refresh._http import Fetcher, FetchError

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
#: the end record plus the longest comment a zip can carry
_TAIL = 22 + 0xFFFF + 20
_STORED, _DEFLATED = 0, 8

T = TypeVar("T")


class ZipError(Exception):
    """The remote file is not a zip this reader understands."""


@dataclass(frozen=True)
class Member:
    name: str
    method: int
    compressed_size: int
    size: int
    header_offset: int


class RemoteZip:
    """The members of the zip at ``url`` (``size`` bytes long when the index says), read on demand."""

    def __init__(self, fetcher: Fetcher, url: str, size: int | None = None) -> None:
        self.fetcher = fetcher
        self.url = url
        self.size = size
        self._members: dict[str, Member] | None = None

    def members(self) -> dict[str, Member]:
        if self._members is None:
            self._members = self._read_directory()
        return self._members

    def find(self, predicate: Callable[[str], bool]) -> Member | None:
        """The first member whose name satisfies ``predicate``."""
        return next((m for n, m in self.members().items() if predicate(n)), None)

    def read(self, member: Member, limit: int = 64 << 20) -> bytes:
        """The whole decompressed member (refused above ``limit`` bytes: use ``scan``)."""
        if member.size > limit:
            raise ZipError(f"{member.name} is {member.size} bytes; read refused above {limit}")
        return b"".join(self._chunks(member))

    def scan(self, member: Member, find: Callable[[bytes], T | None], overlap: int = 4096) -> T | None:
        """Stream ``member`` and return the first non-None ``find(window)``; stops the download there.

        ``find`` sees the decompressed data in windows that overlap by ``overlap`` bytes, so a match
        shorter than that is never cut in two.
        """
        tail = b""
        for block in self._chunks(member):
            window = tail + block
            found = find(window)
            if found is not None:
                return found
            tail = window[-overlap:]
        return None

    # ------------------------------------------------------------------ internals

    def _read_directory(self) -> dict[str, Member]:
        if self.size is None:
            tail, self.size = self.fetcher.get_tail(self.url, _TAIL)
        else:
            tail = self.fetcher.get_range(self.url, max(0, self.size - _TAIL), self.size - 1)
        start = self.size - len(tail)
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            raise ZipError("no end-of-central-directory record: not a zip file")
        entries, cd_size, cd_offset = struct.unpack_from("<10xHII", tail, at)
        if 0xFFFFFFFF in (cd_size, cd_offset) or entries == 0xFFFF:
            loc = tail.rfind(_EOCD64_LOCATOR, 0, at)
            if loc < 0:
                raise ZipError("ZIP64 sizes without a ZIP64 locator")
            (eocd64_offset,) = struct.unpack_from("<8xQ", tail, loc)
            rec = eocd64_offset - start
            if rec < 0 or tail[rec : rec + 4] != _EOCD64:
                rec_bytes = self.fetcher.get_range(self.url, eocd64_offset, eocd64_offset + 55)
            else:
                rec_bytes = tail[rec : rec + 56]
            if rec_bytes[:4] != _EOCD64:
                raise ZipError("bad ZIP64 end record")
            entries, cd_size, cd_offset = struct.unpack_from("<32xQQQ", rec_bytes)
        if cd_offset + cd_size > self.size:
            raise ZipError("central directory lies outside the file")
        if cd_offset >= start:
            cd = tail[cd_offset - start : cd_offset - start + cd_size]
        else:
            cd = self.fetcher.get_range(self.url, cd_offset, cd_offset + cd_size - 1)
        return _parse_directory(cd, entries)

    def _chunks(self, member: Member) -> Iterator[bytes]:
        if member.method not in (_STORED, _DEFLATED):
            raise ZipError(f"{member.name}: compression method {member.method} not supported")
        head = self.fetcher.get_range(self.url, member.header_offset, member.header_offset + 29)
        if head[:4] != _LOCAL:
            raise ZipError(f"{member.name}: no local header at {member.header_offset}")
        name_len, extra_len = struct.unpack_from("<HH", head, 26)
        data = member.header_offset + 30 + name_len + extra_len
        raw = self.fetcher.stream_range(self.url, data, data + member.compressed_size - 1)
        if member.method == _STORED:
            yield from raw
            return
        inflate = zlib.decompressobj(-15)
        try:
            for block in raw:
                out = inflate.decompress(block)
                if out:
                    yield out
            rest = inflate.flush()
        except zlib.error as exc:
            raise ZipError(f"{member.name}: {exc}") from None
        if rest:
            yield rest


def _parse_directory(cd: bytes, entries: int) -> dict[str, Member]:
    out: dict[str, Member] = {}
    pos = 0
    for _ in range(entries):
        if cd[pos : pos + 4] != _CENTRAL:
            raise ZipError(f"central directory entry {len(out)} is corrupt")
        flags, method = struct.unpack_from("<HH", cd, pos + 8)
        csize, usize, nlen, elen, clen = struct.unpack_from("<IIHHH", cd, pos + 20)
        (offset,) = struct.unpack_from("<I", cd, pos + 42)
        raw_name = cd[pos + 46 : pos + 46 + nlen]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        extra = cd[pos + 46 + nlen : pos + 46 + nlen + elen]
        usize, csize, offset = _zip64(extra, usize, csize, offset)
        out[name] = Member(name, method, csize, usize, offset)
        pos += 46 + nlen + elen + clen
    return out


def _zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Sizes and offset from the ZIP64 extra field where the 32-bit fields are saturated."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = list(struct.unpack_from(f"<{size // 8}Q", extra, pos + 4))
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
        pos += 4 + size
    return usize, csize, offset


__all__ = ["FetchError", "Member", "RemoteZip", "ZipError"]
