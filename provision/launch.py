"""``provision up`` and ``provision down`` acting on a Plan: failover, journalling, cleanup.

The rules this module keeps:

* **One process per name.** ``up`` and ``down`` hold the name's lock in the store for as long as
  they act (``Store.claim``); a second one is refused at once with who holds it and since when.
* **Resume only the same launch.** An ``up`` that finds an interrupted launch of its name resumes
  it only when its plan creates the same things (``Plan.resume_identity``); otherwise it is
  refused with the ``down`` command that finishes the old one.
* **Nothing is left behind.** Whatever happens after the launch is recorded (an API error, a fatal
  failover, SIGINT/SIGTERM/SIGHUP, a store that stops answering), everything this launch created
  is deleted before the exception leaves ``up``. The journal is mirrored in memory, so cleanup
  works even when the store does not, and prints what it could not record. A second signal stops
  the cleanup, leaves the record saying what remains, and names ``provision down NAME``.
* **Only what is ours.** Cleanup deletes a resource only after looking it up (by its recorded id,
  or by the name recorded with the intent before the create call) and finding the owner id and
  launch id we tagged on it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provision import sshconfig, targets
from provision.clouds.base import (
    DELETE_ORDER,
    MACHINE_KINDS,
    PART_KINDS,
    Attempt,
    AttemptError,
    FailureKind,
    LaunchFailed,
    Placement,
    Provider,
    Resource,
)
from provision.errors import CleanupInterrupted, ProvisionError, UsageError
from provision.plan import Plan, resume_identity, role_of
from provision.planning import placements
from provision.settings import Settings
from provision.state import (
    LaunchRow,
    LaunchStatus,
    ResourceRow,
    ResourceStatus,
    Store,
    StoreError,
    StoreJournal,
)

_RETRIES = 3


class Progress(Protocol):
    """Where ``up``/``down`` report what they are doing (a spinner in the CLI, a list in tests)."""

    def step(self, message: str) -> None: ...

    def note(self, message: str) -> None: ...

    def tick(self, message: str) -> None:
        """Update the current step in place (elapsed time); shown on a terminal only."""


class SilentProgress:
    def step(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def tick(self, message: str) -> None:
        pass


@dataclass
class UpResult:
    plan: Plan
    #: every machine of the launch, head first
    machines: list[Resource]
    attempts: list[Attempt] = field(default_factory=list)
    ssh_alias: str | None = None

    @property
    def machine(self) -> Resource:
        """The head (the only machine of a one-node launch)."""
        return self.machines[0]


# --------------------------------------------------------------------------- keys
def ensure_key(settings: Settings, plan: Plan) -> None:
    """Generate the launch's ed25519 key pair at ``plan.key_path`` (private key 0600), unless
    --key-name names an existing one. Runs after the launch is recorded, so no key is ever made
    for a launch the store does not know."""
    if plan.key_name or not plan.key_path:
        return
    key = Path(plan.key_path)
    if key.exists() and Path(f"{key}.pub").exists():
        return
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in (key, Path(f"{key}.pub")):  # half a pair from an interrupted ssh-keygen
        stale.unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"mlrig-{plan.name}", "-f", str(key)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(
            f"could not run ssh-keygen: {exc}", hint="install OpenSSH (ssh-keygen)"
        ) from None
    if proc.returncode != 0:
        raise ProvisionError(f"ssh-keygen failed: {proc.stderr.strip()[:200]}")
    os.chmod(key, 0o600)


def forget_key(key_path: str | None) -> None:
    """Delete a launch's key pair files (only ever ours: files in a ``keys`` directory)."""
    if key_path and Path(key_path).parent.name == "keys":
        for path in (Path(key_path), Path(f"{key_path}.pub")):
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- ssh wait
def wait_ssh(
    host: str,
    port: int,
    timeout: float,
    interval: float,
    on_tick: Callable[[float], None] | None = None,
) -> None:
    """Until something on ``host:port`` says ``SSH-`` (sshd answers before the key is exchanged).

    ``on_tick(elapsed)`` is called between attempts (the CLI shows elapsed/limit on a terminal).
    """
    start = time.monotonic()
    deadline = start + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if on_tick:
            on_tick(time.monotonic() - start)
        try:
            with socket.create_connection((host, port), timeout=min(5.0, timeout)) as sock:
                sock.settimeout(min(5.0, timeout))
                if sock.recv(64).startswith(b"SSH-"):
                    return
                last = "not an SSH server"
        except OSError as exc:
            last = exc.strerror or str(exc)
        time.sleep(interval)
    raise ProvisionError(
        f"SSH on {host}:{port} did not answer within {timeout:g}s ({last})",
        hint="raise --ssh-timeout (PROVISION_SSH_TIMEOUT), or launch with --wait running",
    )


