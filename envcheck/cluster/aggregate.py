"""From a list of node results to one cluster report: the culprit, named (pure, no engine).

- the layer table: each fact with identical values collapsed into groups of nodes;
- drift: a fact whose known values differ, naming the nodes outside the largest group;
- outliers: a benchmark figure more than ``margin`` below the cluster median (3 samples or more);
- per-node findings grouped by finding, with the nodes that have them;
- unreachable, hung, crashed and failed nodes, each with its reason.
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from envcheck import __version__
from envcheck.cluster.layers import FACTS, UNKNOWN, read_fact
from envcheck.cluster.models import (
    ClusterFinding,
    ClusterReport,
    CollectiveReport,
    LayerRow,
    NodeResult,
    NodeStatus,
    ValueGroup,
)
from envcheck.models import Severity

#: default outlier margin: a figure 20% below the median is an outlier
DEFAULT_MARGIN = 0.20
#: outliers need this many samples: with two, neither is "the odd one"
MIN_SAMPLES = 3
#: a node whose envcheck took this many times the median node (and 2 s more) is slow to answer
SLOW_FACTOR = 3.0
SLOW_EXTRA_S = 2.0
#: benchmark metric -> (finding id, what it measures)
OUTLIER_METRICS = {
    "matmul": ("outlier-matmul", "matmul"),
    "copy": ("outlier-memory-bandwidth", "memory copy"),
    "triad": ("outlier-memory-bandwidth", "memory triad"),
    "h2d": ("outlier-h2d", "host-to-device copy"),
    "d2h": ("outlier-h2d", "device-to-host copy"),
}
_STATUS_FIX = {
    NodeStatus.UNREACHABLE: "check the node is up and reachable the way the engine reaches it "
    "(ssh NODE true; ray status; sinfo -N)",
    NodeStatus.HUNG: "a node that hangs here hangs the training job too: look for a stuck driver "
    "(nvidia-smi hangs?), a hung filesystem, or a full disk; then rerun with a longer --timeout",
    NodeStatus.CRASHED: "run envcheck on that node by hand to see the crash "
    "(dmesg for OOM kills and Xid errors)",
    NodeStatus.FAILED: "envcheck did not run there or answered nonsense: install it on the node "
    "(pip install mlrig), point --envcheck-command at it, or run it by hand to see",
}


def names(nodes: Iterable[str], limit: int = 8) -> str:
    """'n1, n2, n3' or 'n1, n2, ... (+12 more)'."""
    items = list(nodes)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... (+{len(items) - limit} more)"


def group_values(values: Sequence[tuple[str, str]]) -> list[ValueGroup]:
    """(node, value) pairs -> groups of equal values, largest first (ties: first seen first)."""
    order: dict[str, list[str]] = {}
    for node, value in values:
        order.setdefault(value, []).append(node)
    ranked = sorted(order.items(), key=lambda kv: -len(kv[1]))
    return [ValueGroup(value=v, nodes=n) for v, n in ranked]


def _layers_and_drift(nodes: Sequence[NodeResult]) -> tuple[list[LayerRow], list[ClusterFinding]]:
    reporting = [n for n in nodes if n.report is not None]
    rows: list[LayerRow] = []
    findings: list[ClusterFinding] = []
    for fact in FACTS:
        values = [(n.name, read_fact(fact, n.report)) for n in reporting if n.report is not None]
        if not values or all(v == UNKNOWN for _, v in values):
            continue
        groups = group_values(values)
        rows.append(LayerRow(layer=fact.layer, fact=fact.name, groups=groups))
        known = [g for g in groups if g.value != UNKNOWN]
        if fact.drift is None or len(known) < 2:
            continue
        majority, minority = known[0], known[1:]
        odd = [node for g in minority for node in g.nodes]
        tie = len(minority[0].nodes) == len(majority.nodes)
        detail = "; ".join(f"{g.value} on {names(g.nodes)}" for g in minority)
        summary = (
            f"{fact.name} differs across nodes: {detail} "
            f"(the other {len(majority.nodes)} have {majority.value})"
            if not tie
            else f"{fact.name} differs across nodes, no majority: "
            + "; ".join(f"{g.value} on {names(g.nodes)}" for g in known)
        )
        findings.append(
            ClusterFinding(
                id=fact.drift,
                severity=fact.severity,
                summary=summary,
                nodes=odd,
                fix=fact.fix,
                subject=fact.subject or fact.name,
                facts={"fact": f"{fact.layer}/{fact.name}", "values": {g.value: g.nodes for g in known}},
            )
        )
    return rows, findings


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _figures(node: NodeResult) -> Iterable[dict[str, Any]]:
    figures = node.bench.get("figures") if node.bench is not None else None
    return [f for f in figures if isinstance(f, dict)] if isinstance(figures, list) else []


def _bench_rows_and_outliers(
    nodes: Sequence[NodeResult], margin: float
) -> tuple[list[LayerRow], list[ClusterFinding]]:
    samples: dict[tuple[str, str, str, str], list[tuple[str, float]]] = {}
    units: dict[tuple[str, str, str, str], str] = {}
    for node in nodes:
        for fig in _figures(node):
            median, metric = fig.get("median"), fig.get("metric")
            if metric not in OUTLIER_METRICS or not isinstance(median, (int, float)) or not _finite(median):
                continue
            device = str(fig.get("device") or "?")
            kind = "gpu" if device.startswith("gpu") else device
            key = (metric, str(fig.get("dtype") or ""), kind, str(fig.get("device_name") or ""))
            label = node.name if kind == "cpu" else f"{node.name}/{device}"
            samples.setdefault(key, []).append((label, float(median)))
            units[key] = str(fig.get("unit") or "")
    rows: list[LayerRow] = []
    findings: list[ClusterFinding] = []
    for key, values in samples.items():
        metric, dtype, kind, device_name = key
        unit = units[key]
        med = statistics.median(v for _, v in values)
        what = " ".join(x for x in (metric, dtype, kind) if x)
        rows.append(
            LayerRow(
                layer="bench",
                fact=what,
                unit=unit,
                median=med,
                groups=[
                    ValueGroup(value=f"{v:.4g}", nodes=[n]) for n, v in sorted(values, key=lambda x: x[1])
                ],
            )
        )
        if len(values) < MIN_SAMPLES or med <= 0:
            continue
        floor = (1.0 - margin) * med
        low = [(n, v) for n, v in values if v < floor]
        if not low:
            continue
        fid, words = OUTLIER_METRICS[metric]
        detail = ", ".join(f"{n} {v:.3g} {unit} ({100 * (1 - v / med):.0f}% below)" for n, v in low)
        findings.append(
            ClusterFinding(
                id=fid,
                severity=Severity.WARNING,
                summary=f"{words} {dtype} on {kind}{f' ({device_name})' if device_name else ''}: {detail}; "
                f"cluster median {med:.3g} {unit}, margin {margin:.0%}",
                nodes=sorted({n.split("/")[0] for n, _ in low}),
                fix="a slow node sets the pace of every step: check its clocks and throttling "
                "(envcheck on it), its CPU quota and other load, then rerun the benchmark",
                subject=what,
                facts={"median": med, "margin": margin, "unit": unit, "values": dict(values)},
            )
        )
    return rows, findings


def _slow_answers(nodes: Sequence[NodeResult]) -> list[ClusterFinding]:
    timed = [(n.name, n.node_seconds) for n in nodes if n.ok and n.node_seconds is not None]
    if len(timed) < MIN_SAMPLES:
        return []
    med = statistics.median(t for _, t in timed if t is not None)
    slow = [(n, t) for n, t in timed if t is not None and t > max(SLOW_FACTOR * med, med + SLOW_EXTRA_S)]
    if not slow:
        return []
    return [
        ClusterFinding(
            id="node-slow",
            severity=Severity.WARNING,
            summary=f"slow to answer: {', '.join(f'{n} took {t:.1f}s' for n, t in slow)}; "
            f"the median node {med:.1f}s",
            nodes=[n for n, _ in slow],
            fix="a node that is slow at everything is overloaded, CPU-quota limited or thermally "
            "throttled: compare its CPU quota and load (envcheck on it; top)",
            facts={"median_s": med, "seconds": dict(timed)},
        )
    ]


def _status_findings(nodes: Sequence[NodeResult]) -> list[ClusterFinding]:
    return [
        ClusterFinding(
            id=f"node-{n.status.value}",
            severity=Severity.ERROR,
            summary=f"{n.name} {n.status.value}: {n.reason or 'no reason given'}",
            nodes=[n.name],
            fix=_STATUS_FIX.get(n.status),
        )
        for n in nodes
        if not n.ok
    ]


def _node_findings(nodes: Sequence[NodeResult]) -> list[ClusterFinding]:
    """Each node's own findings, one entry per (id, summary) with every node that has it."""
    grouped: dict[tuple[str, str], tuple[Any, list[str]]] = {}
    reporting = [n for n in nodes if n.report is not None]
    for node in reporting:
        assert node.report is not None
        for f in node.report.findings:
            if f.severity is Severity.INFO:
                continue
            grouped.setdefault((f.id, f.summary), (f, []))[1].append(node.name)
    out = []
    for (fid, summary), (f, where) in grouped.items():
        everywhere = len(where) == len(reporting) and len(reporting) > 1
        out.append(
            ClusterFinding(
                id=fid,
                severity=f.severity,
                summary=f"{summary} ({'every node' if everywhere else 'on ' + names(where)})",
                nodes=where,
                fix=f.fix,
                commands=list(f.commands),
                subject=f.subject,
            )
        )
    return out


