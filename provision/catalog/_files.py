"""Where catalog files live and how they are read: shipped data, overridden by refreshed copies.

``provision catalog refresh`` writes ``offerings_<cloud>.csv`` into the user catalog directory
(``$PROVISION_CATALOG_DIR``, else the platform's user data dir); a file there replaces the shipped
file of the same name. Nothing here touches the network.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from provision.errors import ProvisionError

ENV_DIR = "PROVISION_CATALOG_DIR"


def user_dir() -> Path:
    """Directory of refreshed catalog files (may not exist yet)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    import platformdirs

    return platformdirs.user_data_path("mlrig") / "catalog"


def shipped_names(prefix: str) -> list[str]:
    """Names of the shipped data files that start with ``prefix``, sorted."""
    data = resources.files("provision.catalog").joinpath("data")
    return sorted(p.name for p in data.iterdir() if p.name.startswith(prefix) and p.name.endswith(".csv"))


@dataclass(frozen=True)
class CsvFile:
    """One data file: its rows, its ``#`` header comment and where it came from."""

    name: str
    origin: str
    header: str
    rows: list[dict[str, str]]


def read(name: str, *, allow_override: bool = True) -> CsvFile:
    """Read a catalog CSV by file name, preferring a refreshed copy in the user directory."""
    override = user_dir() / name if allow_override else None
    try:
        if override is not None and override.is_file():
            text, origin = override.read_text("utf-8"), str(override)
        else:
            text = resources.files("provision.catalog").joinpath("data").joinpath(name).read_text("utf-8")
            origin = "shipped"
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"catalog file {name} unreadable: {exc}", hint="reinstall mlrig") from exc
    lines = text.splitlines()
    header = " ".join(line.lstrip("# ").strip() for line in lines if line.startswith("#"))
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    return CsvFile(name=name, origin=origin, header=header, rows=list(csv.DictReader(body)))


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
