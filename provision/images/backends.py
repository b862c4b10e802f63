"""Build backends behind one interface: the docker SDK (legacy builder) and the docker CLI with BuildKit.

Why two: docker-py cannot drive BuildKit (docker/docker-py#2230), and only BuildKit understands
``RUN --mount`` cache mounts. The SDK backend is the portable default; the CLI backend is chosen
when the Dockerfile uses cache mounts. Both report progress as the same :class:`BuildEvent`
stream and fail with the same :class:`BuildFailed` naming the failing step and its Dockerfile line.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from provision.errors import ProvisionError, UsageError

EventKind = Literal["step", "log", "download", "pull"]


@dataclass(frozen=True)
class BuildEvent:
    """One progress message, backend-neutral."""

    kind: EventKind
    text: str = ""
    step: int | None = None
    total: int | None = None
    #: bytes so far / expected, for downloads and pulls
    current: int | None = None
    size: int | None = None
    #: layer or download id, to track several at once
    key: str | None = None


OnEvent = Callable[[BuildEvent], None]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    tag: str
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    #: "host" lets RUN steps reach package indexes on engines started with --bridge=none
    network: str | None = "host"
    no_cache: bool = False
    timeout: float = 3600.0


class BuildFailed(ProvisionError):
    """A build step failed; the message names the step, the hint carries its last output lines."""


class Backend(Protocol):
    name: str
    #: understands RUN --mount (BuildKit)
    cache_mounts: bool

    def build(self, req: BuildRequest, on_event: OnEvent) -> str:
        """Build ``req``; returns the image id. Raises BuildFailed / EngineUnavailable."""
        ...


# --------------------------------------------------------------------------- failure reporting


def dockerfile_line(dockerfile: Path, instruction: str) -> int | None:
    """The line where ``instruction`` ("RUN pip install ...") starts in the Dockerfile, if found."""
    from provision.errors import MissingDependencyError
    from provision.images.lint import parser

    try:
        structure = parser(dockerfile.read_text()).structure
    except (MissingDependencyError, OSError, ValueError):
        return None
    want = " ".join(instruction.split()).lower()
    for item in structure:
        text = " ".join(f"{item['instruction']} {item['value']}".split()).lower()
        if want and (text.startswith(want[:120]) or want.startswith(text[:120])):
            return int(item["startline"]) + 1
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BK_PREFIX = re.compile(r"^#\d+ (?:[\d.]+ )?")
_STAGE = re.compile(r"^\[([\w.-]+)\]\s*")


def clean(line: str) -> str:
    """A build output line without colour codes or BuildKit's "#9 0.338 " prefix."""
    return _BK_PREFIX.sub("", _ANSI.sub("", line)).rstrip()


def _failure(req: BuildRequest, step: str, message: str, tail: Iterable[str]) -> BuildFailed:
    """Name the failing instruction, its stage and Dockerfile line; the hint is the tool's own error."""
    lines = [clean(ln) for ln in tail if clean(ln).strip()]
    errors = [
        ln for ln in lines if re.search(r"\bERROR\b|error:|No matching distribution|Could not find", ln)
    ]
    stage = _STAGE.match(step)
    instruction = _STAGE.sub("", step).strip()
    where = dockerfile_line(req.context / req.dockerfile, instruction) if instruction else None
    context = ", ".join(
        x
        for x in (f"{stage.group(1)} stage" if stage else "", f"Dockerfile line {where}" if where else "")
        if x
    )
    code = re.search(r"(?:non-zero code|exit code):? (\d+)", message)
    why = f"exit code {code.group(1)}" if code else clean(message)[:300]
    detail = (errors or lines)[-6:]
    return BuildFailed(
        f"build failed at {instruction[:200] or 'an unknown step'}"
        + (f" ({context})" if context else "")
        + f": {why}",
        hint="\n".join(detail) if detail else None,
    )


# --------------------------------------------------------------------------- docker SDK (legacy builder)

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$", re.IGNORECASE)
# podman's compatible API: "STEP 3/12: RUN ..." or "[2/2] STEP 3/5: ..."
_PSTEP = re.compile(r"^(?:\[\d+/\d+\] )?STEP (\d+)/(\d+): (.*)$")


