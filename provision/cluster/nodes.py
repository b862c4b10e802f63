"""A cluster as its nodes see it: which node is the head, where every node is, which ports they meet on.

Pure, validated data. The first-boot renderer (``bootstrap``), the SSH runner (``remote``) and the
drivers that create the machines all speak it, so a node index means the same thing everywhere:
node 0 is the head (torchrun's rank 0, the Ray head), nodes 1..N-1 are workers.

Every value that ends up in a shell script or an environment file is validated here (addresses are
IPv4, names and hostnames use a closed character set), which is what lets ``bootstrap`` write them
without quoting tricks.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, field

from provision.errors import UsageError

#: the largest cluster the first-boot script handles (user-data limits: AWS 16 KiB)
MAX_NODES = 512

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


class Role(str, enum.Enum):
    """A node's part in the cluster: the head runs rank 0 and the engine's head process."""

    HEAD = "head"
    WORKER = "worker"


class Engine(str, enum.Enum):
    """What the first boot starts after writing the cluster file (an existing engine, never ours)."""

    NONE = "none"
    RAY = "ray"


def role_of(index: int) -> Role:
    return Role.HEAD if index == 0 else Role.WORKER


@dataclass(frozen=True)
class Node:
    """One machine of the cluster: its index (torchrun's node rank) and its private address."""

    index: int
    address: str
    hostname: str | None = None
    role: Role | None = None

    def __post_init__(self) -> None:
        if self.role is None:
            object.__setattr__(self, "role", role_of(self.index))

    @property
    def short_hostname(self) -> str | None:
        return self.hostname.split(".", 1)[0].lower() if self.hostname else None


@dataclass(frozen=True)
class ClusterSpec:
    """Everything the nodes need to find each other.

    ``nodes`` may be empty while the machines do not exist yet (their addresses are only known after
    the launch): the first-boot script then waits for the node list to be delivered (see bootstrap).
    """

    name: str
    size: int
    nodes: tuple[Node, ...] = ()
    master_port: int = 29500
    engine: Engine = Engine.NONE
    ray_port: int = 6379
    launch_id: str | None = None
    #: extra arguments for every ``ray start`` (e.g. ``--num-cpus 1``); validated, no shell syntax
    ray_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        validate(self)

    @property
    def head(self) -> Node:
        if not self.nodes:
            raise UsageError(f"cluster {self.name}: the node addresses are not known yet")
        return self.nodes[0]

    @property
    def ray_address(self) -> str | None:
        return f"{self.head.address}:{self.ray_port}" if self.engine is Engine.RAY else None

    def with_nodes(self, nodes: list[Node] | tuple[Node, ...]) -> ClusterSpec:
        """The same cluster once its machines exist (a new value; specs are never mutated)."""
        return ClusterSpec(
            name=self.name,
            size=self.size,
            nodes=tuple(nodes),
            master_port=self.master_port,
            engine=self.engine,
            ray_port=self.ray_port,
            launch_id=self.launch_id,
            ray_args=self.ray_args,
        )


def make(
    name: str,
    addresses: list[str],
    hostnames: list[str | None] | None = None,
    *,
    master_port: int = 29500,
    engine: Engine = Engine.NONE,
    ray_port: int = 6379,
    launch_id: str | None = None,
    ray_args: tuple[str, ...] = (),
) -> ClusterSpec:
    """A spec from addresses in node order (node 0 first), the shape drivers get back from a launch."""
    names = hostnames if hostnames is not None else [None] * len(addresses)
    if len(names) != len(addresses):
        raise UsageError(f"{len(addresses)} addresses but {len(names)} hostnames")
    nodes = tuple(Node(i, a, h) for i, (a, h) in enumerate(zip(addresses, names, strict=True)))
    return ClusterSpec(
        name=name,
        size=len(nodes),
        nodes=nodes,
        master_port=master_port,
        engine=engine,
        ray_port=ray_port,
        launch_id=launch_id,
        ray_args=ray_args,
    )


def _bad(spec: ClusterSpec, what: str, hint: str | None = None) -> UsageError:
    return UsageError(f"cluster {spec.name!r}: {what}", hint=hint)


def validate(spec: ClusterSpec) -> None:
    """Raise UsageError unless ``spec`` is safe to render into a script and an environment file."""
    if not isinstance(spec.name, str) or not _NAME.match(spec.name):
        raise UsageError(f"bad cluster name {spec.name!r}", hint="use 1-63 letters, digits, '.', '_' or '-'")
    if spec.launch_id is not None and not _NAME.match(spec.launch_id):
        raise _bad(spec, f"bad launch id {spec.launch_id!r}")
    if not isinstance(spec.size, int) or isinstance(spec.size, bool) or not 1 <= spec.size <= MAX_NODES:
        raise _bad(spec, f"size {spec.size!r} is not 1-{MAX_NODES}")
    for what, port in (("master port", spec.master_port), ("ray port", spec.ray_port)):
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise _bad(spec, f"{what} {port!r} is not 1-65535")
    if spec.engine is Engine.RAY and spec.master_port == spec.ray_port:
        raise _bad(spec, f"torchrun and Ray cannot both use port {spec.ray_port}")
    for arg in spec.ray_args:
        if not re.fullmatch(r"[A-Za-z0-9_=.,:/+-]+", arg):
            raise _bad(spec, f"ray argument {arg!r} has characters a first-boot script cannot pass safely")
    if not spec.nodes:
        return
    if len(spec.nodes) != spec.size:
        raise _bad(spec, f"{len(spec.nodes)} nodes listed for a cluster of {spec.size}")
    seen_addr: dict[str, int] = {}
    seen_host: dict[str, int] = {}
    for position, node in enumerate(spec.nodes):
        if node.index != position:
            raise _bad(spec, f"node at position {position} has index {node.index}; list 0..N-1 in order")
        if node.role is not role_of(node.index):
            raise _bad(spec, f"node {node.index} is {node.role}; node 0 is the head, the others workers")
        try:
            addr = ipaddress.IPv4Address(node.address)
        except (ipaddress.AddressValueError, ValueError):
            raise _bad(spec, f"node {node.index} address {node.address!r} is not an IPv4 address") from None
        if addr.is_unspecified or addr.is_multicast or str(addr) == "255.255.255.255":
            raise _bad(spec, f"node {node.index} address {node.address} cannot reach a peer")
        if str(addr) != node.address:
            raise _bad(spec, f"node {node.index} address {node.address!r}: write it as {addr}")
        if node.address in seen_addr:
            raise _bad(spec, f"nodes {seen_addr[node.address]} and {node.index} share {node.address}")
        seen_addr[node.address] = node.index
        if node.hostname is not None:
            if not _HOSTNAME.match(node.hostname):
                raise _bad(spec, f"node {node.index} hostname {node.hostname!r} is not a valid hostname")
            short = node.short_hostname or ""
            if short in seen_host:
                raise _bad(spec, f"nodes {seen_host[short]} and {node.index} share the hostname {short}")
            seen_host[short] = node.index


# --------------------------------------------------------------------------- the node list as text
def node_list(spec: ClusterSpec) -> str:
    """The node list the first-boot script reads: ``INDEX ROLE ADDRESS HOSTNAME`` per line (``-``: none).

    The same text is embedded in the script when the addresses are known at launch, or delivered
    to ``/etc/mlrig/nodes`` (or a metadata key) afterwards.
    """
    if not spec.nodes:
        raise _bad(spec, "the node addresses are not known yet")
    lines = (f"{n.index} {role_of(n.index).value} {n.address} {n.hostname or '-'}" for n in spec.nodes)
    return "".join(f"{line}\n" for line in lines)


def parse_node_list(text: str) -> tuple[Node, ...]:
    """The inverse of :func:`node_list` (blank and ``#`` lines skipped); raises UsageError if malformed.

    Only the shape is checked here; ``spec.with_nodes(parse_node_list(text))`` validates the rest.
    """
    nodes: list[Node] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4 or not parts[0].isdigit():
            raise UsageError(f"node list line {lineno}: expected 'INDEX ROLE ADDRESS HOSTNAME', got {line!r}")
        try:
            role = Role(parts[1])
        except ValueError:
            raise UsageError(f"node list line {lineno}: unknown role {parts[1]!r}") from None
        nodes.append(Node(int(parts[0]), parts[2], None if parts[3] == "-" else parts[3], role))
    if not nodes:
        raise UsageError("the node list is empty")
    return tuple(nodes)