def _smoke_findings(nodes: Sequence[NodeResult], wanted: Sequence[str]) -> list[ClusterFinding]:
    failed: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    out: list[ClusterFinding] = []
    for node in nodes:
        for part in ("smoke", "bench"):
            why = node.missing.get(part)
            if part in wanted and why and node.ok:
                out.append(
                    ClusterFinding(
                        id=f"{part}-not-run",
                        severity=Severity.WARNING,
                        summary=f"{node.name}: {part} did not run: {why}",
                        nodes=[node.name],
                        fix=f"run envcheck {part} on that node by hand to see why",
                    )
                )
        for r in (node.smoke or {}).get("results", []):
            if r.get("status") == "fail":
                key = (str(r.get("framework")), str(r.get("device")), str(r.get("test")))
                failed.setdefault(key, []).append((node.name, str(r.get("error") or "failed")))
        for fr in (node.smoke or {}).get("frameworks", []):
            if fr.get("error"):
                key = (str(fr.get("framework")), "-", "child")
                failed.setdefault(key, []).append((node.name, str(fr["error"])))
    for (fw, device, test), where in failed.items():
        reasons = sorted({r for _, r in where})
        out.append(
            ClusterFinding(
                id="smoke-failed",
                severity=Severity.ERROR,
                summary=f"{fw} {test} on {device} failed on {names(n for n, _ in where)}: {reasons[0][:160]}",
                nodes=[n for n, _ in where],
                fix=f"run envcheck smoke -f {fw} on the node for the full error",
                subject=fw,
                facts={"errors": dict(where)},
            )
        )
    return out


