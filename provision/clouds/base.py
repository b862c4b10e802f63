"""What every cloud driver offers: the Provider protocol, the plan it executes and its errors.

Drivers only act; deciding (which offer, which zones in which order, what to clean up) happens in
provision/launch.py on plain data, so the same orchestration runs against AWS, Compute Engine and
Cloud TPU, and against moto or the loopback fake in tests.
"""

from __future__ import annotations

import enum
import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from provision.errors import ProvisionError, UsageError
from provision.plan import (
    RESUME_FIELDS,
    TAG_EXPIRY,
    TAG_LAUNCH,
    TAG_NAME,
    TAG_NODE,
    TAG_OWNER,
    TAG_ROLE,
    Plan,
    is_launch_id,
    resume_identity,
    setup_fingerprint,
)

__all__ = [
    "RESUME_FIELDS",
    "TAG_EXPIRY",
    "TAG_LAUNCH",
    "TAG_NAME",
    "TAG_NODE",
    "TAG_OWNER",
    "TAG_ROLE",
    "Plan",
    "is_launch_id",
    "resume_identity",
    "setup_fingerprint",
]


#: kinds that are machines; they go first on delete because they hold the rest (a security group
#: cannot be deleted while an instance uses it)
MACHINE_KINDS = ("instance", "tpu_node")
#: parts of another resource that go with it (a TPU slice's worker hosts): recorded with their
#: address for SSH, never looked up or deleted on their own
PART_KINDS = ("tpu_host",)
DELETE_ORDER = {
    "instance": 0,
    "tpu_node": 0,
    "firewall": 1,
    "security_group": 1,
    "placement_group": 1,
    "resource_policy": 1,
    "key_pair": 2,
}

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


def check_name(name: str) -> str:
    """Machine names must be valid everywhere we use them: GCE names, labels, ssh Host aliases."""
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid machine name {name!r}",
            hint="use 2-40 characters: lowercase letters, digits and '-', starting with a letter",
        )
    return name


@dataclass(frozen=True)
class Placement:
    """One place to try: a zone of a region, spot or on-demand."""

    region: str
    zone: str
    spot: bool

    def __str__(self) -> str:
        return f"{self.zone} ({'spot' if self.spot else 'on-demand'})"


class FailureKind(str, enum.Enum):
    """Why one placement failed; decides where the launch goes next."""

    CAPACITY = "capacity"  # try the next zone
    UNSUPPORTED = "unsupported"  # type not offered in this zone: next zone
    QUOTA = "quota"  # regional limit: skip the rest of this region (and market)
    SPOT_PRICE = "spot-price"  # spot not available at that price: on-demand may work
    THROTTLE = "throttle"  # back off and retry the same place
    UNKNOWN_OUTCOME = "unknown-outcome"  # the create call timed out: look before retrying
    FATAL = "fatal"  # a bad request: stop and clean up


class AttemptError(ProvisionError):
    """A create call failed in one placement; ``kind`` says what to try next."""

    def __init__(self, kind: FailureKind, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{code}: {message}", hint=hint)
        self.kind = kind
        self.code = code


@dataclass(frozen=True)
class Attempt:
    """One placement tried and what happened there (listed in the failure message)."""

    placement: Placement
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.placement}: {self.kind}: {self.reason}"


class LaunchFailed(ProvisionError):
    """Every placement failed (or a fatal error stopped the launch); everything was cleaned up."""

    def __init__(self, message: str, attempts: list[Attempt], hint: str | None = None) -> None:
        lines = [message, *(f"  tried {a}" for a in attempts)]
        super().__init__("\n".join(lines), hint=hint)
        self.attempts = attempts


@dataclass
class Resource:
    """Something a driver created (or found tagged as ours)."""

    cloud: str
    #: instance, security_group, key_pair, firewall, tpu_node
    kind: str
    region: str
    id: str
    zone: str | None = None
    name: str | None = None
    launch_id: str | None = None
    owner: str | None = None
    state: str | None = None
    instance_type: str | None = None
    spot: bool | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    launched_at: float | None = None
    #: which machine of its launch (0 = the head), as tagged; None for side resources
    node_index: int | None = None
    #: "head" or "worker", as tagged
    role: str | None = None
    #: (public, private) address of each host of a multi-host machine (a TPU slice), host 0 first
    hosts: tuple[tuple[str | None, str | None], ...] = ()

    @property
    def alive(self) -> bool:
        """Still costing money or blocking cleanup (anything but terminated/deleted)."""
        return (self.state or "").lower() not in {"terminated", "deleted", "shutting-down", "gone"}

    def owned_by(self, owner: str, launch_id: str | None = None) -> bool:
        """Proof of ownership, checked on our side for every item a cloud lists: the owner tag we
        wrote, a well-formed launch id, and (when given) exactly that launch."""
        if not owner or self.owner != owner or not is_launch_id(self.launch_id):
            return False
        return launch_id is None or self.launch_id == launch_id


