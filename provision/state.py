"""The local record of what mlrig launched: SQLite, intent written before every create call.

Write-ahead discipline: a row with status ``intent`` exists before the API call that creates the
resource, and becomes ``created`` (with the cloud's id) or ``failed`` after it. A crash in between
leaves an ``intent`` row, which ``provision down`` resolves by the name recorded with the intent or
by the launch-id tag. Each write is its own short transaction, retried until ``timeout`` while
another process holds the file. No key material or credentials are stored: only key file paths and
the machine's public address.

The store also holds the **owner id**: a random id generated once per store (mirrored in the file
``owner-id`` next to it, so a damaged database does not lose it) and tagged on everything launched
from it. Ownership is proven by that id together with the launch id, never by a user name.

**One launch per name at a time**: ``claim(name)`` holds an exclusive SQLite transaction on a small
per-name lock database for as long as ``up`` or ``down`` of that name runs. The operating system
drops the lock when the process dies however it dies, so a lock never outlives a crash; who holds
it (pid, since when) is recorded in the store for the refusal message.

Schema versions live in ``PRAGMA user_version``; a store written by an older release is upgraded
in place when it is opened (see ``_MIGRATIONS``).
"""

from __future__ import annotations

import enum
import json
import os
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from provision.errors import ProvisionError

#: the schema this release writes; stores with a lower version are migrated when opened
SCHEMA_VERSION = 2

#: the schema of mlrig 0.1.0 (user_version 0): every store starts here and is migrated forward
_SCHEMA_V0 = """
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

_OWNER_RE = re.compile(r"^[0-9a-f]{16,32}$")
_Row = TypeVar("_Row", "LaunchRow", "ResourceRow")
_T = TypeVar("_T")


class LaunchStatus(str, enum.Enum):
    """Where a launch stands. Stored as its value, so stores of 0.1.0 read unchanged; a value this
    release does not know (a newer or damaged store) reads as UNKNOWN, which holds its resources."""

    LAUNCHING = "launching"
    RUNNING = "running"
    CLEANING = "cleaning"
    CLEANUP_INCOMPLETE = "cleanup-incomplete"
    FAILED = "failed"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> LaunchStatus:
        return cls.UNKNOWN

    @property
    def finished(self) -> bool:
        """Holds nothing in the cloud any more (unless a resource row says otherwise)."""
        return self in (LaunchStatus.FAILED, LaunchStatus.TERMINATED)


class ResourceStatus(str, enum.Enum):
    """A journal row: ``intent`` before the create call, its outcome after, then the delete."""

    INTENT = "intent"
    CREATED = "created"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"
    #: a value this release does not know: treated as possibly existing (cleanup looks it up)
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ResourceStatus:
        return cls.UNKNOWN

    @property
    def may_exist(self) -> bool:
        """The resource may exist in the cloud (created, being deleted, outcome or status unknown)."""
        return self in (
            ResourceStatus.INTENT,
            ResourceStatus.CREATED,
            ResourceStatus.DELETING,
            ResourceStatus.UNKNOWN,
        )


class StoreError(ProvisionError):
    """The state file cannot be read or written (locked too long, damaged, unwritable)."""


class NameBusy(ProvisionError):
    """Another process is launching (or removing) a machine of this name right now."""


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
    status: LaunchStatus
    created_at: float
    running_at: float | None
    ended_at: float | None
    ssh_host: str | None
    ssh_user: str | None
    key_path: str | None
    error: str | None
    #: the owner tag/label value on this launch's resources (the store's owner id; for launches of
    #: 0.1.0, the user name it tagged then)
    owner_tag: str
    plan: dict[str, Any]
    #: the launch target's id (None: a row whose cloud and kind name no target this release knows)
    target: str | None = None
    #: machines in the launch
    nodes: int = 1

    def cost_so_far(self, now: float | None = None) -> float | None:
        """Price x hours x nodes since it started running (until it ended), from the per-machine price
        stored at launch."""
        if self.price_per_hour is None or self.running_at is None:
            return None
        end = self.ended_at or (now if now is not None else time.time())
        return round(self.price_per_hour * self.nodes * max(0.0, end - self.running_at) / 3600.0, 4)


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
    status: ResourceStatus
    error: str | None
    #: which machine of a cluster (0 = the head), None for side resources
    node_index: int | None = None
    #: "head" or "worker" for machines of a cluster, None otherwise
    role: str | None = None
    #: the journal row this one belongs to (a TPU slice's host -> its node), None otherwise
    parent_id: int | None = None
    #: where a machine (or a slice's host) answers SSH, once it runs
    address: str | None = None


@dataclass(frozen=True)
class Holder:
    """Who holds a name's lock, as that process recorded it."""

    name: str
    pid: int
    host: str
    purpose: str
    since: float

    def describe(self, now: float | None = None) -> str:
        age = max(0.0, (time.time() if now is None else now) - self.since)
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where}, `{self.purpose}` since {_age(age)} ago"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _migrate_v1(db: sqlite3.Connection) -> None:
    """0 -> 1: the owner tag per launch (0.1.0 tagged the user name), the owner id, name holders."""
    db.execute("ALTER TABLE launches ADD COLUMN owner_tag TEXT")
    for launch_id, plan_json in db.execute("SELECT launch_id, plan_json FROM launches").fetchall():
        try:
            owner = str(json.loads(plan_json).get("owner") or "unknown")
        except ValueError:
            owner = "unknown"
        db.execute(
            "UPDATE launches SET owner_tag = ? WHERE launch_id = ?", (legacy_owner_tag(owner), launch_id)
        )
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE holders (name TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL,"
        " purpose TEXT NOT NULL, since REAL NOT NULL)"
    )


