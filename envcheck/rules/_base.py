"""The rule registry: a rule reads a Snapshot and yields Findings, or says which facts it lacks.

Absent data never yields a verdict: a rule calls ``need(value, "what")`` for every fact it
uses, and a missing one skips the rule with that reason instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from envcheck.models import Finding, Severity, SkippedRule, Snapshot

T = TypeVar("T")


class MissingFacts(Exception):
    """Raised inside a rule when a fact it needs is not in the Snapshot."""


def need(value: T | None, what: str) -> T:
    """Return ``value``, or skip the calling rule because ``what`` is unknown."""
    if value is None:
        raise MissingFacts(f"{what} unknown")
    return value


RuleFunc = Callable[[Snapshot], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    func: RuleFunc
    #: the most severe a finding of this rule can be (a finding may say less, never more)
    severity: Severity = Severity.WARNING


REGISTRY: dict[str, Rule] = {}


def rule(rule_id: str, summary: str, severity: Severity = Severity.WARNING) -> Callable[[RuleFunc], RuleFunc]:
    """Register ``func`` under the stable ``rule_id``; ``summary`` documents what it checks."""

    def wrap(func: RuleFunc) -> RuleFunc:
        if rule_id in REGISTRY:
            raise ValueError(f"rule id {rule_id!r} registered twice")
        REGISTRY[rule_id] = Rule(rule_id, summary, func, severity)
        return func

    return wrap


def run(snapshot: Snapshot, rules: Iterable[Rule]) -> tuple[list[Finding], list[SkippedRule]]:
    """Apply ``rules``; a rule that lacks facts or fails is listed as skipped with the reason."""
    findings: list[Finding] = []
    skipped: list[SkippedRule] = []
    for r in rules:
        try:
            findings.extend(r.func(snapshot))
        except MissingFacts as exc:
            skipped.append(SkippedRule(id=r.id, reason=str(exc)))
        except Exception as exc:  # a rule bug must not cost the report
            skipped.append(SkippedRule(id=r.id, reason=f"rule failed: {type(exc).__name__}: {exc}"))
    findings.sort(key=lambda f: (f.severity.rank, f.id))
    return findings, skipped
