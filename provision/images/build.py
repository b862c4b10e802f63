"""Build a rendered context end to end: pick the backend, make sure the base exists, build, inspect, push.

The steps a user would otherwise chain by hand, with the checks that make a result trustworthy:
the built image's base must carry the CUDA its labels promise (NVIDIA's env conventions).
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import ProvisionError, UsageError
from provision.images import backends
from provision.images._docker import ImageInfo
from provision.images.backends import BuildEvent, BuildRequest


class StackMismatch(ProvisionError):
    """The image was built, but its base contradicts the plan (wrong CUDA, root user...)."""

    exit_code = 1


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    tag: str
    backend: str
    seconds: float
    info: ImageInfo
    problems: list[str] = field(default_factory=list)
    pushed: str | None = None


# Docker's image reference grammar (github.com/distribution/reference: reference.go, regexp.go)
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*"
    r"[a-zA-Z0-9]))*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def _valid_reference(ref: str) -> bool:
    rest, _, digest = ref.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        return False
    name, tag = rest, ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            return False
    parts = name.split("/")
    # the first part is a registry only when it looks like one (a dot, a port, or localhost)
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _DOMAIN.fullmatch(parts[0]):
            return False
        parts = parts[1:]
    return 0 < len(name) <= 255 and all(_COMPONENT.fullmatch(p) for p in parts)


def check_reference(ref: str, what: str = "--tag") -> None:
    """A usage error unless ``ref`` is a valid image reference (``name[:tag]``, lowercase name)."""
    if not _valid_reference(ref):
        raise UsageError(
            f"{what} {ref!r} is not a valid image reference",
            hint="name[:tag] with a lowercase name, e.g. mlrig/torch:2.6-cu124 or registry:5000/team/img:v1",
        )


def default_tag(dockerfile_text: str) -> str:
    """``mlrig/<framework>:<version>-<cuda12.4|cpu>`` from the Dockerfile's labels."""
    from provision.images.lint import parser

    labels = parser(dockerfile_text).labels
    fw = labels.get("dev.mlrig.framework") or "image"
    version = (labels.get("dev.mlrig.framework.version") or "dev").replace("*", "x")
    device = f"cuda{labels['dev.mlrig.cuda']}" if labels.get("dev.mlrig.cuda") else "cpu"
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{version}-{device}")[:128]
    return f"mlrig/{fw}:{tag}"


def build_image(
    context: Path,
    *,
    tag: str | None = None,
    backend: str = "auto",
    build_args: dict[str, str] | None = None,
    network: str | None = "host",
    no_cache: bool = False,
    push: str | None = None,
    timeout: float = 3600.0,
    on_event: Callable[[BuildEvent], None] = lambda e: None,
) -> BuildOutcome:
    """Build ``context`` (rendered by ``provision image render``) and report size and layers."""
    from provision.images import _docker, selftest

    dockerfile = context / "Dockerfile"
    if not dockerfile.is_file():
        raise UsageError(
            f"no Dockerfile in {context}", hint=f"render one first: provision image render ... -o {context}"
        )
    text = dockerfile.read_text()
    args = dict(build_args or {})
    chosen = backends.select(text, backend)
    backends.ensure_base_images(backends.base_images(text, args), on_event)
    name = tag or default_tag(text)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    req = BuildRequest(
        context=context,
        tag=name,
        build_args=args,
        labels={"org.opencontainers.image.created": created},
        network=network,
        no_cache=no_cache,
        timeout=timeout,
    )
    start = time.monotonic()
    image_id = chosen.build(req, on_event)
    seconds = time.monotonic() - start
    c = _docker.client()
    info = _docker.inspect(c, name)
    problems = selftest.check_stack(info)
    pushed = None
    if push:
        _docker.tag(c, name, push)
        for chunk in _docker.push(c, push):
            if "error" in chunk:
                raise ProvisionError(
                    f"push to {push} failed: {chunk['error']}",
                    hint="log in first (`docker login REGISTRY`), and check the registry name",
                )
            event = backends.sdk_event(chunk)
            if event is not None:
                on_event(event)
        pushed = push
    return BuildOutcome(image_id, name, chosen.name, seconds, info, problems, pushed)
