"""Read one of the knowledge CSV files: comment lines skipped, every row checked for provenance.

The files live in ``envcheck/knowledge/data``; each row carries ``source`` (where the fact was read)
and ``as_of`` (ISO date it was read). A row without them is a packaging bug, so loading fails
loudly instead of serving an unattributed fact.
"""

from __future__ import annotations

import csv
import datetime as _dt
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")


class KnowledgeError(ValueError):
    """A knowledge file is malformed (missing column, empty source, bad date)."""


@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    """The rows of ``data/<name>`` as dicts, cached; raises KnowledgeError on a malformed file."""
    return parse((DATA_DIR / name).read_text(encoding="utf-8"), name)


def parse(text: str, name: str, *, key: str | None = None) -> tuple[dict[str, str], ...]:
    """The rows of one provenance table's ``text`` (comment lines skipped), each checked for a
    ``source`` and an ISO ``as_of``; raises KnowledgeError naming ``name``, the row and (with
    ``key``) the row's value in that column. Every shipped fact table is read through here."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    fields = reader.fieldnames or []
    for column in ("source", "as_of"):
        if column not in fields:
            raise KnowledgeError(f"{name}: no {column!r} column")
    out: list[dict[str, str]] = []
    for n, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise KnowledgeError(f"{name}: row {n} has {len(row)} cells, header has {len(fields)}")
        where = f"row {n}" + (f" ({row[key]})" if key and row.get(key) else "")
        if not row["source"].strip():
            raise KnowledgeError(f"{name}: {where} has no source")
        try:
            _dt.date.fromisoformat(row["as_of"].strip())
        except ValueError as exc:
            raise KnowledgeError(f"{name}: {where} as_of {row['as_of']!r} is not an ISO date") from exc
        out.append({k: v.strip() for k, v in row.items()})
    return tuple(out)


def files() -> list[str]:
    """Every knowledge CSV shipped with envcheck (for integrity checks and ``envcheck rules``)."""
    return sorted(p.name for p in DATA_DIR.glob("*.csv"))
