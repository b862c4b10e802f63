"""Where catalog files live and how they are read: shipped data, and refreshed copies in the user cache.

``provision catalog refresh`` writes ``offerings_<cloud>.csv`` into the user catalog directory:
``$PROVISION_CATALOG_DIR`` when set (it must exist: a typo must not silently fall back to the
shipped prices), else the platform's user cache dir (``~/.cache/mlrig/catalog`` on Linux). Nothing
here touches the network.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from provision.errors import ProvisionError, UsageError

ENV_DIR = "PROVISION_CATALOG_DIR"


def user_dir() -> Path:
    """Directory of refreshed catalog files; an explicitly set directory must exist."""
    env = os.environ.get(ENV_DIR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise UsageError(
                f"{ENV_DIR}={env} is not a directory",
                hint=f"create it, or unset {ENV_DIR} to use the default catalog cache",
            )
        return path
    import platformdirs

    return platformdirs.user_cache_path("mlrig") / "catalog"


def shipped_names(prefix: str) -> list[str]:
    """Names of the shipped data files that start with ``prefix``, sorted."""
    data = resources.files("provision.catalog").joinpath("data")
    return sorted(p.name for p in data.iterdir() if p.name.startswith(prefix) and p.name.endswith(".csv"))


def user_names(prefix: str) -> list[str]:
    """Names of refreshed files in the user catalog directory that start with ``prefix``."""
    folder = user_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(".csv"))


@dataclass(frozen=True)
class CsvFile:
    """One data file: its rows, its ``#`` header comment and where it came from."""

    name: str
    origin: str
    header: str
    rows: list[dict[str, str]]

    @property
    def fetched(self) -> str | None:
        """The fetch timestamp a refresh wrote into the header ("fetched 2026-12-07T17:30Z ...")."""
        m = re.search(r"\bfetched (\d{4}-\d{2}-\d{2}(?:T[\d:]+Z)?)", self.header)
        return m.group(1) if m else None


def _parse(name: str, text: str, origin: str) -> CsvFile:
    lines = text.splitlines()
    header = " ".join(line.lstrip("# ").strip() for line in lines if line.startswith("#"))
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    return CsvFile(name=name, origin=origin, header=header, rows=list(csv.DictReader(body)))


def read_shipped(name: str) -> CsvFile | None:
    """The shipped data file ``name``, or None when mlrig ships none of that name."""
    ref = resources.files("provision.catalog").joinpath("data").joinpath(name)
    try:
        if not ref.is_file():
            return None
        return _parse(name, ref.read_text("utf-8"), "shipped")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"catalog file {name} unreadable: {exc}", hint="reinstall mlrig") from exc


def read_user(name: str) -> CsvFile | None:
    """The refreshed copy of ``name`` in the user catalog directory, or None."""
    path = user_dir() / name
    if not path.is_file():
        return None
    try:
        return _parse(name, path.read_text("utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(
            f"refreshed catalog file {path} unreadable: {exc}",
            hint="delete it or re-run `provision catalog refresh`",
        ) from exc


def read(name: str, *, allow_override: bool = True) -> CsvFile:
    """A catalog CSV by file name: the refreshed copy when allowed and present, else the shipped one."""
    found = (read_user(name) if allow_override else None) or read_shipped(name)
    if found is None:
        raise ProvisionError(f"catalog file {name} missing", hint="reinstall mlrig")
    return found


_PERIOD = re.compile(r"^(\d{4})(?:-(H[12]|Q[1-4]|\d{2}))?(?:-(\d{2}))?")


def as_of_date(as_of: str) -> dt.date | None:
    """Latest date an ``as_of`` value can mean: "2025-H1" -> 2025-06-30, "2024-04" -> 2024-04-30."""
    m = _PERIOD.match(as_of.strip())
    if not m:
        return None
    year, part, day = int(m.group(1)), m.group(2), m.group(3)
    if part is None:
        return dt.date(year, 12, 31)
    if day is not None:
        return dt.date(year, int(part), int(day))
    if part.startswith("H"):
        month = 6 if part == "H1" else 12
    elif part.startswith("Q"):
        month = int(part[1]) * 3
    else:
        month = int(part)
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def age_days(as_of: str, today: dt.date | None = None) -> int | None:
    """Days since ``as_of`` (at least; periods count from their end), None when undated."""
    date = as_of_date(as_of)
    if date is None:
        return None
    return max(0, ((today or dt.date.today()) - date).days)