def sdk_event(chunk: dict[str, Any]) -> BuildEvent | None:
    """One legacy-builder JSON message as a BuildEvent (None for messages without content)."""
    if "stream" in chunk:
        text = str(chunk["stream"]).rstrip("\n")
        if not text.strip():
            return None
        m = _STEP.match(text.strip()) or _PSTEP.match(text.strip())
        if m:
            return BuildEvent("step", m.group(3), int(m.group(1)), int(m.group(2)))
        return BuildEvent("log", _ANSI.sub("", text))
    if "status" in chunk:
        detail = chunk.get("progressDetail") or {}
        return BuildEvent(
            "pull",
            f"{chunk.get('status')} {chunk.get('id', '')}".strip(),
            current=detail.get("current"),
            size=detail.get("total"),
            key=chunk.get("id"),
        )
    return None


class SdkBackend:
    """docker-py against the engine's legacy builder: portable, no BuildKit features."""

    name = "sdk"
    cache_mounts = False

    def build(self, req: BuildRequest, on_event: OnEvent) -> str:
        from provision.images import _docker

        c = _docker.client(timeout=req.timeout)
        step, tail, image_id = "", deque[str](maxlen=40), ""
        for chunk in _docker.build_stream(
            c,
            req.context,
            req.tag,
            dockerfile=req.dockerfile,
            buildargs=req.build_args,
            labels=req.labels,
            network_mode=req.network,
            nocache=req.no_cache,
        ):
            if "error" in chunk:
                raise _failure(req, step, str(chunk.get("error", "")), tail)
            aux = chunk.get("aux") or {}
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
            event = sdk_event(chunk)
            if event is None:
                continue
            if event.kind == "step":
                step, tail = event.text, deque(maxlen=40)
            elif event.kind == "log":
                tail.extend(event.text.splitlines())
            on_event(event)
        if not image_id:
            image_id = _docker.inspect(c, req.tag).id
        return image_id


# --------------------------------------------------------------------------- docker CLI + BuildKit

_BK_STEP = re.compile(r"^#(\d+) \[(?:([\w.-]+) )?(\d+)/(\d+)\] (.*)$")
_BK_BYTES = re.compile(r"^#(\d+) (sha256:[0-9a-f]{8,}) ([\d.]+)([kMG]?B) / ([\d.]+)([kMG]?B)")
_BK_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def buildkit_event(line: str) -> BuildEvent | None:
    """One line of BuildKit's ``--progress plain`` output as a BuildEvent."""
    text = line.rstrip("\n")
    m = _BK_STEP.match(text)
    if m:
        stage = f"[{m.group(2)}] " if m.group(2) else ""
        return BuildEvent("step", f"{stage}{m.group(5)}", int(m.group(3)), int(m.group(4)), key=m.group(1))
    m = _BK_BYTES.match(text)
    if m:
        cur = int(float(m.group(3)) * _UNITS.get(m.group(4), 1))
        size = int(float(m.group(5)) * _UNITS.get(m.group(6), 1))
        return BuildEvent("download", m.group(2)[:19], current=cur, size=size, key=m.group(2))
    if text.strip():
        return BuildEvent("log", clean(text))
    return None


@dataclass(frozen=True)
class Cli:
    """A docker CLI that can build with BuildKit, and how."""

    path: str
    #: "buildx" (`docker buildx build --load`) or "env" (`DOCKER_BUILDKIT=1 docker build`, CLI < 23)
    mode: str
    version: str


def _cli_candidates() -> list[str]:
    forced = os.environ.get("PROVISION_DOCKER_CLI")
    if forced:
        return [forced]
    seen: list[str] = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d) / "docker"
        if (
            p.is_file()
            and os.access(p, os.X_OK)
            and str(p.resolve()) not in {str(Path(s).resolve()) for s in seen}
        ):
            seen.append(str(p))
    return seen


