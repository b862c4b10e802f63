"""The only module that imports the docker SDK (lazily): client, legacy builds, inspect, run, push.

Every docker error is translated here into a ProvisionError whose hint is the next command to
run; nothing above this module sees a docker exception. The engine is the one ``DOCKER_HOST``
names (``docker.from_env``), as with the docker CLI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import MissingDependencyError, ProvisionError, UsageError


def start_hint() -> str:
    """How to get an engine: the system's, or (in a checkout) a private one from our script."""
    hint = (
        "start Docker (`sudo systemctl start docker`; to install it: "
        "https://docs.docker.com/engine/install/), or point DOCKER_HOST at a running engine "
        "(unix:///run/user/$UID/docker.sock for rootless Docker)"
    )
    script = Path(__file__).resolve().parents[2] / "scripts" / "docker-engine.sh"
    if script.is_file():  # a checkout: the private engine the tests use works here too
        hint += f"; or a private one: `eval $({script} start)` then `export DOCKER_HOST`"
    return hint


class EngineUnavailable(ProvisionError):
    """No Docker engine answers at DOCKER_HOST (or the docker SDK is not installed)."""


@dataclass(frozen=True)
class Layer:
    created_by: str
    size: int


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: list[str]
    size: int
    layers: list[Layer]
    labels: dict[str, str]
    env: dict[str, str]
    user: str


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _sdk() -> Any:
    try:
        import docker
    except ImportError:
        raise MissingDependencyError(
            "the docker Python SDK is not installed", hint="pip install 'mlrig[docker]'"
        ) from None
    return docker


def host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def client(timeout: float = 120.0) -> Any:
    """A connected DockerClient (API version negotiated); EngineUnavailable when none answers."""
    docker = _sdk()
    try:
        c = docker.from_env(timeout=int(timeout))
        c.ping()
    except Exception as exc:  # DockerException, requests' ConnectionError, FileNotFoundError...
        raise EngineUnavailable(
            f"no Docker engine answers at {host()} ({_short(exc)})", hint=start_hint()
        ) from None
    return c


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for needle, plain in (
        ("FileNotFoundError", "no socket there"),
        ("Connection refused", "connection refused"),
        ("Permission denied", "permission denied: join the docker group, or use sudo"),
    ):
        if needle in text:
            return plain
    return text[:200]


def translate(exc: BaseException, what: str) -> ProvisionError:
    """Turn any docker SDK error into one ProvisionError with a hint."""
    docker = _sdk()
    if isinstance(exc, docker.errors.ImageNotFound):
        return UsageError(
            f"{what}: image not found ({_short(exc)})", hint="`docker images` lists what is local"
        )
    if isinstance(exc, docker.errors.APIError):
        return ProvisionError(f"{what}: the engine said: {exc.explanation or _short(exc)}")
    if isinstance(exc, docker.errors.DockerException):
        return EngineUnavailable(f"{what}: {_short(exc)}", hint=start_hint())
    return ProvisionError(f"{what}: {_short(exc)}")


def image_exists(c: Any, name: str) -> bool:
    docker = _sdk()
    try:
        c.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False
    except Exception as exc:
        raise translate(exc, f"inspect {name}") from None


def pull(c: Any, name: str) -> Iterator[dict[str, Any]]:
    """Pull ``name`` with the engine's JSON progress messages."""
    repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    try:
        yield from c.api.pull(repo, tag=tag or None, stream=True, decode=True)
    except Exception as exc:
        raise translate(exc, f"pull {name}") from None


def build_stream(
    c: Any,
    context: Path,
    tag: str,
    *,
    dockerfile: str = "Dockerfile",
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    network_mode: str | None = None,
    nocache: bool = False,
) -> Iterator[dict[str, Any]]:
    """The legacy builder's JSON messages for one build (``stream``, ``status``, ``error``, ``aux``)."""
    try:
        yield from c.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=buildargs or None,
            labels=labels or None,
            network_mode=network_mode,
            nocache=nocache,
            rm=True,
            forcerm=True,
            decode=True,
        )
    except Exception as exc:
        raise translate(exc, "build") from None


def inspect(c: Any, name: str) -> ImageInfo:
    """Size, layers (newest first, as `docker history`), labels, env and user of an image."""
    try:
        attrs = c.api.inspect_image(name)
        history = c.api.history(name)
    except Exception as exc:
        raise translate(exc, f"inspect {name}") from None
    cfg = attrs.get("Config") or {}
    env = dict(item.split("=", 1) for item in cfg.get("Env") or [] if "=" in item)
    return ImageInfo(
        id=attrs.get("Id", ""),
        tags=list(attrs.get("RepoTags") or []),
        size=int(attrs.get("Size") or 0),
        layers=[Layer(h.get("CreatedBy", ""), int(h.get("Size") or 0)) for h in history],
        labels=dict(cfg.get("Labels") or {}),
        env=env,
        user=cfg.get("User") or "",
    )


def run(
    c: Any,
    image: str,
    command: list[str],
    *,
    gpus: bool = False,
    timeout: float = 300.0,
    network: str = "none",
) -> RunResult:
    """Run ``command`` in a fresh container of ``image``, wait up to ``timeout`` s, remove it."""
    docker = _sdk()
    kwargs: dict[str, Any] = {"network_mode": network, "detach": True}
    if gpus:
        kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    try:
        container = c.containers.run(image, command, **kwargs)
    except Exception as exc:
        raise translate(exc, f"run {image}") from None
    timed_out = False
    code: int | None = None
    try:
        try:
            status = container.wait(timeout=timeout)
            code = int(status.get("StatusCode", -1))
        except Exception:  # requests' ReadTimeout: the command hung
            timed_out = True
            container.kill()
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    return RunResult(code, out, err, timed_out)


def tag(c: Any, image: str, target: str) -> None:
    repo, _, t = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "latest")
    try:
        c.api.tag(image, repo, tag=t)
    except Exception as exc:
        raise translate(exc, f"tag {target}") from None


def push(c: Any, target: str) -> Iterator[dict[str, Any]]:
    repo, _, t = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "latest")
    try:
        yield from c.api.push(repo, tag=t, stream=True, decode=True)
    except Exception as exc:
        raise translate(exc, f"push {target}") from None


def remove_image(c: Any, name: str) -> None:
    try:
        c.api.remove_image(name, force=True, noprune=False)
    except Exception as exc:
        raise translate(exc, f"remove {name}") from None
