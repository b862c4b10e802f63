"""NVIDIA driver versus CUDA: family floors (minor-version compatibility) and per-toolkit drivers.

Rule (NVIDIA CUDA Compatibility guide): from CUDA 11 on, code built with any toolkit of a major
family runs on a driver at or above that family's floor; newer drivers run older code. The driver
bundled with each toolkit release is what *every* feature of that release needs (PTX JIT of code
built by that toolkit included). Before CUDA 11 there was no minor-version compatibility: code built
with 10.1 needs the 10.1 driver (418.39), so each 9.x/10.x release is its own floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from envcheck.knowledge._table import rows
from envcheck.knowledge._version import Version, cuda_mm, vtuple


@dataclass(frozen=True)
class DriverCheck:
    """Whether a driver runs code built for one CUDA version, and on what grounds."""

    #: True: runs; False: too old; None: the facts given do not decide it
    ok: bool | None
    #: the lowest driver that runs it under minor-version compatibility ("525.60.13")
    floor: str | None
    #: the driver to recommend when upgrading (the family's first GA driver, at least the floor)
    recommend: str | None
    #: "full" (driver's CUDA >= the build), "minor-version" (same family, older minor), "too-old"
    mode: str


#: a driver version as written ("580.65.06": zero padding matters to people) and as a tuple
_Driver = tuple[Version, str]


def _driver(text: str) -> _Driver:
    v = vtuple(text)
    if v is None:
        raise ValueError(f"not a driver version: {text!r}")
    return v, text


@cache
def _families() -> dict[int, _Driver]:
    return {int(r["cuda_major"]): _driver(r["min_driver"]) for r in rows("cuda_driver_families.csv")}


@cache
def _toolkits() -> tuple[tuple[Version, _Driver], ...]:
    out: list[tuple[Version, _Driver]] = []
    for r in rows("cuda_toolkit_drivers.csv"):
        c = vtuple(r["cuda"])
        if c is None:
            raise ValueError(f"not a CUDA version: {r['cuda']!r}")
        out.append((c, _driver(r["min_driver"])))
    return tuple(sorted(out))


#: the first CUDA major with minor-version compatibility
MINOR_COMPAT_FROM = 11


def floor(cuda: tuple[int, int]) -> str | None:
    """The lowest driver that runs code built with CUDA ``cuda`` (major, minor).

    CUDA 11+: the family floor (minor-version compatibility). Before: the driver of that x.y's GA
    release ("10.1" -> "418.39"), since each release needed its own driver.
    """
    if cuda[0] >= MINOR_COMPAT_FROM:
        return family_floor(cuda[0])
    return toolkit_driver(f"{cuda[0]}.{cuda[1]}")


def family_floor(cuda_major: int) -> str | None:
    """The minor-version-compatibility floor of a CUDA major family ("525.60.13" for 12)."""
    d = _families().get(cuda_major)
    return d[1] if d else None


def toolkit_driver(cuda: str) -> str | None:
    """The driver bundled with a toolkit: exact for "12.4.1", the GA release's for "12.4"."""
    want = vtuple(cuda)
    if want is None:
        return None
    matches = [d for c, d in _toolkits() if c[: len(want)] == want]
    return min(matches)[1] if matches else None


def toolkit_releases(cuda: str | None = None) -> list[tuple[str, str]]:
    """Known toolkit releases as (version, bundled driver), oldest first; ``cuda`` "12.6" filters."""
    want = vtuple(cuda) if cuda else ()
    return [(".".join(map(str, c)), d[1]) for c, d in _toolkits() if c[: len(want or ())] == want]


def recommended_driver(cuda_major: int) -> str | None:
    """The driver to tell people to install for a family: its floor or first GA driver, whichever is newer."""
    family = _families().get(cuda_major)
    ga_text = toolkit_driver(f"{cuda_major}.0")
    candidates = [d for d in (family, _driver(ga_text) if ga_text else None) if d]
    return max(candidates)[1] if candidates else None


def highest_cuda(driver: str) -> tuple[int, int] | None:
    """The newest CUDA x.y whose toolkit driver ``driver`` meets ("410.104" -> (10, 0)): what the
    driver reports as its CUDA version, estimated from the table when NVML did not say."""
    d = vtuple(driver)
    if d is None:
        return None
    met = [c for c, (dv, _) in _toolkits() if d >= dv]
    return (met[-1][0], met[-1][1]) if met else None


def newest_family(driver: str) -> int | None:
    """The highest CUDA major whose family floor ``driver`` meets (None if it meets none)."""
    d = vtuple(driver)
    if d is None:
        return None
    ok = [major for major, family in _families().items() if d >= family[0]]
    return max(ok) if ok else None


def check(
    cuda: str | int | tuple[int, int], *, driver: str | None = None, driver_cuda: str | int | None = None
) -> DriverCheck:
    """Can a driver run code built for ``cuda``? ``driver`` is its version ("535.54.03"),
    ``driver_cuda`` the highest CUDA it reports (12020 or "12.2"). Either may be None."""
    want = cuda if isinstance(cuda, tuple) else cuda_mm(cuda)
    if want is None:
        return DriverCheck(None, None, None, "unknown")
    compat = want[0] >= MINOR_COMPAT_FROM
    lowest = floor(want)
    recommend = recommended_driver(want[0]) if compat else lowest
    ceiling = cuda_mm(driver_cuda) if driver_cuda else None
    dver = vtuple(driver) if driver else None
    if ceiling is not None and ceiling >= want:
        return DriverCheck(True, lowest, recommend, "full")
    if dver is not None and lowest is not None:
        runs = dver >= (vtuple(lowest) or ())
        if runs and ceiling is not None and (ceiling[0] < want[0] or not compat):
            runs = False  # the driver itself says its CUDA is older (no minor-version rescue before 11)
        mode = ("minor-version" if compat else "full") if runs else "too-old"
        return DriverCheck(runs, lowest, recommend, mode)
    if ceiling is not None:
        if ceiling[0] > want[0]:
            return DriverCheck(True, lowest, recommend, "full")
        if ceiling[0] < want[0] or not compat:
            return DriverCheck(False, lowest, recommend, "too-old")
        # same family, older minor: runs if the driver meets the floor, which every GA driver of
        # 12.x and 13.x does; 11.0's GA driver (450.51) is below 11.x's floor, so only trust >= 12
        return DriverCheck(True if want[0] >= 12 else None, lowest, recommend, "minor-version")
    return DriverCheck(None, lowest, recommend, "unknown")