def _status_row(nodes: Sequence[NodeResult]) -> LayerRow:
    return LayerRow(
        layer="nodes",
        fact="status",
        groups=group_values([(n.name, n.status.value) for n in nodes]),
    )


def aggregate(
    nodes: Sequence[NodeResult],
    *,
    engine: str,
    margin: float = DEFAULT_MARGIN,
    wanted: Sequence[str] = ("report",),
    collective: CollectiveReport | None = None,
    seconds: float | None = None,
) -> ClusterReport:
    """The cluster report for ``nodes`` (pure: the tests call it with hand-made results)."""
    rows, drift = _layers_and_drift(nodes)
    bench_rows, outliers = _bench_rows_and_outliers(nodes, margin)
    findings = [
        *_status_findings(nodes),
        *drift,
        *_smoke_findings(nodes, wanted),
        *outliers,
        *_slow_answers(nodes),
        *_node_findings(nodes),
    ]
    if collective is not None:
        from envcheck.cluster.collective import collective_findings

        findings.extend(collective_findings(collective, margin))
    answered = sum(1 for n in nodes if n.report is not None)
    if answered < 2 and nodes:
        findings.append(
            ClusterFinding(
                id="cluster-too-few",
                severity=Severity.WARNING,
                summary=f"only {answered} of {len(nodes)} nodes reported: nothing to compare",
                nodes=[n.name for n in nodes if n.report is None],
            )
        )
    findings.sort(key=lambda f: f.severity.rank)
    return ClusterReport(
        tool_version=__version__,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        engine=engine,
        seconds=seconds,
        margin=margin,
        nodes=list(nodes),
        layers=[_status_row(nodes), *rows, *bench_rows] if nodes else [],
        findings=findings,
        collective=collective,
    )
