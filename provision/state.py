"""The local record of what mlrig launched: SQLite, intent written before every create call.

Write-ahead discipline: a row with status ``intent`` exists before the API call that creates the
resource, and becomes ``created`` (with the cloud's id) or ``failed`` after it. A crash in between
leaves an ``intent`` row, which ``provision down`` resolves by looking the resource up by its
launch-id tag. Each write is its own transaction. No key material or credentials are stored: only
key file paths and the machine's public address.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from provision.errors import ProvisionError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS launches (
    launch_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    cloud TEXT NOT NULL,
    kind TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT,
    spot INTEGER NOT NULL,
    price_per_hour REAL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    running_at REAL,
    ended_at REAL,
    ssh_host TEXT,
    ssh_user TEXT,
    key_path TEXT,
    error TEXT,
    plan_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS launches_name ON launches(name);
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    launch_id TEXT NOT NULL REFERENCES launches(launch_id),
    cloud TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT,
    name TEXT,
    resource_id TEXT,
    token TEXT,
    status TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_launch ON resources(launch_id);
"""

_Row = TypeVar("_Row", "LaunchRow", "ResourceRow")

#: launch statuses that no longer hold anything in the cloud
FINISHED = ("terminated", "failed")


@dataclass(frozen=True)
class LaunchRow:
    launch_id: str
    name: str
    cloud: str
    kind: str
    instance_type: str
    region: str
    zone: str | None
    spot: bool
    price_per_hour: float | None
    status: str
    created_at: float
    running_at: float | None
    ended_at: float | None
    ssh_host: str | None
    ssh_user: str | None
    key_path: str | None
    error: str | None
    plan: dict[str, Any]

    def cost_so_far(self, now: float | None = None) -> float | None:
        """Price x hours since it started running (until it ended), from the price stored at launch."""
        if self.price_per_hour is None or self.running_at is None:
            return None
        end = self.ended_at or (now if now is not None else time.time())
        return round(self.price_per_hour * max(0.0, end - self.running_at) / 3600.0, 4)


@dataclass(frozen=True)
class ResourceRow:
    id: int
    launch_id: str
    cloud: str
    kind: str
    region: str
    zone: str | None
    name: str | None
    resource_id: str | None
    token: str | None
    status: str
    error: str | None


class Store:
    """The SQLite state file; cheap to open, one per command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ProvisionError(
                f"cannot open the state file {path}: {exc}",
                hint="set PROVISION_STATE_DIR to a writable directory",
            ) from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ launches
    def begin_launch(self, plan: Any) -> None:
        """Record a launch before anything is created (``plan`` is a clouds.base.Plan)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO launches (launch_id, name, cloud, kind, instance_type, region, zone,"
                " spot, price_per_hour, status, created_at, key_path, plan_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    plan.launch_id,
                    plan.name,
                    plan.cloud,
                    plan.kind,
                    plan.instance_type,
                    plan.region,
                    plan.zone,
                    int(plan.spot),
                    plan.price_per_hour,
                    "launching",
                    plan.created_at,
                    plan.key_path,
                    json.dumps(plan.to_dict()),
                ),
            )

    def update_launch(self, launch_id: str, **values: Any) -> None:
        allowed = {
            "status",
            "region",
            "zone",
            "spot",
            "price_per_hour",
            "running_at",
            "ended_at",
            "ssh_host",
            "ssh_user",
            "key_path",
            "error",
        }
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"not updatable: {sorted(bad)}")
        if not values:
            return
        cols = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            db.execute(f"UPDATE launches SET {cols} WHERE launch_id = ?", (*values.values(), launch_id))

    def launch(self, launch_id: str) -> LaunchRow | None:
        row = self._db.execute("SELECT * FROM launches WHERE launch_id = ?", (launch_id,)).fetchone()
        return _launch(row) if row else None

    def active_by_name(self, name: str) -> LaunchRow | None:
        """The launch called ``name`` that still holds (or may hold) cloud resources."""
        rows = self._db.execute(
            "SELECT * FROM launches WHERE name = ? ORDER BY created_at DESC", (name,)
        ).fetchall()
        for row in rows:
            lr = _launch(row)
            if lr.status not in FINISHED or self.pending_resources(lr.launch_id):
                return lr
        return None

    def launches(self, include_finished: bool = False) -> list[LaunchRow]:
        rows = self._db.execute("SELECT * FROM launches ORDER BY created_at").fetchall()
        out = [_launch(r) for r in rows]
        if include_finished:
            return out
        return [r for r in out if r.status not in FINISHED or self.pending_resources(r.launch_id)]

    def known_launch_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT launch_id FROM launches").fetchall()}

    # ------------------------------------------------------------------ resources (the journal)
    def intent(
        self,
        launch_id: str,
        cloud: str,
        kind: str,
        region: str,
        *,
        zone: str | None,
        name: str | None,
        token: str | None,
    ) -> int:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO resources (launch_id, cloud, kind, region, zone, name, token, status,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (launch_id, cloud, kind, region, zone, name, token, "intent", now, now),
            )
            return int(cur.lastrowid or 0)

    def set_resource(
        self, row: int, status: str, resource_id: str | None = None, error: str | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET status = ?, resource_id = COALESCE(?, resource_id), error = ?,"
                " updated_at = ? WHERE id = ?",
                (status, resource_id, error, time.time(), row),
            )

    def resources(self, launch_id: str) -> list[ResourceRow]:
        rows = self._db.execute(
            "SELECT * FROM resources WHERE launch_id = ? ORDER BY id", (launch_id,)
        ).fetchall()
        return [_resource(r) for r in rows]

    def pending_resources(self, launch_id: str) -> list[ResourceRow]:
        """Rows that may still exist in the cloud: created, deleting, or intent (outcome unknown)."""
        return [r for r in self.resources(launch_id) if r.status in ("intent", "created", "deleting")]

    def journal(self, launch_id: str, cloud: str) -> StoreJournal:
        return StoreJournal(self, launch_id, cloud)


class StoreJournal:
    """The Journal a driver writes to, bound to one launch."""

    def __init__(self, store: Store, launch_id: str, cloud: str) -> None:
        self.store, self.launch_id, self.cloud = store, launch_id, cloud

    def intent(self, kind: str, region: str, zone: str | None, name: str | None, token: str | None) -> int:
        return self.store.intent(self.launch_id, self.cloud, kind, region, zone=zone, name=name, token=token)

    def created(self, row: int, resource_id: str) -> None:
        self.store.set_resource(row, "created", resource_id=resource_id)

    def failed(self, row: int, error: str) -> None:
        self.store.set_resource(row, "failed", error=error[:500])


def _from_row(cls: type[_Row], row: sqlite3.Row, **converted: Any) -> _Row:
    """Fill a row dataclass from the same-named columns; ``converted`` gives the fields stored otherwise."""
    return cls(**{f.name: row[f.name] for f in fields(cls) if f.name not in converted}, **converted)


def _launch(row: sqlite3.Row) -> LaunchRow:
    return _from_row(LaunchRow, row, spot=bool(row["spot"]), plan=json.loads(row["plan_json"]))


def _resource(row: sqlite3.Row) -> ResourceRow:
    return _from_row(ResourceRow, row)