class Journal(Protocol):
    """Where a driver records intent before a create call and its outcome after."""

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
    ) -> int: ...

    def created(self, row: int, resource_id: str) -> None: ...

    def failed(self, row: int, error: str) -> None: ...


@runtime_checkable
class Provider(Protocol):
    """A cloud driver. Every method is safe to repeat; deletes of things already gone succeed.

    Every method raises only ProvisionError (the class is wrapped by ``translate_errors``), and
    finding or listing never decides ownership: callers check ``Resource.owned_by``.
    """

    cloud: str

    def check_credentials(self) -> None:
        """Raise CredentialsError (with the command that fixes it) when no credentials are usable.

        Also imports the cloud SDK, so an interrupt during that import happens before anything is
        recorded or created."""

    def all_regions(self) -> list[str]:
        """Every region the account can use (for ``ls --all-regions`` and ``gc``)."""

    def fresh(self) -> Provider:
        """The same driver with new clients. Cleanup after a signal uses it: the signal may have
        landed while a client's connection pool held its lock (a Python-level ``__enter__`` took
        it and the handler raised before the ``with`` began), and the next request through that
        client would wait on it for ever."""

    def zones(self, plan: Plan, region: str) -> list[str]:
        """Zones of ``region`` where ``plan.instance_type`` can be tried, best first."""

    def prepare(self, plan: Plan, region: str, journal: Journal) -> None:
        """Create what the machine needs in ``region`` (key pair, firewall); idempotent."""

    def find(self, plan: Plan, region: str) -> list[Resource]:
        """The machines of this launch that exist in ``region``, their tags re-checked (idempotent
        re-runs), head first."""

    def create(self, plan: Plan, placement: Placement, attempt: int, journal: Journal) -> list[Resource]:
        """Create the launch's ``plan.nodes`` machines in ``placement``, all or none, head first (each
        with its node index and role); raise AttemptError classified by FailureKind. A partial
        cluster is never returned: the driver removes what it made before raising."""

    def wait_running(self, res: Resource, timeout: float) -> Resource:
        """Poll until running; return it with its addresses."""

    def announce(self, plan: Plan, machines: list[Resource], node_list: str) -> bool:
        """Put a cluster's node list where its machines' first boot reads it without SSH (instance
        metadata); False when the target has no such place (the launch then pushes it over SSH)."""

    def delete(self, res: Resource) -> bool:
        """Delete; False when it was already gone. Waits until an instance no longer blocks cleanup."""

    def list_tagged(self, regions: list[str]) -> list[Resource]:
        """Everything carrying mlrig's launch tag in these regions, with the launch id and owner as
        tagged: whose it is, is for the caller to prove (``Resource.owned_by``)."""

    def refresh(self, res: Resource) -> Resource:
        """The resource looked up directly by its id or name, with its tags; ``state='gone'`` when it
        no longer exists. Works for every kind the driver creates (names known before the create
        call are enough: a lost answer still leaves a findable resource)."""


def poll(fn: Any, *, timeout: float, interval: float, what: str) -> Any:
    """Call ``fn`` until it returns something truthy, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ProvisionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


_P = TypeVar("_P")

#: the Provider methods translate_errors guards
PROVIDER_METHODS = (
    "check_credentials",
    "all_regions",
    "zones",
    "prepare",
    "find",
    "create",
    "wait_running",
    "announce",
    "delete",
    "list_tagged",
    "refresh",
)


@contextmanager
def translating(classifier: Callable[[Exception], ProvisionError]) -> Iterator[None]:
    """Inside, any exception leaves as the ProvisionError ``classifier`` returns for it (an SDK
    error, or a malformed answer: KeyError, ValueError, ...). The classifier returns, never raises.
    ProvisionError and BaseExceptions (Ctrl-C, signals) pass through untouched."""
    try:
        yield
    except ProvisionError:
        raise
    except Exception as exc:
        raise classifier(exc) from exc


def translate_errors(classifier: Callable[[Exception], ProvisionError]) -> Callable[[type[_P]], type[_P]]:
    """Class decorator: every Provider method runs inside ``translating(classifier)``."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(*args: Any, **kw: Any) -> Any:
            with translating(classifier):
                return method(*args, **kw)

        return guarded

    def decorate(cls: type[_P]) -> type[_P]:
        for name in PROVIDER_METHODS:
            if name in vars(cls):
                setattr(cls, name, wrap(vars(cls)[name]))
        return cls

    return decorate


def unexpected(cloud: str, exc: Exception) -> ProvisionError:
    """The last resort of every classifier: an answer the driver could not make sense of."""
    text = str(exc).strip().splitlines()
    detail = text[0][:200] if text else ""
    return ProvisionError(
        f"{cloud} gave an answer mlrig could not use ({type(exc).__name__}{': ' + detail if detail else ''})",
        hint="run the command again; if it persists, PROVISION_DEBUG=1 shows where it failed",
    )
