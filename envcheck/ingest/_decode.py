"""Bytes to text for a report someone saved or piped: any common encoding, never an exception.

PowerShell's ``>`` writes UTF-16 LE with a BOM; Windows editors add a UTF-8 BOM; a file copied
from a terminal can be UTF-16 without a BOM or carry a stray byte. Each is read as what it is;
bytes that fit no encoding become U+FFFD instead of an error, because a report with one bad byte
still holds its facts.
"""

from __future__ import annotations

import codecs

__all__ = ["decode"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM shows as NULs in every other byte of its ASCII characters."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.6 * half and even < 0.1 * half:
        return data.decode("utf-16-le", errors="replace")
    if even > 0.6 * half and odd < 0.1 * half:
        return data.decode("utf-16-be", errors="replace")
    return None


def decode(data: bytes | str) -> str:
    """The text in ``data``: BOM-declared UTF-8/16/32, BOM-less UTF-16, UTF-8, else Windows-1252."""
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    sniffed = _utf16_without_bom(data)
    if sniffed is not None:
        return sniffed
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    # mostly valid UTF-8 with a few bad bytes: keep UTF-8; otherwise a legacy Windows code page
    if text.count("\ufffd") * 50 < len(text):
        return text
    return data.decode("cp1252", errors="replace")
