"""The library entry points: collect a Report for this machine, or judge a Snapshot from elsewhere.

The CLI is a thin layer over these; a notebook can call them too.
"""

from __future__ import annotations

import datetime as _dt
import threading

from envcheck import __version__
from envcheck.models import ProbeTiming, Report, Snapshot
from envcheck.probes import ProbeContext, collect


def judge(snapshot: Snapshot, timings: list[ProbeTiming] | None = None) -> Report:
    """Apply every rule to ``snapshot`` and wrap the result in a Report stamped now."""
    from envcheck import rules  # the knowledge base loads only when verdicts are wanted

    findings, skipped = rules.evaluate(snapshot)
    return Report(
        tool_version=__version__,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        snapshot=snapshot,
        findings=findings,
        skipped=skipped,
        timings=timings or [],
    )


def _load_rules() -> None:
    import envcheck.rules  # noqa: F401  (the import registers every rule)


def check(ctx: ProbeContext | None = None) -> Report:
    """Collect this machine's Snapshot and judge it (what ``envcheck`` prints).

    The rules and their knowledge tables load in a thread while the probes wait on the
    machine, so judging adds almost nothing to the wall time.
    """
    loader = threading.Thread(target=_load_rules, name="load-rules", daemon=True)
    loader.start()
    snapshot, timings = collect(ctx or ProbeContext())
    loader.join()
    return judge(snapshot, timings)


def rejudge(report: Report) -> Report:
    """Re-run today's rules on a saved or ingested report, keeping its facts and timings."""
    fresh = judge(report.snapshot, report.timings)
    return fresh.model_copy(update={"created_at": report.created_at or fresh.created_at})
