"""``provision up`` and ``provision down`` acting on a Plan: failover, journalling, cleanup.

The rule this module keeps: whatever happens after the first create call (an API error, a fatal
failover, Ctrl-C, a crash of the SSH wait), everything this launch created is deleted before the
exception leaves ``up``. If that cleanup is itself interrupted, the state store still lists what
remains and ``provision down NAME`` finishes the job; ``down`` also finds resources by their
launch-id tag, so a resource whose create call was sent but never answered is not forgotten.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provision import sshconfig
from provision.clouds.base import (
    DELETE_ORDER,
    Attempt,
    AttemptError,
    FailureKind,
    Journal,
    LaunchFailed,
    Placement,
    Plan,
    Provider,
    Resource,
)
from provision.errors import ProvisionError
from provision.planning import placements
from provision.settings import Settings
from provision.state import LaunchRow, Store

_RETRIES = 3


class Progress(Protocol):
    """Where ``up``/``down`` report what they are doing (a spinner in the CLI, a list in tests)."""

    def step(self, message: str) -> None: ...

    def note(self, message: str) -> None: ...


class SilentProgress:
    def step(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class UpResult:
    plan: Plan
    machine: Resource
    attempts: list[Attempt] = field(default_factory=list)
    ssh_alias: str | None = None


# --------------------------------------------------------------------------- keys
def ensure_key(settings: Settings, plan: Plan) -> None:
    """Generate the launch's ed25519 key pair locally (private key 0600) unless --key-name is used."""
    if plan.key_name:
        return
    key = settings.key_dir / f"{plan.name}-{plan.launch_id}"
    plan.key_path = str(key)
    if key.exists() and Path(f"{key}.pub").exists():
        return
    settings.key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
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


def _forget_key(row: LaunchRow) -> None:
    if row.key_path and Path(row.key_path).parent.name == "keys":
        for path in (Path(row.key_path), Path(f"{row.key_path}.pub")):
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- ssh wait
def wait_ssh(host: str, port: int, timeout: float, interval: float) -> None:
    """Until something on ``host:port`` says ``SSH-`` (sshd answers before the key is exchanged)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
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
        hint="raise PROVISION_SSH_TIMEOUT, or launch with --wait running",
    )


# --------------------------------------------------------------------------- up
def up(
    plan: Plan, provider: Provider, store: Store, settings: Settings, progress: Progress | None = None
) -> UpResult:
    """Launch ``plan``; on any exception (Ctrl-C included) delete what was created, then re-raise."""
    progress = progress or SilentProgress()
    provider.check_credentials()
    ensure_key(settings, plan)
    existing = store.launch(plan.launch_id)
    if existing is None:
        store.begin_launch(plan)
    journal = store.journal(plan.launch_id, plan.cloud)
    attempts: list[Attempt] = []
    try:
        machine = None
        for region in plan.regions:
            machine = provider.find(plan, region)
            if machine:
                for r in store.pending_resources(plan.launch_id):
                    if r.kind == machine.kind and r.status == "intent":
                        store.set_resource(r.id, "created", resource_id=machine.id)
                progress.note(
                    f"found this launch's machine {machine.id} already in {machine.zone}; reusing it"
                )
                break
        if machine is None:
            machine = _failover(plan, provider, journal, attempts, progress)
        placement_spot = machine.spot if machine.spot is not None else plan.spot
        price = plan.price_per_hour if placement_spot == plan.spot else plan.price_on_demand
        store.update_launch(
            plan.launch_id,
            region=machine.region,
            zone=machine.zone,
            spot=int(placement_spot),
            price_per_hour=price,
        )
        progress.step(f"waiting for {machine.id} to run")
        machine = provider.wait_running(machine, settings.launch_timeout)
        host = machine.public_ip or machine.private_ip
        user = settings.aws_ssh_user if plan.cloud == "aws" else settings.gcp_ssh_user
        store.update_launch(
            plan.launch_id, status="running", running_at=time.time(), ssh_host=host, ssh_user=user
        )
        if plan.wait == "ssh":
            if not host:
                raise ProvisionError(f"{machine.id} has no IP address to SSH to")
            progress.step(f"waiting for SSH on {host}")
            wait_ssh(host, 22, settings.ssh_timeout, settings.poll_interval)
        alias = None
        if host:
            entry = sshconfig.render_entry(plan.name, host, user, plan.key_path, settings.known_hosts)
            sshconfig.add(settings.ssh_config, settings.ssh_include, plan.name, entry)
            alias = plan.name
        return UpResult(plan=plan, machine=machine, attempts=attempts, ssh_alias=alias)
    except BaseException as exc:
        reason = _why(exc)
        store.update_launch(plan.launch_id, error=reason)
        progress.note(f"launch failed ({reason}); removing what was created")
        try:
            row = store.launch(plan.launch_id)
            assert row is not None
            teardown(row, provider, store, settings, progress=progress, final_status="failed")
        except BaseException as cleanup_exc:
            store.update_launch(plan.launch_id, status="cleanup-incomplete")
            raise ProvisionError(
                f"launch failed ({reason}) and cleanup did not finish ({_why(cleanup_exc)})",
                hint=f"run `provision down {plan.name}` to remove what is left",
            ) from exc
        raise


def _why(exc: BaseException) -> str:
    """One line saying why, for the state store and the error message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _failover(
    plan: Plan, provider: Provider, journal: Journal, attempts: list[Attempt], progress: Progress
) -> Resource:
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
            progress.step(f"launching {plan.instance_type} in {where}")
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
def _as_resources(row: LaunchRow, store: Store, provider: Provider) -> list[Resource]:
    """What to delete: recorded ids plus anything tagged with this launch id (covers lost answers)."""
    targets: dict[tuple[str, str], Resource] = {}
    regions = {row.region}
    for r in store.pending_resources(row.launch_id):
        regions.add(r.region)
        if r.resource_id:
            targets[(r.kind, r.resource_id)] = Resource(
                row.cloud, r.kind, r.region, r.resource_id, zone=r.zone, name=r.name, launch_id=row.launch_id
            )
    for res in provider.list_ours(sorted(regions)):
        if res.launch_id == row.launch_id and res.alive:
            targets.setdefault((res.kind, res.id), res)
    return sorted(targets.values(), key=lambda x: DELETE_ORDER.get(x.kind, 9))


