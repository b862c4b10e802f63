"""Tiny, fast parsers for the version spellings envcheck meets (no packaging import needed).

Driver versions ("525.60.13"), CUDA versions ("12.6", "12.5.1", "cu126", 12020), cuDNN versions
("9.1.0.70", "9", 90100, 8902) and framework versions ("2.6.0+cu124") all become int tuples that
compare correctly.
"""

from __future__ import annotations

import re

Version = tuple[int, ...]

_LEADING = re.compile(r"\s*v?(\d+(?:\.\d+)*)")


def vtuple(text: str | int | None) -> Version | None:
    """The leading dotted number of ``text`` as a tuple ("2.6.0+cu124" -> (2, 6, 0)); None if none."""
    if text is None:
        return None
    m = _LEADING.match(str(text))
    if not m:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def vstr(v: Version) -> str:
    return ".".join(str(p) for p in v)


def cuda_mm(value: str | int | None) -> tuple[int, int] | None:
    """CUDA major.minor from "12.6", "12.5.1", "cu126", "cu118" or the API's 12020 encoding."""
    if value is None:
        return None
    if isinstance(value, int) or (value.strip().isdigit() and len(value.strip()) >= 4):
        n = int(value)
        if n <= 0:
            return None
        return n // 1000, (n % 1000) // 10
    text = str(value).strip().lower()
    m = re.fullmatch(r"cu(\d{2,3})", text)
    if m:
        digits = m.group(1)
        return int(digits[:-1]), int(digits[-1])
    v = vtuple(text)
    if v is None or v[0] == 0:
        return None
    return v[0], (v[1] if len(v) > 1 else 0)


def cuda_text(encoded: int | None) -> str | None:
    """CUDA's API encoding 1000*major + 10*minor (12040) as "12.4"; 0 (no driver) or None -> None."""
    mm = cuda_mm(encoded)
    return f"{mm[0]}.{mm[1]}" if mm else None


def cuda_tag(mm: tuple[int, int]) -> str:
    """PyTorch's wheel-index tag for a CUDA version: (12, 6) -> "cu126"."""
    return f"cu{mm[0]}{mm[1]}"


def cudnn_tuple(value: str | int | None) -> Version | None:
    """cuDNN version from "9.1.0.70", "9.3", "9" or the integer cudnnGetVersion gives.

    The integer encoding changed with cuDNN 9: 90100 is 9.1.0 (major*10000 + minor*100 + patch),
    8902 is 8.9.2 (major*1000 + minor*100 + patch).
    """
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit() and len(text) >= 4:
        n = int(text)
        if n >= 90000:
            return n // 10000, (n % 10000) // 100, n % 100
        return n // 1000, (n % 1000) // 100, n % 100
    return vtuple(text)
