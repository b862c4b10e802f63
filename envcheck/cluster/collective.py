"""``--collective``: an all-reduce across the nodes that answered, launched through the same engine.

Two steps through the engine: rank 0's node picks a free port for the rendezvous, then every
node runs one rank. The figure is set against the interconnect (detected on the nodes or given
with ``--interconnect``), and the ring pairs' own figures point at a slow node (both its pairs
slow) or a slow link (one pair slow). The analysis is pure and tested without an engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from envcheck.cluster import protocol
from envcheck.cluster.interconnect import LOW_FRACTION, detect, from_name
from envcheck.cluster.models import (
    ClusterFinding,
    CollectiveReport,
    LinkFigure,
    NodeRef,
    NodeResult,
    NodeStatus,
)
from envcheck.models import Severity

if TYPE_CHECKING:
    from envcheck.cluster.driver import ClusterOptions
    from envcheck.cluster.engine import Engine

#: a ring pair below this fraction of the best pair is slow
PAIR_FLOOR = 0.5
#: seconds for the rendezvous and the measurements of all sizes and pairs
COLLECTIVE_TIMEOUT_S = 120.0


def locate(pairs: Sequence[LinkFigure], floor: float = PAIR_FLOOR) -> tuple[list[str], list[list[str]]]:
    """Slow nodes (in two slow ring pairs) and slow links (a slow pair whose nodes are otherwise fine).

    The reference is the best pair: links of one cluster are the same hardware, so the best one
    shows what a link can do. A pair below ``floor`` times the best is slow: a bad link or NIC
    costs a multiple (a port trained at a lower speed, a fallback to TCP), while run-to-run noise
    of a healthy pair stays well inside that.
    """
    measured = [p for p in pairs if p.busbw_gbps is not None]
    if len(measured) < 3:
        return [], []
    best = max(p.busbw_gbps or 0.0 for p in measured)
    slow = [p for p in measured if (p.busbw_gbps or 0.0) < floor * best]
    count: dict[str, int] = {}
    for p in slow:
        for n in p.nodes:
            count[n] = count.get(n, 0) + 1
    nodes = sorted(n for n, c in count.items() if c >= 2)
    links = [list(p.nodes) for p in slow if not any(n in nodes for n in p.nodes)]
    return nodes, links


def collective_findings(c: CollectiveReport, margin: float) -> list[ClusterFinding]:
    out: list[ClusterFinding] = []
    if c.error and c.busbw_gbps is None:
        out.append(
            ClusterFinding(
                id="collective-failed",
                severity=Severity.ERROR,
                summary=f"the all-reduce across {c.world_size} nodes failed: {c.error}",
                nodes=[r.name for r in c.ranks if not r.ok],
                fix="a collective that fails here fails the training job: check that the nodes reach each "
                "other on the rendezvous port and that NCCL/gloo pick the right interface "
                "(NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME)",
            )
        )
        return out
    ic = c.interconnect
    gloo_on_rdma = c.backend == "gloo" and ic is not None and ic.kind not in ("Ethernet", "unknown")
    if c.achieved_pct is not None and c.achieved_pct < 100 * LOW_FRACTION and not gloo_on_rdma:
        out.append(
            ClusterFinding(
                id="collective-low",
                severity=Severity.WARNING,
                summary=f"all-reduce bus bandwidth {c.busbw_gbps:.3g} GB/s is {c.achieved_pct:.0f}% of the "
                f"{ic.expected_gbps if ic else 0:.3g} GB/s the {ic.kind if ic else '?'} link should give",
                nodes=c.slow_nodes,
                fix="NCCL_DEBUG=INFO shows the transport: 'NET/Socket' on an InfiniBand/EFA cluster means "
                "NCCL fell back to TCP (missing plugin, wrong NCCL_IB_HCA / FI_PROVIDER)",
                facts={"busbw_gbps": c.busbw_gbps, "expected_gbps": ic.expected_gbps if ic else None},
            )
        )
    for node in c.slow_nodes:
        out.append(
            ClusterFinding(
                id="collective-slow-node",
                severity=Severity.WARNING,
                summary=f"{node}: both its ring pairs are below {PAIR_FLOOR:.0%} of the best pair",
                nodes=[node],
                fix="check that node's NIC (link speed, errors: ethtool -S / ibstat) and its load",
                facts={"pairs": {"-".join(p.nodes): p.busbw_gbps for p in c.pairs}},
            )
        )
    for a, b in c.slow_links:
        out.append(
            ClusterFinding(
                id="collective-slow-link",
                severity=Severity.WARNING,
                summary=f"the link {a} ↔ {b} is below {PAIR_FLOOR:.0%} of the best pair",
                nodes=[a, b],
                fix="check the cable/switch port between them (ibstat, the switch's port counters)",
            )
        )
    return out


def _rank_failure(results: Sequence[NodeResult]) -> str | None:
    bad = [r for r in results if r.status is not NodeStatus.OK]
    if not bad:
        return None
    return "; ".join(f"{r.name} {r.status.value}: {r.reason}" for r in bad[:4])


def build(
    ranks: Sequence[NodeResult],
    raw: dict[str, Any] | None,
    names: Sequence[str],
    margin: float,
    interconnect: Any,
) -> CollectiveReport:
    """The report from rank 0's figures (pure)."""
    report = CollectiveReport(world_size=len(names), interconnect=interconnect, ranks=list(ranks))
    if raw is None:
        report.error = _rank_failure(ranks) or "rank 0 reported no figures"
        return report
    report.backend = raw.get("backend")
    report.size_bytes = raw.get("size_bytes")
    report.busbw_gbps = raw.get("busbw_gbps")
    report.algbw_gbps = raw.get("algbw_gbps")
    report.sizes = {str(k): float(v) for k, v in (raw.get("sizes") or {}).items()}
    for p in raw.get("pairs") or []:
        idx = [int(i) for i in p.get("ranks", [])]
        report.pairs.append(
            LinkFigure(
                ranks=idx, nodes=[names[i] for i in idx if i < len(names)], busbw_gbps=p.get("busbw_gbps")
            )
        )
    if interconnect is not None and interconnect.expected_gbps and report.busbw_gbps is not None:
        report.achieved_pct = round(100 * report.busbw_gbps / interconnect.expected_gbps, 1)
    report.slow_nodes, report.slow_links = locate(report.pairs)
    report.error = _rank_failure(ranks)
    return report


