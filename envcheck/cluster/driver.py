"""One cluster run: find the nodes, run envcheck on each through the engine, judge the lot.

Every node runs under a deadline of its own (``timeout``) and the engine waits a little longer
(``GRACE_S``) for the answer to travel back: a node that does neither is hung, and the run goes
on with the others. Nodes the engine already knows are down are rows with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from envcheck.cluster import protocol
from envcheck.cluster.aggregate import DEFAULT_MARGIN, aggregate
from envcheck.cluster.engine import Engine, Progress
from envcheck.cluster.models import ClusterReport, NodeRef, NodeResult, NodeStatus

#: seconds the driver waits beyond a node's own deadline (connection set-up, output on its way):
#: a fifth of the deadline, at least 5 s and at most 15 s
GRACE_S = (5.0, 15.0)
#: default node deadline: the report alone, plus what smoke and bench take
BASE_TIMEOUT_S = 60.0
SMOKE_TIMEOUT_S = 180.0
BENCH_TIMEOUT_S = {"quick": 120.0, "full": 900.0}


@dataclass
class ClusterOptions:
    smoke: bool = False
    smoke_frameworks: list[str] = field(default_factory=list)
    bench: bool = False
    quick: bool = True
    bench_backend: str = "auto"
    #: seconds each node may take; None: from what is asked
    timeout: float | None = None
    margin: float = DEFAULT_MARGIN
    collective: bool = False
    collective_mib: float = 64.0
    interconnect: str | None = None

    def node_timeout(self) -> float:
        if self.timeout is not None:
            return self.timeout
        total = BASE_TIMEOUT_S
        if self.smoke:
            total += SMOKE_TIMEOUT_S
        if self.bench:
            total += BENCH_TIMEOUT_S["quick" if self.quick else "full"]
        return total

    def wanted(self) -> tuple[str, ...]:
        return ("report", *(("smoke",) if self.smoke else ()), *(("bench",) if self.bench else ()))


def node_args(opts: ClusterOptions) -> list[str]:
    """The ``envcheck`` arguments each node runs."""
    args = ["cluster-node", "--deadline", f"{opts.node_timeout():g}"]
    if opts.smoke:
        args.append("--smoke")
        for fw in opts.smoke_frameworks:
            args += ["--framework", fw]
    if opts.bench:
        args += ["--bench", "--quick" if opts.quick else "--full", "--backend", opts.bench_backend]
    return args


def collect(
    engine: Engine, opts: ClusterOptions, nodes: Sequence[NodeRef], progress: Progress | None = None
) -> list[NodeResult]:
    """Every node's result, in the engine's order; never raises for a node's failure."""
    live = [n for n in nodes if not n.unreachable]
    deadline = opts.node_timeout()
    grace = min(GRACE_S[1], max(GRACE_S[0], deadline / 5))
    runs = engine.run(live, node_args(opts), timeout=deadline + grace, progress=progress)
    by_name = {r.name: r for r in runs}
    wanted = opts.wanted()
    results: list[NodeResult] = []
    for node in nodes:
        run = by_name.get(node.name)
        if node.unreachable or run is None:
            results.append(
                NodeResult(
                    name=node.name,
                    address=node.address,
                    status=NodeStatus.UNREACHABLE,
                    reason=node.unreachable or "the engine returned nothing for this node",
                )
            )
            continue
        result = protocol.interpret(run, wanted)
        result.address = run.address or node.address
        results.append(result)
    return results


def run_cluster(engine: Engine, opts: ClusterOptions, progress: Progress | None = None) -> ClusterReport:
    """Collect, optionally measure the all-reduce across the nodes that answered, and aggregate."""
    start = time.perf_counter()
    refs = engine.discover()
    results = collect(engine, opts, refs, progress)
    collective = None
    if opts.collective:
        from envcheck.cluster.collective import run_collective

        collective = run_collective(engine, refs, results, opts)
    return aggregate(
        results,
        engine=engine.name,
        margin=opts.margin,
        wanted=opts.wanted(),
        collective=collective,
        seconds=time.perf_counter() - start,
    )


def from_files(paths: Sequence[str], margin: float) -> ClusterReport:
    """Aggregate saved single-node reports (``envcheck --json -o``), one node per file."""
    from envcheck.cluster.engine_files import load_nodes

    return aggregate(load_nodes(paths), engine="files", margin=margin)