def _migrate_v2(db: sqlite3.Connection) -> None:
    """1 -> 2: clusters. Each launch names its launch target and node count; each journal row its
    node index, role (head/worker) and parent row. Old launches get the target their cloud and
    kind meant, and one node."""
    from provision import targets
    from provision.errors import UsageError

    db.execute("ALTER TABLE launches ADD COLUMN target TEXT")
    db.execute("ALTER TABLE launches ADD COLUMN nodes INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE resources ADD COLUMN node_index INTEGER")
    db.execute("ALTER TABLE resources ADD COLUMN role TEXT")
    db.execute("ALTER TABLE resources ADD COLUMN parent_id INTEGER REFERENCES resources(id)")
    db.execute("ALTER TABLE resources ADD COLUMN address TEXT")
    for launch_id, cloud, kind in db.execute("SELECT launch_id, cloud, kind FROM launches").fetchall():
        try:
            target: str | None = targets.for_offering(cloud, kind).id.value
        except UsageError:
            target = None  # a cloud this release cannot launch on: read by cloud and kind as before
        db.execute("UPDATE launches SET target = ? WHERE launch_id = ?", (target, launch_id))


#: schema version -> the step that upgrades the version before it
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_v1, 2: _migrate_v2}


def _is_busy(exc: BaseException) -> bool:
    """Whether SQLite refused because another connection holds the file (worth waiting for)."""
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def legacy_owner_tag(owner: str) -> str:
    """How 0.1.0 turned its owner (the OS user name) into a tag value."""
    return re.sub(r"[^a-z0-9_-]", "-", owner.lower())[:63] or "unknown"


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 if missing; tighten it if it is more open (the store names machines)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Store:
    """The SQLite state file; cheap to open, one per command.

    ``timeout``: how long a write waits for another process that holds the file before it fails
    with StoreError (the caller decides what to do without the store; ``up`` still cleans up).
    """

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.owner_file = path.parent / "owner-id"
        self.lock_dir = path.parent / "locks"
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _private_file(path)
            self._db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the state file {path}: {exc}",
                hint="set PROVISION_STATE_DIR to a writable directory",
            ) from None
        self._db.row_factory = sqlite3.Row
        self._guard(self._setup)
        self.owner_id = self._guard(self._owner)

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._db.close()

    def _broken(self, exc: BaseException) -> StoreError:
        text = str(exc)
        if _is_busy(exc):
            return StoreError(
                f"the state file {self.path} stayed locked for {self.timeout:g}s",
                hint="another provision command is writing it; try again when it is done",
            )
        return StoreError(
            f"the state file {self.path} cannot be used: {text}",
            hint=f"move it aside (mv {self.path} {self.path}.broken); `provision gc` then finds what it "
            f"tracked by the owner id kept in {self.owner_file}",
        )

    def _guard(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` (idempotent: a read, or a write that checks again inside its transaction);
        any SQLite failure becomes one StoreError line with the way out.

        "database is locked" is retried up to ``timeout``: SQLite returns it at once, without
        waiting in its busy handler, when waiting could deadlock, e.g. two processes opening a new
        state file together both switch it to WAL; one of two concurrent ``up`` failed that way.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return fn()
            except StoreError:
                raise
            except (sqlite3.Error, OSError, ValueError) as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise self._broken(exc) from None
                self._rollback()
            time.sleep(0.05)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; retried while another process holds the file, up to ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise self._broken(exc) from None
                time.sleep(0.05)
            except BaseException:
                # a signal handled the moment BEGIN returned must not leave the write lock taken
                self._rollback()
                raise
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise self._broken(exc) from None
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self._guard(lambda: self._db.execute(sql, args).fetchall())

    def _setup(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the state file {self.path} was written by a newer mlrig (schema {version})",
                hint="upgrade mlrig (pip install -U mlrig) to use it",
            )
        if version == SCHEMA_VERSION:
            return
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])  # another process may have won
            if version == 0:
                for statement in _SCHEMA_V0.split(";"):
                    db.execute(statement)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target](db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _owner(self) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'owner_id'").fetchone()
        if row is not None:
            owner = str(row[0])
        else:
            owner = self._kept_owner() or secrets.token_hex(8)
            with self._tx() as db:
                found = db.execute("SELECT value FROM meta WHERE key = 'owner_id'").fetchone()
                if found is None:
                    db.execute("INSERT INTO meta (key, value) VALUES ('owner_id', ?)", (owner,))
                else:
                    owner = str(found[0])
        if self._kept_owner() != owner:
            _private_file(self.owner_file)
            self.owner_file.write_text(owner + "\n")
        return owner

    def _kept_owner(self) -> str | None:
        try:
            text = self.owner_file.read_text().strip()
        except OSError:
            return None
        return text if _OWNER_RE.match(text) else None

    # ------------------------------------------------------------------ launches
    def begin_launch(self, plan: Any) -> None:
        """Record a launch before anything is created (``plan`` is a clouds.base.Plan)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO launches (launch_id, name, cloud, kind, instance_type, region, zone,"
                " spot, price_per_hour, status, created_at, key_path, plan_json, owner_tag, target, nodes)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    LaunchStatus.LAUNCHING.value,
                    plan.created_at,
                    plan.key_path,
                    json.dumps(plan.to_dict()),
                    plan.owner,
                    plan.target,
                    plan.nodes,
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
        args = [v.value if isinstance(v, enum.Enum) else v for v in values.values()]
        with self._tx() as db:
            db.execute(f"UPDATE launches SET {cols} WHERE launch_id = ?", (*args, launch_id))

    def launch(self, launch_id: str) -> LaunchRow | None:
        rows = self._rows("SELECT * FROM launches WHERE launch_id = ?", launch_id)
        return self._guard(lambda: _launch(rows[0])) if rows else None

    def holds_resources(self, row: LaunchRow) -> bool:
        """Not finished, or a journal row says something may still exist."""
        return not row.status.finished or bool(self.pending_resources(row.launch_id))

    def active_by_name(self, name: str) -> LaunchRow | None:
        """The launch called ``name`` that still holds (or may hold) cloud resources."""
        rows = self._rows("SELECT * FROM launches WHERE name = ? ORDER BY created_at DESC", name)
        for row in self._guard(lambda: [_launch(r) for r in rows]):
            if self.holds_resources(row):
                return row
        return None

    def launches(self, include_finished: bool = False) -> list[LaunchRow]:
        rows = self._rows("SELECT * FROM launches ORDER BY created_at")
        out = self._guard(lambda: [_launch(r) for r in rows])
        return out if include_finished else [r for r in out if self.holds_resources(r)]

    def known_launch_ids(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT launch_id FROM launches")}

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
        node_index: int | None = None,
        role: str | None = None,
        parent_id: int | None = None,
    ) -> int:
        """Record a resource about to be created (``intent``), before the call that creates it."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO resources (launch_id, cloud, kind, region, zone, name, token, status,"
                " created_at, updated_at, node_index, role, parent_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    launch_id,
                    cloud,
                    kind,
                    region,
                    zone,
                    name,
                    token,
                    ResourceStatus.INTENT.value,
                    now,
                    now,
                    node_index,
                    role,
                    parent_id,
                ),
            )
            return int(cur.lastrowid or 0)

    def set_resource(
        self,
        row: int,
        status: ResourceStatus,
        resource_id: str | None = None,
        error: str | None = None,
        address: str | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET status = ?, resource_id = COALESCE(?, resource_id), error = ?,"
                " address = COALESCE(?, address), updated_at = ? WHERE id = ?",
                (ResourceStatus(status).value, resource_id, error, address, time.time(), row),
            )

    def nodes(self, launch_id: str) -> list[ResourceRow]:
        """The machines of a launch and the hosts of its slices that may exist, by node index."""
        from provision.clouds.base import MACHINE_KINDS, PART_KINDS

        rows = [r for r in self.pending_resources(launch_id) if r.kind in (*MACHINE_KINDS, *PART_KINDS)]
        return sorted(rows, key=lambda r: (r.node_index or 0, r.id))

    def resources(self, launch_id: str) -> list[ResourceRow]:
        rows = self._rows("SELECT * FROM resources WHERE launch_id = ? ORDER BY id", launch_id)
        return self._guard(lambda: [_resource(r) for r in rows])

    def pending_resources(self, launch_id: str) -> list[ResourceRow]:
        """Rows that may still exist in the cloud: created, deleting, or intent (outcome unknown)."""
        return [r for r in self.resources(launch_id) if r.status.may_exist]

    def journal(self, launch_id: str, cloud: str) -> StoreJournal:
        return StoreJournal(self, launch_id, cloud)

    # ------------------------------------------------------------------ one process per name
    def _lock_conn(self, name: str, wait: float) -> sqlite3.Connection:
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        path = self.lock_dir / f"{name}.lock"
        _private_file(path)
        return sqlite3.connect(str(path), timeout=wait, isolation_level=None)

    @contextmanager
    def claim(self, name: str, purpose: str, wait: float = 1.0) -> Iterator[None]:
        """Hold ``name`` for this process (``up`` or ``down`` of it) or raise NameBusy at once.

        ``wait`` covers a probe by ``ls`` that holds the lock for a moment, nothing longer.
        """
        try:
            conn = self._lock_conn(name, wait)
        except (OSError, sqlite3.Error) as exc:
            raise self._broken(exc) from None
        held = False
        try:  # one try from the start: a signal at any point still closes the lock
            try:
                conn.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError:
                raise self.busy(name) from None
            held = True
            with self._tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO holders (name, pid, host, purpose, since) VALUES (?,?,?,?,?)",
                    (name, os.getpid(), socket.gethostname(), purpose, time.time()),
                )
            yield
        finally:
            if held:
                try:
                    with self._tx() as db:
                        db.execute("DELETE FROM holders WHERE name = ? AND pid = ?", (name, os.getpid()))
                except StoreError:
                    pass  # only the refusal message of a later claimant would be stale
            conn.close()

    def busy(self, name: str) -> NameBusy:
        """The refusal for a name another process holds: who, since when, how to recover."""
        holder = self.holder(name)
        who = holder.describe() if holder else "another provision command"
        stop = f"`kill {holder.pid}`" if holder else "Ctrl-C in its terminal"
        return NameBusy(
            f"{name!r} is being launched or removed right now ({who})",
            hint=f"wait for it, or stop it with {stop} (it cleans up after itself); "
            f"if it was killed, `provision down {name}` removes what it left",
        )

    def holder(self, name: str) -> Holder | None:
        rows = self._rows("SELECT * FROM holders WHERE name = ?", name)
        if not rows:
            return None
        r = rows[0]
        return Holder(r["name"], int(r["pid"]), r["host"], r["purpose"], float(r["since"]))

    def is_claimed(self, name: str, patience: float = 0.25) -> bool:
        """Whether a live process holds ``name`` now (a lock is never left behind by a dead one).

        Tried for ``patience`` seconds: another probe (``ls``, a second ``up``'s preflight) holds
        the lock for a moment, and two probes can refuse each other at once; only a lock held the
        whole time is a claim.
        """
        try:
            conn = self._lock_conn(name, 0.0)
        except (OSError, sqlite3.Error):
            return False
        deadline = time.monotonic() + patience
        try:
            while True:
                try:
                    conn.execute("BEGIN EXCLUSIVE")
                    conn.execute("ROLLBACK")
                    return False
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        return True
                time.sleep(0.01)
        finally:
            conn.close()


class StoreJournal:
    """The Journal a driver writes to, bound to one launch."""

    def __init__(self, store: Store, launch_id: str, cloud: str) -> None:
        self.store, self.launch_id, self.cloud = store, launch_id, cloud

    def intent(
        self,
        kind: str,
        region: str,
        zone: str | None,
        name: str | None,
        token: str | None,
        *,
        node_index: int | None = None,
        role: str | None = None,
    ) -> int:
        return self.store.intent(
            self.launch_id,
            self.cloud,
            kind,
            region,
            zone=zone,
            name=name,
            token=token,
            node_index=node_index,
            role=role,
        )

    def created(self, row: int, resource_id: str) -> None:
        self.store.set_resource(row, ResourceStatus.CREATED, resource_id=resource_id)

    def failed(self, row: int, error: str) -> None:
        self.store.set_resource(row, ResourceStatus.FAILED, error=error[:500])


def _from_row(cls: type[_Row], row: sqlite3.Row, **converted: Any) -> _Row:
    """Fill a row dataclass from the same-named columns; ``converted`` gives the fields stored otherwise."""
    return cls(**{f.name: row[f.name] for f in fields(cls) if f.name not in converted}, **converted)


def _launch(row: sqlite3.Row) -> LaunchRow:
    return _from_row(
        LaunchRow,
        row,
        spot=bool(row["spot"]),
        status=LaunchStatus(row["status"]),
        plan=json.loads(row["plan_json"]),
    )


def _resource(row: sqlite3.Row) -> ResourceRow:
    return _from_row(ResourceRow, row, status=ResourceStatus(row["status"]))
