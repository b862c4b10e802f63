"""A Cloud TPU slice as a cluster: one node per worker host, in the slice's worker order.

A multi-host slice (``v4-32``: four hosts) is one TPU node whose ``networkEndpoints`` list every
worker host; worker k of the slice is endpoint k (the order JAX's TPU cluster detection and the
hosts' ``worker-network-endpoints`` metadata use). Turning that list into cluster nodes is all a
driver needs to record, reach and clean up every host, not just the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provision.cluster.nodes import Node
from provision.errors import ProvisionError


def _get(endpoint: Any, key: str, attr: str) -> Any:
    if isinstance(endpoint, Mapping):
        return endpoint.get(key)
    return getattr(endpoint, attr, None)


def slice_nodes(endpoints: Sequence[Any]) -> tuple[tuple[Node, ...], tuple[str | None, ...]]:
    """(nodes by worker index with their private addresses, each host's external address or None).

    ``endpoints`` are the node's network endpoints, as REST JSON (``ipAddress``,
    ``accessConfig.externalIp``) or tpu_v2 messages (``ip_address``, ``access_config.external_ip``).
    """
    nodes: list[Node] = []
    public: list[str | None] = []
    for k, ep in enumerate(endpoints):
        address = _get(ep, "ipAddress", "ip_address")
        if not address:
            raise ProvisionError(f"TPU worker {k} has no address yet", hint="wait until the node is READY")
        access = _get(ep, "accessConfig", "access_config")
        external = _get(access, "externalIp", "external_ip") if access else None
        nodes.append(Node(k, str(address)))
        public.append(str(external) if external else None)
    if not nodes:
        raise ProvisionError("the TPU node lists no worker hosts", hint="wait until the node is READY")
    return tuple(nodes), tuple(public)