# --------------------------------------------------------------------------- the record of a launch
@dataclass
class Entry:
    """One journal row, held in memory too (cleanup must not depend on the store answering)."""

    kind: str
    region: str
    zone: str | None
    name: str | None
    resource_id: str | None
    status: ResourceStatus
    #: the row in the store (None: it could not be written)
    row: int | None = None


@dataclass
class Record:
    """What cleanup needs to know of a launch: from the store, or from memory when it failed."""

    launch_id: str
    name: str
    target: targets.Target
    owner_tag: str
    region: str
    key_path: str | None
    entries: list[Entry]

    @property
    def cloud(self) -> str:
        return self.target.cloud

    @classmethod
    def from_store(cls, row: LaunchRow, store: Store) -> Record:
        return cls(
            row.launch_id,
            row.name,
            targets.for_launch(row),
            row.owner_tag,
            row.region,
            row.key_path,
            [_entry(r) for r in store.resources(row.launch_id)],
        )

    @classmethod
    def from_plan(cls, plan: Plan, entries: list[Entry]) -> Record:
        return cls(
            plan.launch_id,
            plan.name,
            targets.get(plan.target),
            plan.owner or "",
            plan.region,
            plan.key_path,
            entries,
        )

    @property
    def regions(self) -> list[str]:
        return sorted({self.region, *(e.region for e in self.entries)} - {"global"} or {self.region})


def _entry(r: ResourceRow) -> Entry:
    return Entry(r.kind, r.region, r.zone, r.name, r.resource_id, r.status, r.id)