def teardown(
    row: LaunchRow,
    provider: Provider,
    store: Store,
    settings: Settings,
    *,
    progress: Progress | None = None,
    final_status: str = "terminated",
) -> list[Resource]:
    """Delete everything of launch ``row``; safe to repeat. Returns what was actually deleted."""
    progress = progress or SilentProgress()
    store.update_launch(row.launch_id, status="cleaning")
    deleted: list[Resource] = []
    for res in _as_resources(row, store, provider):
        rows = [r for r in store.pending_resources(row.launch_id) if r.resource_id == res.id]
        for r in rows:
            store.set_resource(r.id, "deleting")
        progress.step(f"deleting {res.kind} {res.name or res.id} in {res.zone or res.region}")
        if provider.delete(res):
            deleted.append(res)
        for r in rows:
            store.set_resource(r.id, "deleted")
    # rows left: intents whose resource never appeared under our tag (never created), and outcomes
    # of kinds already confirmed gone above
    left = {
        (r.kind, r.id)
        for r in provider.list_ours(sorted({row.region, *_regions(store, row)}))
        if r.launch_id == row.launch_id and r.alive
    }
    if left:
        raise ProvisionError(
            f"still present after cleanup: {sorted(left)}", hint=f"run `provision down {row.name}` again"
        )
    for r in store.pending_resources(row.launch_id):
        store.set_resource(r.id, "deleted", error=r.error or "not found under the launch tag")
    sshconfig.remove(settings.ssh_include, row.name)
    _forget_key(row)
    store.update_launch(row.launch_id, status=final_status, ended_at=row.ended_at or time.time())
    return deleted


def _regions(store: Store, row: LaunchRow) -> set[str]:
    return {r.region for r in store.resources(row.launch_id)}
