"""Verdicts: every rule module registers itself on import; ``evaluate`` applies them all.

One module per concern: driver (driver layer), wheels (framework builds), arch (GPU code),
libraries (CUDA user space), devices (GPU selection and health), host (container, memory),
tpu. ``catalog()`` lists every rule id with its severity and meaning (``envcheck rules``).
"""

from __future__ import annotations

# Importing a rule module registers its rules (one module per concern).
import envcheck.rules.arch
import envcheck.rules.coverage
import envcheck.rules.devices
import envcheck.rules.driver
import envcheck.rules.host
import envcheck.rules.libraries
import envcheck.rules.pasted
import envcheck.rules.tpu
import envcheck.rules.wheels
from envcheck.models import Finding, SkippedRule, Snapshot
from envcheck.rules import _base

REGISTRY = _base.REGISTRY


def evaluate(snapshot: Snapshot) -> tuple[list[Finding], list[SkippedRule]]:
    """All findings for ``snapshot`` (errors first) and the rules skipped for lack of facts; for pasted
    text also what its error lines prove (``pasted.complete``)."""
    findings, skipped = _base.run(snapshot, REGISTRY.values())
    return envcheck.rules.pasted.complete(snapshot, findings, skipped)


def catalog() -> list[tuple[str, str, str]]:
    """Every rule as (id, severity, meaning), sorted by id: the table README and ``envcheck rules`` show."""
    return sorted((r.id, r.severity.value, r.summary) for r in REGISTRY.values())


def catalog_markdown() -> str:
    """``catalog()`` as a Markdown table, ready to paste into the README."""
    lines = ["| id | severity | meaning |", "|---|---|---|"]
    lines += [f"| `{i}` | {sev} | {summary} |" for i, sev, summary in catalog()]
    return "\n".join(lines) + "\n"