class Book:
    """Store writes that never stop cleanup: the first failure is kept, later writes skipped
    (each would wait out the store's timeout again), and everything unrecorded is listed."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self.unrecorded: list[str] = []
        self.failure: StoreError | None = None

    def _write(self, what: str, fn: Callable[[Store], None]) -> None:
        if self.store is None or self.failure is not None:
            self.unrecorded.append(what)
            return
        try:
            fn(self.store)
        except StoreError as exc:
            self.failure = exc
            self.unrecorded.append(what)

    def launch(self, launch_id: str, what: str, **values: object) -> None:
        self._write(what, lambda s: s.update_launch(launch_id, **values))

    def resource(self, entry: Entry, status: ResourceStatus, error: str | None = None) -> None:
        entry.status = status
        if entry.row is None:
            self.unrecorded.append(f"{entry.kind} {entry.resource_id or entry.name}: {status.value}")
            return
        row = entry.row
        self._write(
            f"{entry.kind} {entry.resource_id or entry.name}: {status.value}",
            lambda s: s.set_resource(row, status, error=error),
        )


class MirroredJournal(StoreJournal):
    """The Journal a driver writes to: the store first (an intent that cannot be written stops the
    launch before the create call), and always the in-memory copy."""

    def __init__(self, store: Store, launch_id: str, cloud: str, entries: list[Entry]) -> None:
        super().__init__(store, launch_id, cloud)
        self.entries = entries
        self._rows: dict[int, Entry] = {}

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
        row = super().intent(kind, region, zone, name, token, node_index=node_index, role=role)
        entry = Entry(kind, region, zone, name, None, ResourceStatus.INTENT, row)
        self.entries.append(entry)
        self._rows[row] = entry
        return row

    def created(self, row: int, resource_id: str) -> None:
        entry = self._rows[row]
        entry.resource_id, entry.status = resource_id, ResourceStatus.CREATED
        super().created(row, resource_id)

    def failed(self, row: int, error: str) -> None:
        self._rows[row].status = ResourceStatus.FAILED
        super().failed(row, error)


# --------------------------------------------------------------------------- resume
def check_resumable(previous: LaunchRow, plan: Plan, now: float | None = None) -> None:
    """Raise unless ``plan`` may continue ``previous`` (an interrupted launch of the same name)."""
    name = plan.name
    if previous.status != LaunchStatus.LAUNCHING:
        leftover = previous.status != LaunchStatus.RUNNING
        raise UsageError(
            f"a machine named {name!r} already exists ({previous.status.value})",
            hint=f"`provision down {name}` removes what is left of it"
            if leftover
            else f"pick another --name, or `provision down {name}` first",
        )
    before, wanted = resume_identity(previous.plan), plan.resume_identity()
    changed = [k for k in wanted if before.get(k) != wanted[k]]
    if changed:
        age = max(0.0, (time.time() if now is None else now) - previous.created_at)
        what = ", ".join(f"{k} {_show(before.get(k))} -> {_show(wanted[k])}" for k in changed[:4])
        raise UsageError(
            f"{name!r} has an interrupted launch ({previous.cloud} {previous.instance_type}, "
            f"started {age / 60:.0f} min ago) that this one does not match: {what}",
            hint=f"run `provision down {name}` to remove what it left, then launch again "
            "(the same command as before finishes it instead)",
        )


def _show(value: object) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def _resumed_machines(plan: Plan, provider: Provider, store: Store, progress: Progress) -> list[Resource]:
    """The machines an interrupted run of this launch created, looked up by what its journal says.

    Reused only when the whole cluster is there; a partial one is removed (never kept beside a new
    one) and the launch starts over."""
    target = targets.get(plan.target)
    rows = [r for r in store.pending_resources(plan.launch_id) if r.kind in MACHINE_KINDS]
    found: dict[str, Resource] = {}
    for r in rows:
        where = _addressable(_entry(r), target)
        candidates = [provider.refresh(where)] if where else provider.find(plan, r.region)
        for res in candidates:
            if res.alive and res.owned_by(plan.owner or "", plan.launch_id):
                found.setdefault(res.id, res)
    machines = sorted(found.values(), key=lambda m: m.node_index or 0)
    if machines and len(machines) == plan.nodes:
        for r, m in zip(sorted(rows, key=lambda r: r.node_index or 0), machines, strict=False):
            store.set_resource(r.id, ResourceStatus.CREATED, resource_id=m.id)
        zone = machines[0].zone
        progress.note(f"found this launch's {len(machines)} machine(s) already in {zone}; reusing them")
        return machines
    for res in machines:  # a partial cluster: removed before the launch starts over
        progress.note(
            f"removing {res.id}: the interrupted launch left {len(machines)} of {plan.nodes} machines"
        )
        provider.delete(res)
    for r in rows:
        store.set_resource(r.id, ResourceStatus.FAILED, error="not found whole when the launch was resumed")
    return []


# --------------------------------------------------------------------------- up
def preflight(plan: Plan, store: Store) -> LaunchRow | None:
    """Before asking the user: refuse a plan that clashes with a launch of the same name now (the
    authoritative check is repeated under the name's lock by ``up``). The previous launch to
    resume, if any."""
    if store.is_claimed(plan.name):
        raise store.busy(plan.name)
    previous = store.active_by_name(plan.name)
    if previous is not None:
        check_resumable(previous, plan)
    return previous


def up(
    plan: Plan, provider: Provider, store: Store, settings: Settings, progress: Progress | None = None
) -> UpResult:
    """Launch ``plan`` (or resume its interrupted launch); on any exception, signals included,
    delete what was created, then re-raise."""
    progress = progress or SilentProgress()
    plan.check_launchable()
    provider.check_credentials()  # imports the SDK before anything is recorded (Ctrl-C there is free)
    with store.claim(plan.name, "provision up"):
        previous = store.active_by_name(plan.name)
        if previous is None:
            store.begin_launch(plan)
        else:
            check_resumable(previous, plan)
            plan = plan.resuming(
                previous.launch_id, previous.created_at, previous.key_path, previous.owner_tag
            )
            progress.note(f"resuming the interrupted launch {plan.launch_id} of {plan.name}")
        run = _Run(plan, provider, store, settings, progress)
        try:
            return run.launch(resumed=previous is not None)
        except BaseException as exc:
            run.clean_up_after(exc)
            raise


@dataclass
class _Run:
    """One ``up`` of one plan, with the in-memory copy of its journal."""

    plan: Plan
    provider: Provider
    store: Store
    settings: Settings
    progress: Progress
    entries: list[Entry] = field(default_factory=list)

    def launch(self, *, resumed: bool) -> UpResult:
        plan, provider, store, settings, progress = (
            self.plan,
            self.provider,
            self.store,
            self.settings,
            self.progress,
        )
        journal = MirroredJournal(store, plan.launch_id, plan.cloud, self.entries)
        attempts: list[Attempt] = []
        ensure_key(settings, plan)
        machines = _resumed_machines(plan, provider, store, progress) if resumed else []
        if not machines:
            machines = _failover(plan, provider, journal, attempts, progress)
        head = machines[0]
        placement_spot = head.spot if head.spot is not None else plan.spot
        price = plan.price_per_hour if placement_spot == plan.spot else plan.price_on_demand
        store.update_launch(
            plan.launch_id,
            region=head.region,
            zone=head.zone,
            spot=int(placement_spot),
            price_per_hour=price,
        )
        running = []
        for m in machines:
            progress.step(f"waiting for {m.id} to run")
            running.append(provider.wait_running(m, settings.launch_timeout))
        machines = running
        head = machines[0]
        host = head.public_ip or head.private_ip
        user = targets.get(plan.target).ssh_user(settings)
        # billing runs from here; the launch becomes "running" only once it is complete
        store.update_launch(plan.launch_id, running_at=time.time(), ssh_host=host, ssh_user=user)
        endpoints = _record_nodes(plan, store, machines)
        if plan.wait == "ssh":
            for index, address in endpoints:
                if not address:
                    raise ProvisionError(f"node {index} of {plan.name} has no IP address to SSH to")
                message = f"waiting for SSH on {address}"
                progress.step(message)
                limit = settings.ssh_timeout
                wait_ssh(
                    address,
                    22,
                    limit,
                    settings.poll_interval,
                    on_tick=_ticker(progress, message, limit),
                )
        alias = None
        for index, address in endpoints:
            if address:
                name = sshconfig.node_alias(plan.name, index)
                entry = sshconfig.render_entry(name, address, user, plan.key_path, settings.known_hosts)
                sshconfig.add(settings.ssh_config, settings.ssh_include, name, entry)
                alias = alias or name
        if plan.nodes > 1:
            _deliver_node_list(
                plan, provider, machines, endpoints, user=user, settings=settings, progress=progress
            )
        store.update_launch(plan.launch_id, status=LaunchStatus.RUNNING)
        return UpResult(plan=plan, machines=machines, attempts=attempts, ssh_alias=alias)

    def clean_up_after(self, exc: BaseException) -> None:
        """Delete what this launch created after ``exc``; raises only when cleanup itself fails."""
        plan, progress = self.plan, self.progress
        reason = _why(exc)
        book = Book(self.store)
        book.launch(plan.launch_id, f"launch {plan.launch_id}: error {reason}", error=reason)
        progress.note(f"launch failed ({reason}); removing what was created")
        record = _record_for_cleanup(plan, self.store, self.entries, book)
        down_hint = f"run `provision down {plan.name}` to remove what is left"
        # after a signal, new clients: the old ones may hold a lock the signal left taken
        provider = self.provider.fresh() if _signal_of(exc) else self.provider
        try:
            teardown(
                record,
                provider,
                book,
                self.settings,
                progress=progress,
                final_status=LaunchStatus.FAILED,
            )
        except BaseException as cleanup_exc:
            book.launch(
                plan.launch_id,
                f"launch {plan.launch_id}: status cleanup-incomplete",
                status=LaunchStatus.CLEANUP_INCOMPLETE,
            )
            _report_unrecorded(book, progress)
            stopped = _signal_of(cleanup_exc)
            if stopped is not None:
                signame, code = stopped
                raise CleanupInterrupted(
                    f"cleanup stopped by a second {signame}: what is left of {plan.name} is recorded",
                    hint=down_hint,
                    exit_code=code,
                ) from exc
            raise ProvisionError(
                f"launch failed ({reason}) and cleanup did not finish ({_why(cleanup_exc)})", hint=down_hint
            ) from exc
        _report_unrecorded(book, progress)


def _record_nodes(plan: Plan, store: Store, machines: list[Resource]) -> list[tuple[int, str | None]]:
    """Each machine's address on its journal row; each further host of a multi-host machine (a TPU
    slice) as a row of its own (index, address, the machine's row as parent). Returns (node index,
    address) for every node and host, in order."""
    rows = {r.resource_id: r for r in store.pending_resources(plan.launch_id)}
    out: list[tuple[int, str | None]] = []
    for i, m in enumerate(machines):
        row = rows.get(m.id)
        hosts = m.hosts if len(m.hosts) > 1 else ((m.public_ip, m.private_ip),)
        for h, (public, private) in enumerate(hosts):
            address = public or private
            index = (m.node_index if m.node_index is not None else i) + h
            if h == 0:
                if row is not None:
                    store.set_resource(row.id, ResourceStatus.CREATED, address=address)
            else:
                part_id = f"{m.id}/w{h}"  # not a cloud resource: the host goes with its slice
                part = rows.get(part_id)
                if part is None:
                    part_row = store.intent(
                        plan.launch_id,
                        plan.cloud,
                        PART_KINDS[0],
                        m.region,
                        zone=m.zone,
                        name=f"{m.id}-w-{h}",
                        token=None,
                        node_index=index,
                        role=role_of(index),
                        parent_id=row.id if row is not None else None,
                    )
                else:
                    part_row = part.id
                store.set_resource(part_row, ResourceStatus.CREATED, resource_id=part_id, address=address)
            out.append((index, address))
    return out


def _deliver_node_list(
    plan: Plan,
    provider: Provider,
    machines: list[Resource],
    endpoints: list[tuple[int, str | None]],
    *,
    user: str,
    settings: Settings,
    progress: Progress,
) -> None:
    """The node list where every node's first boot reads it: the instance metadata when the target
    has it, else over SSH (with --wait ssh). A node it cannot reach is a note, not a failed launch:
    the machines run, and the note says how to finish by hand."""
    from provision.cluster import deliver
    from provision.cluster.remote import Outcome, Target

    progress.step(f"telling the {plan.nodes} nodes about each other")
    text = deliver.node_list(plan, machines)
    try:
        if provider.announce(plan, machines, text):
            return
    except ProvisionError as exc:
        progress.note(f"node list not set in the instance metadata ({exc.message}); trying SSH")
    if plan.wait != "ssh":
        progress.note("the nodes wait for their node list: launch with --wait ssh to deliver it over SSH")
        return
    reach = [
        Target(i, a, user, key_path=plan.key_path, known_hosts=str(settings.known_hosts))
        for i, a in endpoints
        if a
    ]
    try:
        results = deliver.push(reach, text)
    except ProvisionError as exc:  # no SSH library (the cluster extra), or no command
        progress.note(f"node list not delivered ({exc.message}); the nodes wait for /etc/mlrig/nodes")
        return
    for r in results:
        if r.outcome is not Outcome.OK:
            progress.note(
                f"node {r.index}: node list not delivered ({r.error or r.outcome.value}); "
                f"`provision exec {plan.name} -- cat /etc/mlrig/cluster.env` shows which nodes have it"
            )


def _ticker(progress: Progress, message: str, limit: float) -> Callable[[float], None]:
    """Elapsed/limit after ``message`` on the progress line."""
    return lambda elapsed: progress.tick(f"{message} ({elapsed:.0f}s/{limit:g}s)")


def _record_for_cleanup(plan: Plan, store: Store, entries: list[Entry], book: Book) -> Record:
    """The store's record of the launch (it includes rows of a resumed earlier run) plus anything
    only memory knows; memory alone when the store cannot be read."""
    try:
        row = store.launch(plan.launch_id)
        stored = Record.from_store(row, store) if row else None
    except StoreError as exc:
        book.failure = book.failure or exc
        stored = None
    if stored is None:
        return Record.from_plan(plan, entries)
    known = {e.row for e in stored.entries}
    stored.entries += [e for e in entries if e.row not in known]
    return stored


def _report_unrecorded(book: Book, progress: Progress) -> None:
    if book.unrecorded:
        reason = book.failure.message if book.failure else "the state store could not be written"
        progress.note(f"could not record in the state store ({reason}):")
        for what in book.unrecorded:
            progress.note(f"  {what}")


def _signal_of(exc: BaseException) -> tuple[str, int] | None:
    """(signal name, exit code) when ``exc`` is an interruption: Ctrl-C's KeyboardInterrupt, or the
    exception the CLI's handlers raise for SIGINT, SIGTERM and SIGHUP (it carries ``signum``)."""
    signum = getattr(exc, "signum", None)
    if isinstance(signum, int):
        return signal.Signals(signum).name, 128 + signum
    if isinstance(exc, KeyboardInterrupt):
        return "SIGINT", 130
    return None


