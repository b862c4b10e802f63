"""A Cloud TPU slice as a cluster: one node per worker host, in the slice's worker order.

A multi-host slice (``v4-32``: four hosts) is one TPU node whose ``networkEndpoints`` list every
worker host; worker k of the slice is endpoint k (the order JAX's TPU cluster detection and the
hosts' ``worker-network-endpoints`` metadata use). Turning that list into cluster nodes is all a
driver needs to record, reach and clean up every host, not just the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from provision.cluster.nodes import Node
from provision.errors import ProvisionError

#: TensorCores per worker host by generation, where an accelerator type counts TensorCores (v2-v4,
#: v5p: 4 chips of 2 cores per host); v5e/v6e types count chips: one host up to 8, else 4 per host.
#: source: cloud.google.com/tpu/docs/system-architecture-tpu-vm, /tpu/docs/v4, /tpu/docs/v5e,
#: /tpu/docs/v6e (accelerator types and hosts per slice), as_of 2026-12
_CORES_PER_HOST = {"v2": 8, "v3": 8, "v4": 8, "v5p": 8}
_CHIPS_PER_HOST = {"v5litepod": 4, "v6e": 4}


def hosts_of(accelerator_type: str) -> int | None:
    """Worker hosts of a Cloud TPU accelerator type (``v4-32`` -> 4, ``v5litepod-8`` -> 1); None when
    the type is not one this table knows (the slice then says so itself once it exists)."""
    m = re.fullmatch(r"(v\d+[a-z]*)-(\d+)", accelerator_type.strip().lower())
    if not m:
        return None
    family, size = m.group(1), int(m.group(2))
    if family in _CORES_PER_HOST:
        return max(1, size // _CORES_PER_HOST[family])
    if family in _CHIPS_PER_HOST:
        return 1 if size <= 8 else size // _CHIPS_PER_HOST[family]
    return None


def _get(endpoint: Any, key: str, attr: str) -> Any:
    if isinstance(endpoint, Mapping):
        return endpoint.get(key)
    return getattr(endpoint, attr, None)


def host_addresses(endpoints: Sequence[Any]) -> tuple[tuple[str | None, str | None], ...]:
    """(external, private) address of each worker host, in worker order; None where the endpoint
    has none yet. ``endpoints`` are REST JSON (``ipAddress``, ``accessConfig.externalIp``) or
    tpu_v2 messages (``ip_address``, ``access_config.external_ip``)."""
    out = []
    for ep in endpoints:
        address = _get(ep, "ipAddress", "ip_address")
        access = _get(ep, "accessConfig", "access_config")
        external = _get(access, "externalIp", "external_ip") if access else None
        out.append((str(external) if external else None, str(address) if address else None))
    return tuple(out)


def slice_nodes(endpoints: Sequence[Any]) -> tuple[tuple[Node, ...], tuple[str | None, ...]]:
    """(nodes by worker index with their private addresses, each host's external address or None);
    refused while a host has no address yet."""
    hosts = host_addresses(endpoints)
    if not hosts:
        raise ProvisionError("the TPU node lists no worker hosts", hint="wait until the node is READY")
    for k, (_public, private) in enumerate(hosts):
        if not private:
            raise ProvisionError(f"TPU worker {k} has no address yet", hint="wait until the node is READY")
    return tuple(Node(k, str(private)) for k, (_p, private) in enumerate(hosts)), tuple(p for p, _ in hosts)
