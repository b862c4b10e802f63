"""JSON Schemas (draft 2020-12) of what envcheck's ``--json`` outputs write (``envcheck schema``).

Every JSON document envcheck and provision print is an object whose ``schema_version`` is a
``"<major>.<minor>"`` string: the major changes when a field changes meaning or goes away, the
minor when fields are added. Readers check the major.
"""

from __future__ import annotations

from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"
KINDS = ("report", "smoke", "bench")


def json_schema(kind: str = "report") -> dict[str, Any]:
    """The schema of ``envcheck --json`` (report), ``envcheck smoke --json`` or ``envcheck bench --json``."""
    body: dict[str, Any]
    if kind == "report":
        from envcheck.models import Report

        body = Report.model_json_schema()
    elif kind == "smoke":
        from envcheck.smoke.models import SmokeReport

        body = SmokeReport.model_json_schema()
    elif kind == "bench":
        from envcheck.bench.models import BenchReport

        body = BenchReport.model_json_schema()
    else:
        raise ValueError(f"unknown schema {kind!r}; one of {', '.join(KINDS)}")
    return {"$schema": DIALECT, "title": f"envcheck {kind}", **body}