def _why(exc: BaseException) -> str:
    """One line saying why, for the state store and the error message."""
    stopped = _signal_of(exc)
    if stopped is not None:
        return f"interrupted ({stopped[0]})"
    if isinstance(exc, ProvisionError):
        return exc.message.splitlines()[0][:300] if exc.message else type(exc).__name__
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _failover(
    plan: Plan, provider: Provider, journal: MirroredJournal, attempts: list[Attempt], progress: Progress
) -> list[Resource]:
    zones: dict[str, list[str]] = {}

    def zones_of(region: str) -> list[str]:
        if region not in zones:
            zones[region] = provider.zones(plan, region)
            if not zones[region]:
                attempts.append(
                    Attempt(
                        Placement(region, f"{region} (all zones)", plan.spot),
                        "unsupported",
                        f"{plan.instance_type} is not offered in {region}",
                    )
                )
        return zones[region]

    blocked: set[tuple[str, bool]] = set()
    hints: list[str] = []
    prepared: set[str] = set()
    for n, where in enumerate(placements(plan, zones_of)):
        if (where.region, where.spot) in blocked:
            continue
        if where.region not in prepared:
            progress.step(f"preparing {where.region}: SSH key and firewall")
            provider.prepare(plan, where.region, journal)
            prepared.add(where.region)
        for retry in range(_RETRIES):
            many = f"{plan.nodes} x " if plan.nodes > 1 else ""
            progress.step(f"launching {many}{plan.instance_type} in {where}")
            try:
                return provider.create(plan, where, n, journal)
            except AttemptError as exc:
                again = (
                    exc.kind in (FailureKind.THROTTLE, FailureKind.UNKNOWN_OUTCOME) and retry < _RETRIES - 1
                )
                if again:
                    progress.note(f"{where}: {exc.code}; retrying")
                    time.sleep(min(2.0**retry, 8.0) * 0.5)
                    continue
                attempts.append(Attempt(where, exc.kind.value, exc.message))
                progress.note(f"{where}: {exc.kind.value}: {exc.code}")
                if exc.hint:
                    hints.append(exc.hint)
                if exc.kind == FailureKind.FATAL:
                    raise LaunchFailed(f"{plan.cloud} refused the launch", attempts, hint=exc.hint) from None
                if exc.kind == FailureKind.QUOTA:
                    blocked.add((where.region, where.spot))
                break
    tried = len([a for a in attempts if a.kind != "unsupported" or "all zones" not in str(a.placement)])
    raise LaunchFailed(
        f"could not launch {plan.instance_type}: {tried} place(s) tried, all failed",
        attempts,
        hint="; ".join(dict.fromkeys(hints))
        if hints
        else "try another --gpu or --region, --spot/on-demand, or later",
    )