def find_buildkit_cli(timeout: float = 10.0) -> Cli | None:
    """The first docker CLI on PATH that builds with BuildKit (buildx plugin, or a pre-23 CLI)."""
    for path in _cli_candidates():
        try:
            bx = subprocess.run(
                [path, "buildx", "version"], check=False, capture_output=True, text=True, timeout=timeout
            )
            if bx.returncode == 0:
                return Cli(path, "buildx", bx.stdout.strip())
            v = subprocess.run(
                [path, "version", "--format", "{{.Client.Version}}"],
                check=False,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = (v.stdout or "").strip().splitlines()[0] if (v.stdout or "").strip() else ""
        major = re.match(r"(\d+)", version)
        if major and int(major.group(1)) < 23:
            return Cli(path, "env", version)
    return None


class CliBackend:
    """The docker CLI with BuildKit: cache mounts, parallel stages; progress parsed from plain output."""

    name = "cli"
    cache_mounts = True

    def __init__(self, cli: Cli) -> None:
        self.cli = cli

    def command(self, req: BuildRequest) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        if self.cli.mode == "buildx":
            cmd = [self.cli.path, "buildx", "build", "--load"]
        else:
            cmd = [self.cli.path, "build"]
            env["DOCKER_BUILDKIT"] = "1"
        cmd += ["--progress", "plain", "-t", req.tag, "-f", str(req.context / req.dockerfile)]
        if req.network:
            cmd += ["--network", req.network]
        if req.no_cache:
            cmd.append("--no-cache")
        for k, v in req.build_args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        for k, v in req.labels.items():
            cmd += ["--label", f"{k}={v}"]
        cmd.append(str(req.context))
        return cmd, env

    def build(self, req: BuildRequest, on_event: OnEvent) -> str:
        from provision.images import _docker

        c = _docker.client()  # fails early, with the start hint, when no engine answers
        cmd, env = self.command(req)
        step, tail = "", deque[str](maxlen=60)
        steps: dict[str, str] = {}
        deadline = time.monotonic() + req.timeout
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        except OSError as exc:
            raise ProvisionError(f"cannot run {self.cli.path}: {exc}") from None
        failed_step = ""
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise BuildFailed(f"build timed out after {req.timeout:.0f} s at {step or 'start'}")
                tail.append(line.rstrip("\n"))
                m = _BK_ERROR.match(line)
                if m and m.group(1) in steps:
                    failed_step = steps[m.group(1)]
                event = buildkit_event(line)
                if event is None:
                    continue
                if event.kind == "step" and event.key:
                    steps[event.key] = event.text
                    step = event.text
                on_event(event)
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if code != 0:
            last = next(
                (ln for ln in reversed(tail) if ln.startswith(("error:", "ERROR:"))), f"exit code {code}"
            )
            raise _failure(req, failed_step or step, last, tail)
        return _docker.inspect(c, req.tag).id


# --------------------------------------------------------------------------- choosing


def uses_cache_mounts(dockerfile_text: str) -> bool:
    return bool(re.search(r"^\s*RUN\s+(?:--\S+\s+)*--mount=", dockerfile_text, re.MULTILINE))


def select(dockerfile_text: str, preference: str = "auto") -> Backend:
    """The backend for this Dockerfile: BuildKit CLI when it needs cache mounts (or when asked)."""
    needs_bk = uses_cache_mounts(dockerfile_text)
    if preference == "sdk" and needs_bk:
        raise UsageError(
            "this Dockerfile uses RUN --mount (BuildKit); the docker SDK's legacy builder rejects it",
            hint="use --backend cli, or render without --cache-mounts",
        )
    if preference == "cli" or needs_bk:
        cli = find_buildkit_cli()
        if cli is None:
            raise UsageError(
                "no docker CLI that builds with BuildKit was found "
                "(needs the buildx plugin, or a docker CLI < 23)",
                hint="install docker-buildx, or render without --cache-mounts and use --backend sdk",
            )
        return CliBackend(cli)
    if preference not in {"auto", "sdk"}:
        raise UsageError(f"unknown backend {preference!r}", hint="use auto, sdk or cli")
    return SdkBackend()


def base_images(dockerfile_text: str, build_args: dict[str, str]) -> list[str]:
    """The external images the Dockerfile builds FROM (ARG defaults and overrides applied)."""
    from provision.images.lint import parser as dockerfile_parser

    parser = dockerfile_parser(dockerfile_text, build_args)
    stages = {
        m.group(1).lower() for m in re.finditer(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile_text, re.I | re.M)
    }
    out: list[str] = []
    for image in parser.parent_images:
        if image and image.lower() not in stages and image not in out and image != "scratch":
            out.append(image)
    return out


def ensure_base_images(images: list[str], on_event: OnEvent) -> None:
    """Pull the base images that are not local yet; one clear error when one cannot be had."""
    from provision.images import _docker

    c = _docker.client()
    for image in images:
        if _docker.image_exists(c, image):
            continue
        on_event(BuildEvent("step", f"pull {image}"))
        try:
            for chunk in _docker.pull(c, image):
                if "error" in chunk:
                    raise ProvisionError(str(chunk["error"]))
                event = sdk_event(chunk)
                if event is not None:
                    on_event(event)
        except ProvisionError as exc:
            raise UsageError(
                f"base image {image} is not available locally and could not be pulled: {exc.message}",
                hint=f"`docker pull {image}` where a registry is reachable, "
                "or --build-arg BASE_IMAGE=<a local tag>",
            ) from None
