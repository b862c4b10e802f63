"""Verdicts: every rule module registers itself on import; ``evaluate`` applies them all."""

from __future__ import annotations

from envcheck.models import Finding, SkippedRule, Snapshot

# Importing a rule module registers its rules (one module per concern).
from envcheck.rules import (  # noqa: F401  (imported for registration)
    _base,
    _placeholder,
)

REGISTRY = _base.REGISTRY


def evaluate(snapshot: Snapshot) -> tuple[list[Finding], list[SkippedRule]]:
    """All findings for ``snapshot`` (errors first) and the rules skipped for lack of facts."""
    return _base.run(snapshot, REGISTRY.values())
