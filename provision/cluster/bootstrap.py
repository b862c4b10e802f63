"""First boot of a cluster node: find my rank, write the cluster file, start the engine.

A launch that is all-or-nothing (AWS ``MinCount = MaxCount = N``, a TPU slice) gives every node the
same user-data, so the script cannot be told its rank: each node finds itself in the node list, in
this order, and refuses to guess when nothing (or more than one node) matches:

1. ``MLRIG_NODE_RANK`` in the environment (an operator's override);
2. cloud metadata when rendered for one: the TPU's ``agent-worker-number``, the GCE instance's
   address and hostname, the EC2 instance's ``local-ipv4`` and ``local-hostname`` (IMDSv2);
3. the machine's hostname (short or full) against the nodes' hostnames;
4. the machine's own addresses (``hostname -I``, ``ip -o addr``) against the nodes' addresses.

The node list is embedded when the addresses are known at render time. When they are not (the
machines do not exist yet), the script waits for it: ``<dir>/nodes`` pushed over SSH after launch,
the ``mlrig-nodes`` instance attribute on Compute Engine, or the slice's own
``worker-network-endpoints`` on a TPU VM.

It then writes ``cluster.env`` (``KEY=VALUE`` lines that ``.``/``source`` and systemd's
``EnvironmentFile=`` both read) and its JSON twin ``cluster.json``, each atomically, so
``torchrun --nnodes $NNODES --node-rank $NODE_RANK --master-addr $MASTER_ADDR --master-port
$MASTER_PORT`` works as is. With the Ray engine, node 0 starts a Ray head and the others join it,
retrying while the head comes up; ``engine.status`` says ``starting``, ``up`` or ``failed: why``.

:func:`env_file` and :func:`json_file` render in Python exactly what the script writes (the tests
compare them byte for byte), so the launcher can show a node's cluster file without asking it.
"""

from __future__ import annotations

import enum
import json
from importlib import resources
from typing import Any

from provision.cluster.nodes import ClusterSpec, node_list, role_of
from provision.errors import UsageError

CLUSTER_DIR = "/etc/mlrig"
ENV_NAME = "cluster.env"
JSON_NAME = "cluster.json"
SCHEMA_VERSION = "1.0"  # "<major>.<minor>", as in every --json document


class Metadata(str, enum.Enum):
    """Which cloud metadata server the script may ask who it is (none: hostname and addresses only)."""

    NONE = "none"
    AWS = "aws"
    GCE = "gce"
    TPU = "tpu"


# --------------------------------------------------------------------------- the files, in Python
def _rank_ok(spec: ClusterSpec, rank: int) -> None:
    if not spec.nodes:
        raise UsageError(f"cluster {spec.name}: the node addresses are not known yet")
    if not 0 <= rank < spec.size:
        raise UsageError(f"cluster {spec.name}: rank {rank} is not 0-{spec.size - 1}")


def env_file(spec: ClusterSpec, rank: int) -> str:
    """The ``cluster.env`` node ``rank`` gets (byte for byte what the first-boot script writes)."""
    _rank_ok(spec, rank)
    me = spec.nodes[rank]
    lines = [
        "# mlrig cluster file, written at first boot: KEY=VALUE for `. FILE` and systemd EnvironmentFile=",
        f"MLRIG_CLUSTER={spec.name}",
    ]
    if spec.launch_id:
        lines.append(f"MLRIG_LAUNCH_ID={spec.launch_id}")
    lines += [
        f"MLRIG_ENGINE={spec.engine.value}",
        f"MASTER_ADDR={spec.head.address}",
        f"MASTER_PORT={spec.master_port}",
        f"NNODES={spec.size}",
        f"NODE_RANK={rank}",
        f"MLRIG_NODE_ROLE={role_of(rank).value}",
        f"MLRIG_NODE_ADDR={me.address}",
        f'MLRIG_NODE_ADDRS="{" ".join(n.address for n in spec.nodes)}"',
    ]
    if any(n.hostname for n in spec.nodes):
        lines.append(f'MLRIG_NODE_HOSTNAMES="{" ".join(n.hostname or "-" for n in spec.nodes)}"')
    if spec.ray_address:
        lines.append(f"RAY_ADDRESS={spec.ray_address}")
    return "\n".join(lines) + "\n"


