"""What ``envcheck cluster`` exchanges: one node's raw run, its parsed result, and the cluster report.

The JSON report (``--json``) is :class:`ClusterReport`; its ``schema_version`` follows the same
rule as the single-node report (bump the major on a breaking change). Smoke and benchmark
results are kept as the plain dicts ``envcheck smoke --json`` / ``envcheck bench --json`` print,
validated when they arrive, so a reader can feed one node's part to the single-node tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from envcheck.models import Report, Severity, _Model

#: Version of the ``envcheck cluster --json`` schema.
CLUSTER_SCHEMA_VERSION = "1.0"


class NodeStatus(str, Enum):
    """How a node's run ended; anything but ``ok`` makes the command exit 1."""

    #: a complete answer came back
    OK = "ok"
    #: the node could not be reached (connection refused, no route, auth, the engine says it is dead)
    UNREACHABLE = "unreachable"
    #: the node was reached and started, but no complete answer came before the deadline
    HUNG = "hung"
    #: envcheck died on the node (a signal, or an exit without its answer)
    CRASHED = "crashed"
    #: envcheck could not run or answered nonsense (not installed, unreadable output)
    FAILED = "failed"


@dataclass
class NodeRef:
    """One node as an engine knows it. ``handle`` is the engine's own id (Ray node id, ssh target)."""

    name: str
    address: str | None = None
    handle: Any = None
    #: set when the engine already knows the node cannot run anything (Ray: node dead)
    unreachable: str | None = None


@dataclass
class NodeRun:
    """What an adapter brings back from one node, before any interpretation."""

    name: str
    address: str | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    #: the signal that ended the process, by name without SIG ("SEGV", "KILL")
    signal: str | None = None
    #: the engine gave up waiting (the node may still be running)
    timed_out: bool = False
    #: why the node could not be reached at all
    unreachable: str | None = None
    #: a failure the engine itself reported (Ray's WorkerCrashedError, srun's "task 2: Killed")
    engine_error: str | None = None
    #: wall time as the driver saw it
    seconds: float = 0.0


class NetFacts(_Model, kw_only=True):
    """The node's fastest links, read from /sys on the node (for the collective's expectations)."""

    #: InfiniBand/RoCE/EFA ports: "mlx5_0/1" -> Gb/s
    rdma_ports: dict[str, float] = {}
    #: RDMA device names that are AWS EFA
    efa_devices: list[str] = []
    #: Ethernet interfaces that are up: name -> Mb/s (as /sys/class/net/*/speed says)
    ethernet: dict[str, int] = {}
    error: str | None = None


class NodeResult(_Model, kw_only=True):
    """One node in the cluster report: its status with the reason, and what it reported."""

    name: str
    address: str | None = None
    status: NodeStatus
    #: why the status is not ok, in one line ("no answer within 20s (got: report)")
    reason: str | None = None
    #: wall time the driver waited for this node
    seconds: float | None = None
    #: time envcheck took on the node itself
    node_seconds: float | None = None
    #: hostname the node reported (may differ from ``name``, the engine's name for it)
    hostname: str | None = None
    report: Report | None = None
    #: ``envcheck smoke --json``'s document, or None when not run / not received
    smoke: dict[str, Any] | None = None
    #: ``envcheck bench --json``'s document
    bench: dict[str, Any] | None = None
    net: NetFacts | None = None
    #: parts that were asked for and did not arrive or failed: part -> why
    missing: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        return self.status is NodeStatus.OK


class ValueGroup(_Model, kw_only=True):
    value: str
    nodes: list[str]


class LayerRow(_Model, kw_only=True):
    """One fact across the cluster: identical values collapse into one group."""

    layer: str
    fact: str
    groups: list[ValueGroup]
    #: numeric rows (benchmarks): the median across nodes, shown instead of groups
    median: float | None = None
    unit: str | None = None

    @property
    def differs(self) -> bool:
        return len(self.groups) > 1


class ClusterFinding(_Model, kw_only=True):
    #: stable identifier: node-unreachable, drift-driver, outlier-matmul, ... (README lists them)
    id: str
    severity: Severity
    summary: str
    #: the nodes it concerns (the minority for drift, the slow ones for outliers)
    nodes: list[str] = []
    fix: str | None = None
    #: the exact commands that fix it, in order (from the node's own finding)
    commands: list[str] = []
    #: the facts the verdict used: values by node, the median and the margin
    facts: dict[str, Any] = {}
    #: framework or device it concerns
    subject: str | None = None


class Interconnect(_Model, kw_only=True):
    """What the link between nodes should give, with where that number comes from."""

    kind: str
    #: per-node bandwidth the all-reduce bus bandwidth should approach, GB/s
    expected_gbps: float | None = None
    basis: str
    source: str | None = None


class LinkFigure(_Model, kw_only=True):
    ranks: list[int]
    nodes: list[str]
    busbw_gbps: float | None = None
    error: str | None = None


class CollectiveReport(_Model, kw_only=True):
    backend: str | None = None
    world_size: int
    #: message size of the headline figure
    size_bytes: int | None = None
    #: nccl-tests' bus bandwidth of the all-reduce across every node, GB/s
    busbw_gbps: float | None = None
    algbw_gbps: float | None = None
    #: per message size: bytes -> bus bandwidth GB/s
    sizes: dict[str, float] = {}
    interconnect: Interconnect | None = None
    #: measured / expected in %, None when nothing is expected
    achieved_pct: float | None = None
    #: ring pairs (0-1, 1-2, ..., n-1-0), each an all-reduce of its own
    pairs: list[LinkFigure] = []
    #: nodes (or links) the pairs point at
    slow_nodes: list[str] = []
    slow_links: list[list[str]] = []
    error: str | None = None
    #: each rank's own status when it failed
    ranks: list[NodeResult] = []


class ClusterReport(_Model, kw_only=True):
    schema_version: str = CLUSTER_SCHEMA_VERSION
    tool: str = "envcheck-cluster"
    tool_version: str
    created_at: str
    #: ray, slurm, ssh, k8s or files
    engine: str
    seconds: float | None = None
    #: outlier margin: a figure this fraction below the median is an outlier
    margin: float
    nodes: list[NodeResult] = []
    layers: list[LayerRow] = []
    findings: list[ClusterFinding] = []
    collective: CollectiveReport | None = None

    @property
    def has_errors(self) -> bool:
        """Exit 1: a node not ok, or an error finding (drift that breaks jobs, a node's own errors)."""
        return any(not n.ok for n in self.nodes) or any(f.severity is Severity.ERROR for f in self.findings)
