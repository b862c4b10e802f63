"""The node list, delivered to a cluster's nodes once they run, so their first boot can finish.

The machines of an all-or-nothing launch get the same first-boot script before anyone knows their
addresses; the script waits (up to 15 min) for ``/etc/mlrig/nodes``. ``provision up`` writes it on
every node over SSH once all of them answer, atomically (a temporary file, then ``mv``).
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
