"""The node list, delivered to a cluster's nodes once they run, so their first boot can finish.

The machines of an all-or-nothing launch get the same first-boot script before anyone knows their
addresses; the script waits (up to 15 min) for the list. ``provision up`` puts it where the nodes
can read it without SSH when the cloud has such a place (GCE metadata; EC2 instance tags, which
the nodes read from the instance metadata service), else writes ``/etc/mlrig/nodes`` on every
node over SSH once all of them answer, atomically (a temporary file, then ``mv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from provision.cluster import nodes
from provision.cluster.bootstrap import CLUSTER_DIR

if TYPE_CHECKING:
    from provision.clouds.base import Resource
    from provision.cluster.remote import NodeResult, Target
    from provision.plan import Plan


def node_list(plan: Plan, machines: Sequence[Resource]) -> str:
    """The list the nodes read: their private addresses (they talk inside the network), head first."""
    addresses = [m.private_ip or m.public_ip or "" for m in machines]
    spec = nodes.make(plan.name, addresses, launch_id=plan.launch_id)
    return nodes.node_list(spec)


#: EC2 instance tags holding a node list: the count, then the addresses in parts ("-0", "-1", ...)
TAG_COUNT = "mlrig-nodes-n"
TAG_PART = "mlrig-nodes-"
#: EC2 caps a tag value at 256 characters
TAG_VALUE_MAX = 255


def as_tags(text: str) -> dict[str, str]:
    """A node list as EC2 tags a node reads from its instance metadata (tags/instance/KEY): the
    addresses head first, space-separated (EC2 allows no comma in a tag value), cut into parts that
    fit a tag; hostnames are left out (an EC2 node finds itself by its metadata address)."""
    addresses = [n.address for n in sorted(nodes.parse_node_list(text), key=lambda n: n.index)]
    parts: list[str] = []
    for address in addresses:
        if not address or any(c.isspace() for c in address) or len(address) > TAG_VALUE_MAX:
            raise ValueError(f"address {address!r} cannot go into a tag")
        if parts and len(parts[-1]) + 1 + len(address) <= TAG_VALUE_MAX:
            parts[-1] += f" {address}"
        else:
            parts.append(address)
    return {TAG_COUNT: str(len(addresses)), **{f"{TAG_PART}{k}": part for k, part in enumerate(parts)}}


def push(
    targets: Sequence[Target], text: str, *, cluster_dir: str = CLUSTER_DIR, timeout: float = 60.0
) -> list[NodeResult]:
    """Write ``text`` to ``cluster_dir/nodes`` on every target (root, or sudo for a login user)."""
    from provision.cluster import remote

    if not cluster_dir.startswith("/") or not all(c.isalnum() or c in "/._-" for c in cluster_dir):
        raise ValueError(f"bad cluster directory {cluster_dir!r}")
    command = (
        'if [ "$(id -u)" = 0 ]; then s=; else s="sudo -n"; fi; '
        f"$s install -d -m 0755 {cluster_dir} && $s tee {cluster_dir}/.nodes.push >/dev/null"
        f" && $s mv {cluster_dir}/.nodes.push {cluster_dir}/nodes"
    )
    return remote.run(targets, command, stdin=text.encode(), timeout=timeout)
