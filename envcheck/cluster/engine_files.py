"""``envcheck cluster --from``: saved answers as nodes, for engines envcheck does not drive.

Each file is one node, named after the file: an ``envcheck --json`` report, or what
``envcheck cluster-node`` printed (``kubectl logs``, a pdsh or mpirun run). A directory stands
for the files in it. An unreadable file is a node that failed, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from envcheck.cluster import protocol
from envcheck.cluster.models import NodeResult, NodeRun, NodeStatus
from envcheck.errors import UsageError


def _files(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.exists():
            found.append(p)
        else:
            raise UsageError(f"--from {raw}: no such file or directory")
    if not found:
        raise UsageError(
            "--from names no file", hint="one saved report per node: envcheck --json -o NODE.json"
        )
    return found


def load_node(path: Path) -> NodeResult:
    """One node from one file; never raises for bad content."""
    name = path.stem
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return NodeResult(
            name=name, status=NodeStatus.FAILED, reason=f"cannot read {path}: {exc.strerror or exc}"
        )
    if protocol.MARKER in text:
        return protocol.interpret(NodeRun(name=name, stdout=text, exit_code=0))
    from envcheck.models import Report

    try:
        report = Report.model_validate_json(text)
    except Exception as exc:  # not an envcheck report: that node's answer is unusable
        why = str(exc).splitlines()[0][:200]
        return NodeResult(name=name, status=NodeStatus.FAILED, reason=f"not an envcheck report: {why}")
    host = report.snapshot.system.hostname if report.snapshot.system else None
    return NodeResult(name=name, status=NodeStatus.OK, report=report, hostname=host)


def load_nodes(paths: Sequence[str]) -> list[NodeResult]:
    return [load_node(p) for p in _files(paths)]
