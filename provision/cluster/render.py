"""Per-node results of ``provision exec`` as text (80 columns) and JSON; pure, no verdicts.

Nodes whose output and outcome are identical are shown once under one header (``nodes 0-2,5``),
as ``dshbak -c`` does for pdsh: on 64 nodes, ``nvidia-smi -L`` prints one block unless one node
differs, and that node stands out. Our own lines (headers, summary) fit the width; the command's
output is printed as it came, each block ending with a newline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provision.cluster.remote import NodeResult, Outcome, exit_code


def ranges(indexes: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"."""
    out: list[str] = []
    items = sorted(set(indexes))
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def _state(r: NodeResult) -> str:
    if r.outcome is Outcome.OK:
        return "ok"
    if r.outcome is Outcome.FAILED:
        return f"exit {r.exit_status}" if r.exit_status is not None else f"signal {r.signal}"
    return f"{r.outcome.value}: {r.error}" if r.error else r.outcome.value


def _header(text: str, width: int) -> str:
    text = f"── {text} "
    if len(text) > width:
        return text[: width - 1] + "…"
    return text + "─" * (width - len(text))


def _key(r: NodeResult) -> tuple[Any, ...]:
    return (r.outcome, r.exit_status, r.signal, r.error, r.stdout, r.stderr, r.truncated)


def text(results: Sequence[NodeResult], *, width: int = 80, group: bool = True) -> str:
    """Each node's (or group's) header, its stdout, its stderr after a ``stderr:`` line, then a summary."""
    width = max(40, width)
    blocks: list[list[NodeResult]] = []
    if group:
        by_key: dict[tuple[Any, ...], list[NodeResult]] = {}
        for r in sorted(results, key=lambda r: r.index):
            by_key.setdefault(_key(r), []).append(r)
        blocks = sorted(by_key.values(), key=lambda rs: rs[0].index)
    else:
        blocks = [[r] for r in sorted(results, key=lambda r: r.index)]
    lines: list[str] = []
    for block in blocks:
        first = block[0]
        if len(block) == 1:
            who = f"node {first.index} · {first.host}"
        else:
            who = f"nodes {ranges([r.index for r in block])} ({len(block)})"
        secs = max(r.seconds for r in block)
        lines.append(_header(f"{who} · {_state(first)} · {secs:.1f}s", width))
        if first.truncated:
            lines.append(f"(only the last part of the output is kept: {len(first.stdout)} characters)")
        if first.stdout:
            lines.append(first.stdout.rstrip("\n"))
        if first.stderr:
            lines.append("stderr:")
            lines.append(first.stderr.rstrip("\n"))
    lines.append(summary(results))
    return "\n".join(lines) + "\n"


def summary(results: Sequence[NodeResult]) -> str:
    """One line: how many nodes, and which ones did not succeed."""
    parts = []
    for outcome in Outcome:
        which = [r.index for r in results if r.outcome is outcome]
        if not which:
            continue
        part = f"{len(which)} {outcome.value}"
        if outcome is not Outcome.OK:
            part += f" (node{'s' if len(which) > 1 else ''} {ranges(which)})"
        parts.append(part)
    n = len(results)
    return f"{n} node{'s' if n != 1 else ''}: " + (", ".join(parts) if parts else "nothing ran")


def to_json(results: Sequence[NodeResult], command: str) -> dict[str, Any]:
    """The ``--json`` document (the CLI adds its ``schema_version``): every node's result, counts per
    outcome, and the exit code."""
    return {
        "command": command,
        "nodes": [r.to_dict() for r in sorted(results, key=lambda r: r.index)],
        "counts": {o.value: sum(r.outcome is o for r in results) for o in Outcome},
        "exit_code": exit_code(results),
    }