def run_collective(
    engine: Engine, refs: Sequence[NodeRef], results: Sequence[NodeResult], opts: ClusterOptions
) -> CollectiveReport:
    """Pick the port on rank 0's node, run every rank, read rank 0's figures."""
    answered = {r.name: r for r in results if r.ok}
    nodes = [n for n in refs if n.name in answered]
    interconnect = (
        from_name(opts.interconnect) if opts.interconnect else detect([answered[n.name].net for n in nodes])
    )
    if len(nodes) < 2:
        return CollectiveReport(
            world_size=len(nodes), interconnect=interconnect, error="needs two nodes that answered"
        )
    first = answered[nodes[0].name]
    master = first.address or nodes[0].address or nodes[0].name
    picked = engine.run(nodes[:1], ["cluster-allreduce", "--pick-port"], timeout=30.0)
    port = protocol.parse(picked[0].stdout).get("port", {}).get("port") if picked else None
    if not isinstance(port, int):
        why = protocol.interpret(picked[0], ()).reason if picked else "no answer"
        return CollectiveReport(
            world_size=len(nodes),
            interconnect=interconnect,
            error=f"could not pick a port on {nodes[0].name}: {why}",
        )
    args = [
        "cluster-allreduce",
        "--world",
        str(len(nodes)),
        "--master",
        f"{master}:{port}",
        "--size-mib",
        f"{opts.collective_mib:g}",
        "--timeout",
        f"{COLLECTIVE_TIMEOUT_S:g}",
    ]
    runs = engine.run(nodes, args, timeout=COLLECTIVE_TIMEOUT_S + 10)
    ranks = [protocol.interpret(r, ()) for r in runs]
    raw = next(
        (protocol.parse(r.stdout).get("allreduce") for r in runs if "allreduce" in protocol.parse(r.stdout)),
        None,
    )
    return build(ranks, raw, [n.name for n in nodes], opts.margin, interconnect)