def _js(value: object) -> str:
    return json.dumps(value)


def json_file(spec: ClusterSpec, rank: int) -> str:
    """The ``cluster.json`` node ``rank`` gets: the same facts with the whole node list."""
    _rank_ok(spec, rank)
    me = spec.nodes[rank]
    head = [
        ("schema_version", _js(SCHEMA_VERSION)),
        ("cluster", _js(spec.name)),
        ("launch_id", _js(spec.launch_id)),
        ("engine", _js(spec.engine.value)),
        ("master_addr", _js(spec.head.address)),
        ("master_port", _js(spec.master_port)),
        ("nnodes", _js(spec.size)),
        ("node_rank", _js(rank)),
        ("role", _js(role_of(rank).value)),
        ("address", _js(me.address)),
        ("ray_address", _js(spec.ray_address)),
    ]
    out = ["{"] + [f'  "{k}": {v},' for k, v in head] + ['  "nodes": [']
    for n in spec.nodes:
        comma = "," if n.index < spec.size - 1 else ""
        out.append(
            f'    {{"index": {n.index}, "role": "{role_of(n.index).value}", "address": "{n.address}", '
            f'"hostname": {_js(n.hostname)}}}{comma}'
        )
    out += ["  ]", "}"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the script
#: the template, a package file so it reads (and lints) as shell; @@KEY@@ markers are filled by snippet()
_TEMPLATE = "bootstrap.sh"


def _sq(text: str) -> str:
    """Single-quote ``text`` for bash (the values are validated; this only guards the quoting)."""
    if "'" in text:
        raise UsageError(f"cannot render {text!r} into the first-boot script")
    return f"'{text}'"


def snippet(
    spec: ClusterSpec,
    *,
    metadata: Metadata = Metadata.NONE,
    cluster_dir: str = CLUSTER_DIR,
    wait_seconds: int = 900,
    ray_wait_seconds: int = 900,
    run_as: str | None = None,
) -> str:
    """The bash fragment for the first-boot script (identical on every node of the cluster).

    It runs in a subshell (its ``set -u`` and failures stay inside), never blocks longer than
    ``wait_seconds`` for the node list, and starts the engine in the background so the rest of the
    first boot goes on; ``run_as`` is the login user Ray runs as when that user exists.
    """
    for what, seconds in (("wait_seconds", wait_seconds), ("ray_wait_seconds", ray_wait_seconds)):
        if not 0 <= seconds <= 86400:
            raise UsageError(f"{what} {seconds} is not 0-86400")
    if not cluster_dir.startswith("/") or not all(c.isalnum() or c in "/._-" for c in cluster_dir):
        raise UsageError(f"bad cluster directory {cluster_dir!r}")
    if run_as is not None and not (run_as and all(c.isalnum() or c in "._-" for c in run_as)):
        raise UsageError(f"bad user name {run_as!r}")
    values = {
        "NAME": _sq(spec.name),
        "SIZE": str(spec.size),
        "ENGINE": spec.engine.value,
        "MASTER_PORT": str(spec.master_port),
        "RAY_PORT": str(spec.ray_port),
        "LAUNCH": _sq(spec.launch_id or ""),
        "LAUNCH_JSON": _sq(_js(spec.launch_id)),
        "METADATA": metadata.value,
        "WAIT": str(int(wait_seconds)),
        "RAY_WAIT": str(int(ray_wait_seconds)),
        "RAY_ARGS": _sq(" ".join(spec.ray_args)),
        "RUN_AS": _sq(run_as or ""),
        "INLINE": _sq(node_list(spec).rstrip("\n")) if spec.nodes else "''",
        "DIR": cluster_dir,
        "SCHEMA": _js(SCHEMA_VERSION),
    }
    text = resources.files("provision.cluster").joinpath(_TEMPLATE).read_text("utf-8")
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def script(spec: ClusterSpec, **kw: Any) -> str:
    """A standalone first-boot script: the snippet behind a shebang, exiting with the bootstrap's status."""
    return "#!/bin/bash\n" + snippet(spec, **kw) + 'exit "$mlrig_cluster_rc"\n'