# --------------------------------------------------------------------------- down
def _addressable(entry: Entry, target: targets.Target) -> Resource | None:
    """The journal row as something a driver can look up directly: by the id the create call
    answered, or by the name recorded with the intent (Google ids are names; AWS security groups
    and key pairs have names too). An AWS instance whose answer was lost has neither."""
    cloud = target.cloud
    if entry.resource_id:
        return Resource(cloud, entry.kind, entry.region, entry.resource_id, zone=entry.zone, name=entry.name)
    if entry.name and target.knows_name_before_create(entry.kind):
        return Resource(cloud, entry.kind, entry.region, entry.name, zone=entry.zone, name=entry.name)
    return None


def _key(res: Resource) -> tuple[str, str, str]:
    return (res.kind, res.region, res.id)


def teardown(
    record: Record,
    provider: Provider,
    book: Book,
    settings: Settings,
    *,
    progress: Progress | None = None,
    final_status: LaunchStatus = LaunchStatus.TERMINATED,
) -> list[Resource]:
    """Delete everything of launch ``record`` that is provably its own; safe to repeat.

    Each journal row is looked up directly (id, or the name recorded with the intent); the launch's
    regions are also listed by tag for anything whose create answer was lost. A resource is deleted
    only when its owner and launch tags are this launch's. Returns what was actually deleted.
    """
    progress = progress or SilentProgress()
    book.launch(record.launch_id, f"launch {record.launch_id}: status cleaning", status=LaunchStatus.CLEANING)
    targets: dict[tuple[str, str, str], tuple[Resource, list[Entry]]] = {}
    unresolved: list[Entry] = []
    parts: list[Entry] = []
    for entry in record.entries:
        if not entry.status.may_exist:
            continue
        if entry.kind in PART_KINDS:  # goes with its machine
            parts.append(entry)
            continue
        where = _addressable(entry, record.target)
        if where is None:
            unresolved.append(entry)
            continue
        found = provider.refresh(where)
        if not found.alive:
            book.resource(entry, ResourceStatus.DELETED, error="already gone")
        elif not found.owned_by(record.owner_tag, record.launch_id):
            progress.note(f"{entry.kind} {found.id} does not carry this launch's tags: left alone")
            book.resource(entry, ResourceStatus.FAILED, error="not this launch's (tags differ): left alone")
        else:
            targets.setdefault(_key(found), (found, []))[1].append(entry)
    try:
        tagged = provider.list_tagged(record.regions)
    except ProvisionError as exc:
        if unresolved:
            raise ProvisionError(
                f"could not list {record.cloud} to find what an unanswered create call made: {exc.message}",
                hint=f"run `provision down {record.name}` again",
            ) from None
        progress.note(f"could not list {record.cloud} to double-check ({exc.message}); went by the record")
        tagged = []
    for res in tagged:
        if res.alive and res.owned_by(record.owner_tag, record.launch_id):
            targets.setdefault(_key(res), (res, []))
    deleted: list[Resource] = []
    for res, rows in sorted(targets.values(), key=lambda t: DELETE_ORDER.get(t[0].kind, 9)):
        for entry in rows:
            book.resource(entry, ResourceStatus.DELETING)
        progress.step(f"deleting {res.kind} {res.name or res.id} in {res.zone or res.region}")
        if provider.delete(res):
            deleted.append(res)
        for entry in rows:
            book.resource(entry, ResourceStatus.DELETED)
    left = [res for res, _ in targets.values() if provider.refresh(res).alive]
    if left:
        raise ProvisionError(
            f"still present after cleanup: {', '.join(f'{r.kind} {r.id}' for r in left)}",
            hint=f"run `provision down {record.name}` again",
        )
    for entry in unresolved:
        book.resource(entry, ResourceStatus.DELETED, error="not found under the launch tag")
    for entry in parts:
        book.resource(entry, ResourceStatus.DELETED)
    try:
        sshconfig.remove_all(settings.ssh_include, record.name)
        forget_key(record.key_path)
    except OSError as exc:  # the cloud is clean; a local file we could not edit is only a note
        progress.note(f"could not remove {record.name}'s ssh entry or key file: {exc}")
    book.launch(
        record.launch_id,
        f"launch {record.launch_id}: status {final_status.value}",
        status=final_status,
        ended_at=time.time(),
    )
    return deleted


def down(
    row: LaunchRow, provider: Provider, store: Store, settings: Settings, progress: Progress | None = None
) -> list[Resource]:
    """``provision down`` of one launch: under the name's lock, from the store's record."""
    progress = progress or SilentProgress()
    with store.claim(row.name, "provision down"):
        current = store.launch(row.launch_id) or row
        book = Book(store)
        try:
            deleted = teardown(Record.from_store(current, store), provider, book, settings, progress=progress)
        except BaseException:
            book.launch(row.launch_id, "status cleanup-incomplete", status=LaunchStatus.CLEANUP_INCOMPLETE)
            raise
        if book.failure is not None:
            raise StoreError(
                f"removed {row.name}, but the state file could not record it: {book.failure.message}",
                hint=f"`provision down {row.name}` again records it once the state file is usable",
            )
        return deleted
