"""Read a saved envcheck JSON report, refusing one written by a newer, incompatible envcheck."""

from __future__ import annotations

import json

import msgspec

from envcheck.errors import UsageError
from envcheck.models import SCHEMA_VERSION, Report

_UPGRADE = "pip install -U mlrig"


def _major(version: str, origin: str) -> int:
    head = version.split(".", 1)[0]
    if not head.isdigit():
        raise UsageError(f"{origin}: schema_version {version!r} is not MAJOR.MINOR")
    return int(head)


def load_json(text: str, origin: str) -> Report:
    """The Report in ``text``; unknown extra fields are ignored, a newer major is refused."""
    try:
        # raw_decode: a note pasted after the JSON is not part of the report
        data, _ = json.JSONDecoder().raw_decode(text)
    except RecursionError:  # "[[[[..." thousands deep: no report nests like that
        raise UsageError(f"{origin}: not valid JSON: nested too deeply to be a report") from None
    except json.JSONDecodeError as exc:
        body = text.rstrip()
        truncated = (
            exc.pos >= len(body)
            or exc.msg.startswith("Unterminated string")
            or body.count("{") > body.count("}")
        )
        cut = " (the file looks truncated)" if truncated else ""
        raise UsageError(
            f"{origin}: not valid JSON{cut}: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="save the report again with `envcheck --json > report.json`",
        ) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise UsageError(
            f"{origin}: JSON, but not an envcheck report (no schema_version)",
            hint="give a file written by `envcheck --json`, or collect_env output",
        )
    version = str(data["schema_version"])
    if _major(version, origin) > _major(SCHEMA_VERSION, origin):
        raise UsageError(
            f"{origin}: report schema {version} is newer than this envcheck reads ({SCHEMA_VERSION})",
            hint=f"upgrade envcheck: {_UPGRADE}",
        )
    try:
        return Report.model_validate(data)
    except msgspec.ValidationError as exc:
        # msgspec names the first offending field: "Expected `int`, got `str` - at `$.snapshot.cpu.cores`"
        raise UsageError(f"{origin}: not a valid envcheck report: {exc}") from None
