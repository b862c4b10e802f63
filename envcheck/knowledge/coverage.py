"""How far the knowledge tables reach and how old they are: the newest release each covers, when its
rows were read, and whether an installed release lies outside them (so a verdict can say it rests on
partial knowledge instead of guessing). ``envcheck rules --knowledge`` prints ``tables()``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import cache

from envcheck.knowledge._table import KnowledgeError, files, rows
from envcheck.knowledge._version import vtuple

#: a table whose newest row was read longer ago than this is shown as stale
STALE_DAYS = 120

#: table -> the column whose highest value is "the newest release it covers"
_NEWEST_BY = {
    "torch_builds.csv": "torch",
    "torch_releases.csv": "newest",
    "torch_companions.csv": "torch",
    "tensorflow_builds.csv": "tensorflow",
    "jax_releases.csv": "jax",
    "jax_cuda.csv": "last_jax",
    "cuda_toolkit_drivers.csv": "cuda",
    "cuda_driver_families.csv": "cuda_major",
    "cuda_arch_support.csv": "compute_capability",
    "compute_capabilities.csv": "compute_capability",
}
#: framework -> (table, column) whose rows name the releases the tables know
_RELEASES = {
    "torch": ("torch_releases.csv", "release"),
    "tensorflow": ("tensorflow_builds.csv", "tensorflow"),
    "jax": ("jax_releases.csv", "jax"),
}


@dataclass(frozen=True)
class TableAge:
    name: str
    rows: int
    #: the newest and oldest ``as_of`` among its rows
    newest_as_of: str
    oldest_as_of: str
    #: days since the newest row was read (``today`` - newest_as_of)
    age_days: int
    #: the highest release / version the table lists ("2.15", "13.5.0"); "" when not applicable
    newest: str
    #: rows read from a released artifact (generated) against rows from notes (hand)
    from_artifacts: int
    #: indexes the last refresh could not reach ("" for hand tables)
    unreachable: str

    @property
    def stale(self) -> bool:
        return self.age_days > STALE_DAYS


def tables(today: _dt.date | None = None) -> list[TableAge]:
    """Every knowledge table with its reach and age."""
    today = today or _dt.date.today()
    claims = {r["table"]: r for r in rows("coverage.csv")} if "coverage.csv" in files() else {}
    out = []
    for name in files():
        table = rows(name)
        if not table:
            continue
        dates = sorted(r["as_of"] for r in table)
        column = _NEWEST_BY.get(name)
        values = [r[column] for r in table if column and r.get(column)]
        newest = max(values, key=lambda v: vtuple(v) or (), default="")
        out.append(
            TableAge(
                name=name,
                rows=len(table),
                newest_as_of=dates[-1],
                oldest_as_of=dates[0],
                age_days=(today - _dt.date.fromisoformat(dates[-1])).days,
                newest=newest,
                from_artifacts=sum(
                    1 for r in table if any(v for k, v in r.items() if k.endswith("artifact"))
                ),
                unreachable=claims.get(name, {}).get("indexes_unreachable", ""),
            )
        )
    return out


@cache
def known_releases(framework: str) -> tuple[str, ...]:
    """The releases of ``framework`` the tables list, oldest first ("2.1" ... "2.15" for torch)."""
    if framework not in _RELEASES:
        return ()
    table, column = _RELEASES[framework]
    found = {r[column] for r in rows(table)}
    return tuple(sorted(found, key=lambda v: vtuple(v) or ()))


def _key(framework: str, version: str) -> tuple[int, ...]:
    v = vtuple(version) or ()
    return v if framework == "jax" else v[:2]


def outside(framework: str, version: str | None) -> str | None:
    """ "newer" / "older" when ``version`` ("2.16.0+cu132") lies beyond the releases the tables
    know, None when inside their span (or unknown)."""
    known = known_releases(framework)
    v = vtuple(version) if version else None
    if not known or v is None:
        return None
    if _key(framework, version or "") > _key(framework, known[-1]):
        return "newer"
    if _key(framework, version or "") < _key(framework, known[0]):
        return "older"
    return None


def refreshed(framework: str) -> str | None:
    """When the refresh last read ``framework``'s index (coverage.csv ``as_of``)."""
    if "coverage.csv" not in files():
        return None
    return next((r["as_of"] for r in rows("coverage.csv") if r["framework"] == framework), None)


def span(framework: str) -> str:
    """ "2.1..2.15" for messages ("" when the tables know none)."""
    known = known_releases(framework)
    return f"{known[0]}..{known[-1]}" if known else ""


#: coverage.csv table -> (column naming the release, how many version parts make a release)
_CLAIM_KEYS = {
    "torch_builds.csv": ("torch", 2),
    "tensorflow_builds.csv": ("tensorflow", 2),
    "jax_releases.csv": ("jax", 0),
}


def problems(today: _dt.date | None = None) -> list[str]:
    """Why the tables cannot be trusted as shipped (empty when they can): a release a table claims
    to cover without rows for it, a row without source or date, a date in the future, a row read from
    an artifact without its sha256, a release without its PyPI build. CI runs this
    (tests/knowledge/test_staleness.py)."""
    today = today or _dt.date.today()
    out: list[str] = []
    loaded: dict[str, tuple[dict[str, str], ...]] = {}
    for name in files():
        try:
            table = loaded[name] = rows(name)
        except KnowledgeError as exc:  # no source/as_of column, empty source, bad date: refused on load
            out.append(str(exc))
            continue
        for n, r in enumerate(table, start=1):
            if not r.get("source"):
                out.append(f"{name}: row {n} has no source")
            try:
                if _dt.date.fromisoformat(r.get("as_of", "")) > today:
                    out.append(f"{name}: row {n} is dated {r['as_of']}, after today")
            except ValueError:
                out.append(f"{name}: row {n} has no ISO as_of date")
            if r.get("artifact") and not _is_sha256(r.get("sha256", "")):
                out.append(f"{name}: row {n} names artifact {r['artifact']} without its sha256")
    if "coverage.csv" not in loaded:
        return [*out, "coverage.csv is missing or unreadable: run scripts/refresh_knowledge.py --write"]
    for claim in loaded["coverage.csv"]:
        claimed = claim["table"]
        if claimed not in _CLAIM_KEYS or claimed not in loaded:
            out.append(f"coverage.csv claims {claimed}, which is not a readable generated table")
            continue
        column, parts = _CLAIM_KEYS[claimed]
        have = {_cut(r[column], parts) for r in loaded[claimed]}
        missing = [rel for rel in claim["releases"].split() if _cut(rel, parts) not in have]
        if missing:
            out.append(f"{claimed} claims {claim['framework']} {' '.join(missing)} but has no rows for them")
        if claim["newest"] and claim["newest"] != (claim["releases"].split() or [""])[-1]:
            out.append(f"coverage.csv: {claimed} newest {claim['newest']} is not its last release")
    torch_rows = loaded.get("torch_builds.csv", ())
    for r in loaded.get("torch_releases.csv", ()):
        mine = [b for b in torch_rows if b["torch"] == r["release"]]
        if not any(b["pypi_default"] == "1" and b.get("artifact") for b in mine):
            out.append(f"torch_builds.csv: torch {r['release']} has no PyPI build read from its wheel")
    return out


def _cut(version: str, parts: int) -> str:
    return ".".join(version.split(".")[:parts]) if parts else version


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
