"""The offline price catalog: cloud offerings per cloud, rig parts, storage and electricity rates.

Public API (stable; ``provision up`` and the pricing commands rely on it):

- ``load_offerings() -> list[Offering]``: every rentable shape, validated and integrity-checked.
- ``load_parts() -> Parts``: CPUs, boards, PSUs, RAM kits, NVMe drives, allowances.
- ``summary() -> list[CatalogFile]``: what each data file holds, where it came from and its age.

Data files live in ``provision/catalog/data`` with ``source`` and ``as_of`` on every row; a file of the
same name in the user catalog directory (written by ``provision catalog refresh``) replaces a
shipped offerings file unless the shipped one holds newer prices. Nothing is ever fetched implicitly.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from provision.catalog import _files
from provision.catalog._integrity import problems
from provision.errors import ProvisionError
from provision.models import Offering, OfferingError

if TYPE_CHECKING:
    from provision.catalog._parts import (
        Allowance,
        Board,
        Cpu,
        Drive,
        Part,
        Parts,
        PowerLimits,
        Psu,
        RamKit,
        Rate,
        electricity_rates,
        load_parts,
        power_limits,
        storage_rates,
    )


def __getattr__(name: str) -> Any:
    # the rig parts and rates (the public names not defined here) load on first use: `gpus` needs none
    if name in __all__:
        from provision.catalog import _parts

        return getattr(_parts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Allowance",
    "Board",
    "CatalogFile",
    "Cpu",
    "Drive",
    "Offering",
    "Part",
    "Parts",
    "PowerLimits",
    "Psu",
    "RamKit",
    "Rate",
    "clouds",
    "electricity_rates",
    "load_offerings",
    "load_parts",
    "parse_offerings",
    "power_limits",
    "problems",
    "storage_rates",
    "summary",
]

OFFERINGS_PREFIX = "offerings_"


def clouds() -> list[str]:
    """Clouds with an offerings file, shipped or refreshed into the user catalog directory."""
    names = set(_files.shipped_names(OFFERINGS_PREFIX)) | set(_files.user_names(OFFERINGS_PREFIX))
    return sorted(n[len(OFFERINGS_PREFIX) : -len(".csv")] for n in names)


def parse_offerings(rows: list[dict[str, str]], where: str) -> list[Offering]:
    """CSV rows -> Offerings; a malformed row raises ProvisionError naming file, row and field."""
    out = []
    for i, row in enumerate(rows, start=2):
        clean = {k: v for k, v in row.items() if k and v != ""}
        try:
            out.append(Offering.from_dict(clean))
        except OfferingError as exc:
            raise ProvisionError(
                f"{where} row {i}: {exc.field}: {exc.reason}",
                hint="fix the row or re-run `provision catalog refresh`",
            ) from exc
    return out


@lru_cache(maxsize=1)
def _load_all() -> tuple[tuple[Offering, ...], tuple[CatalogFile, ...]]:
    offers: list[Offering] = []
    files: list[CatalogFile] = []
    for cloud in clouds():
        chosen, rows, note = _choose(f"{OFFERINGS_PREFIX}{cloud}.csv")
        offers.extend(rows)
        files.append(
            CatalogFile.of(
                chosen.name,
                cloud,
                chosen.origin,
                (note + " " if note else "") + chosen.header,
                [(o.as_of, o.source) for o in rows],
                fetched=chosen.fetched,
            )
        )
    bad = problems(offers)
    if bad:
        raise ProvisionError(
            f"catalog integrity: {bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
            hint="delete the refreshed file in the user catalog directory or re-run the refresh",
        )
    return tuple(offers), tuple(files)


def _newest(rows: list[Offering]) -> dt.date:
    return max((_files.as_of_date(o.as_of) or dt.date.min for o in rows), default=dt.date.min)


def _choose(name: str) -> tuple[_files.CsvFile, list[Offering], str]:
    """The refreshed copy of an offerings file unless the shipped one holds newer prices."""
    shipped, refreshed = _files.read_shipped(name), _files.read_user(name)
    shipped_rows = parse_offerings(shipped.rows, name) if shipped else []
    if refreshed is None:
        assert shipped is not None
        return shipped, shipped_rows, ""
    refreshed_rows = parse_offerings(refreshed.rows, refreshed.origin)
    if shipped is not None and _newest(shipped_rows) > _newest(refreshed_rows):
        note = f"(refreshed copy {refreshed.origin} is older than the shipped prices: ignored)"
        return shipped, shipped_rows, note
    return refreshed, refreshed_rows, ""


def load_offerings() -> list[Offering]:
    """Every cloud offering in the catalog (shipped or refreshed), integrity-checked."""
    return list(_load_all()[0])


@dataclass(frozen=True)
class CatalogFile:
    """One data file as ``provision catalog`` shows it."""

    name: str
    kind: str
    origin: str
    rows: int
    as_of: str
    age_days: int | None
    sources: tuple[str, ...]
    note: str
    #: when ``provision catalog refresh`` fetched the file (None for shipped data)
    fetched: str | None = None

    @classmethod
    def of(
        cls,
        name: str,
        kind: str,
        origin: str,
        header: str,
        rows: list[tuple[str, str]],
        *,
        fetched: str | None = None,
    ) -> CatalogFile:
        """Summarise rows of (as_of, source); the oldest as_of is the file's age."""
        dates = sorted(
            {a for a, _ in rows}, key=lambda a: (_files.as_of_date(a) is None, _files.as_of_date(a))
        )
        oldest = dates[0] if dates else ""
        sources = tuple(sorted({s.split(" (")[0].split(";")[0].split(":")[0] for _, s in rows}))
        return cls(
            name,
            kind,
            origin,
            len(rows),
            oldest,
            _files.age_days(oldest) if oldest else None,
            sources,
            header,
            fetched,
        )


def summary() -> list[CatalogFile]:
    """Every data file: offerings per cloud, then parts and rates, with row counts and ages."""
    from provision.catalog._parts import electricity_rates, load_parts, storage_rates

    files = list(_load_all()[1])
    parts = load_parts()
    for name, kind, items in (
        ("parts_cpus.csv", "cpus", parts.cpus),
        ("parts_boards.csv", "boards", parts.boards),
        ("parts_psus.csv", "psus", parts.psus),
        ("parts_ram.csv", "ram", parts.ram),
        ("parts_storage.csv", "nvme", parts.drives),
        ("parts_other.csv", "other", parts.other),
    ):
        header = _files.read(name, allow_override=False).header
        files.append(CatalogFile.of(name, kind, "shipped", header, [(p.price_date, p.source) for p in items]))
    for name, kind, rates in (
        ("storage_prices.csv", "storage", storage_rates()),
        ("electricity.csv", "electricity", electricity_rates()),
    ):
        header = _files.read(name, allow_override=False).header
        files.append(
            CatalogFile.of(name, kind, "shipped", header, [(r.as_of, r.source) for r in rates.values()])
        )
    return files


def reset_cache() -> None:
    """Forget loaded files (after a refresh, or in tests that change PROVISION_CATALOG_DIR)."""
    _load_all.cache_clear()
    parts = sys.modules.get("provision.catalog._parts")  # nothing to forget when never loaded
    if parts is not None:
        for loader in (parts.load_parts, parts.storage_rates, parts.electricity_rates, parts.power_limits):
            loader.cache_clear()
