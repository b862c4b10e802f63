"""The lines a node prints and how the driver reads them back, whatever engine carried them.

``envcheck cluster-node`` prints one line per part as soon as the part is ready::

    @@envcheck-cluster@@{"part": "hello", "hostname": ..., "pid": ...}
    @@envcheck-cluster@@{"part": "report", "data": {...}}
    @@envcheck-cluster@@{"part": "smoke", "data": {...}}        (or "error": "...")
    @@envcheck-cluster@@{"part": "done", "seconds": 1.9}

The marker may sit after a prefix (``srun --label`` writes ``3: ``) and other output may come
between the lines (a login banner, a framework's warnings). A node that dies or hangs after its
report still gives the driver that report: partial results, named for what they are.
"""

from __future__ import annotations

import json
import signal as _signal
from collections.abc import Sequence
from typing import Any

from envcheck.cluster.models import NetFacts, NodeResult, NodeRun, NodeStatus

MARKER = "@@envcheck-cluster@@"
#: parts in the order a node sends them
#: a protocol line longer than this is not waited for (64 MiB)
_MAX_LINE = 64 * 2**20
PARTS = ("hello", "report", "net", "smoke", "bench", "deadline", "done")


def line(part: str, **fields: Any) -> str:
    """One protocol line (with its newline)."""
    return MARKER + json.dumps({"part": part, **fields}, separators=(",", ":"), default=str) + "\n"


def parse(text: str) -> dict[str, dict[str, Any]]:
    """Every well-formed protocol line in ``text``: part -> its fields (a repeated part: last wins).

    A line some transport cut into pieces (``srun --label`` splits every 1024 bytes) is joined
    back: JSON strings hold no raw newline, so the pieces that follow a marker line until its
    JSON parses are the rest of it. A line cut short by a crash never parses and is not a part.
    """
    parts: dict[str, dict[str, Any]] = {}
    pending: str | None = None
    for raw in text.splitlines():
        at = raw.find(MARKER)
        if at >= 0:
            pending = raw[at + len(MARKER) :]
        elif pending is not None and len(pending) < _MAX_LINE:
            pending += raw
        else:
            continue
        try:
            obj = json.loads(pending)
        except ValueError:
            continue
        pending = None
        if isinstance(obj, dict) and isinstance(obj.get("part"), str):
            parts[obj["part"]] = obj
    return parts


def signal_name(value: str | int) -> str:
    """11 or "SEGV" or "SIGSEGV" -> "SIGSEGV"."""
    if isinstance(value, int):
        try:
            return _signal.Signals(value).name
        except ValueError:
            return f"signal {value}"
    name = value.upper()
    return name if name.startswith("SIG") else f"SIG{name}"


def _last_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and MARKER not in ln]
    return lines[-1][:300] if lines else None


def _received(parts: dict[str, dict[str, Any]]) -> str:
    got = [p for p in PARTS if p in parts and p not in ("hello", "deadline", "done")]
    return f" (received: {', '.join(got)})" if got else " (no part received)"


def _validated(part: str, payload: dict[str, Any]) -> tuple[Any, str | None]:
    """The part's data checked against its model; (None, why) when it is not what it claims."""
    if "error" in payload and "data" not in payload:
        return None, str(payload["error"])
    data = payload.get("data")
    try:
        if part == "report":
            from envcheck.models import Report

            return Report.model_validate(data), None
        if part == "smoke":
            from envcheck.smoke.models import SmokeReport

            return SmokeReport.model_validate(data).model_dump(mode="json"), None
        if part == "bench":
            from envcheck.bench.models import BenchReport

            return BenchReport.model_validate(data).model_dump(mode="json"), None
        if part == "net":
            return NetFacts.model_validate(data), None
    except Exception as exc:  # msgspec and pydantic validation errors: the part is unreadable
        return None, f"unreadable {part}: {str(exc).splitlines()[0][:200]}"
    return data, None


def interpret(run: NodeRun, wanted: Sequence[str] = ("report",)) -> NodeResult:
    """Status, reason and parts of one node from what its engine brought back."""
    result = NodeResult(name=run.name, address=run.address, status=NodeStatus.OK, seconds=run.seconds)
    if run.unreachable:
        result.status, result.reason = NodeStatus.UNREACHABLE, run.unreachable
        return result
    parts = parse(run.stdout)
    hello, done = parts.get("hello"), parts.get("done")
    if hello:
        result.hostname = hello.get("hostname")
    if done and isinstance(done.get("seconds"), (int, float)):
        result.node_seconds = float(done["seconds"])
    for part in (*wanted, "net"):
        payload = parts.get(part)
        if payload is None:
            if part in wanted:
                result.missing[part] = "not received"
            continue
        value, why = _validated(part, payload)
        if why is not None:
            result.missing[part] = why
        if value is None:
            continue
        if part == "report":
            result.report = value
        elif part == "smoke":
            result.smoke = value
        elif part == "bench":
            result.bench = value
        elif part == "net":
            result.net = value
    result.status, result.reason = _status(run, hello is not None, done is not None, parts, result, wanted)
    return result


def _status(  # noqa: PLR0917 (the facts one verdict needs)
    run: NodeRun,
    started: bool,
    finished: bool,
    parts: dict[str, dict[str, Any]],
    result: NodeResult,
    wanted: Sequence[str],
) -> tuple[NodeStatus, str | None]:
    got = _received(parts)
    if finished and ("report" not in wanted or result.report is not None) and not run.timed_out:
        return NodeStatus.OK, None
    if run.timed_out and not finished:
        return NodeStatus.HUNG, f"no answer within {run.seconds:.0f}s{got}"
    deadline = parts.get("deadline")
    if deadline and not finished:
        return NodeStatus.HUNG, f"did not finish within its {deadline.get('limit', '?')}s deadline{got}"
    sig = run.signal
    if sig is None and run.exit_code is not None and 128 < run.exit_code <= 128 + 64 and started:
        sig = str(run.exit_code - 128)  # a shell between us and envcheck reports a signal as 128+N
    if sig is not None:
        name = signal_name(int(sig) if sig.isdigit() else sig)
        return NodeStatus.CRASHED, f"killed by {name}{' mid-run' if started else ''}{got}"
    if run.engine_error:
        return NodeStatus.CRASHED, f"{run.engine_error}{got}"
    if finished:  # it said done but its report is unusable
        return NodeStatus.FAILED, result.missing.get("report", "no report")
    last = _last_line(run.stderr) or _last_line(run.stdout)
    if not started:
        if run.exit_code == 127:
            return NodeStatus.FAILED, f"envcheck not found on the node: {last or 'command not found'}"
        if run.exit_code == 126:
            return NodeStatus.FAILED, f"envcheck is not executable on the node: {last or 'permission denied'}"
        if run.exit_code not in (None, 0):
            return (
                NodeStatus.FAILED,
                f"envcheck could not start (exit {run.exit_code}): {last or 'no output'}",
            )
        return NodeStatus.FAILED, f"no envcheck answer in the output: {last or 'nothing printed'}"
    code = "" if run.exit_code is None else f" with code {run.exit_code}"
    return NodeStatus.CRASHED, f"exited{code} mid-run{got}: {last or 'no message'}"
