"""Render a plan into a build context: Dockerfile and .dockerignore from the Jinja2 templates.

Pure text generation (``render_dockerfile``) plus one function that writes a context directory
(``write_context``): the Dockerfile, the .dockerignore, ``.mlrig/`` with local wheels and the
optional build-time CA bundle (read by the builder stage only), and an empty source dir when
the project has none yet.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import UsageError
from provision.images.resolve import ImagePlan

if TYPE_CHECKING:
    import jinja2

#: the wheel/build-area directory inside a rendered context (builder stage only)
MLRIG_DIR = ".mlrig"


@dataclass(frozen=True)
class RenderOptions:
    """How to write the Dockerfile, beyond the plan itself."""

    #: BuildKit cache mounts for pip and apt (only when the build backend supports them)
    cache_mounts: bool = False
    #: copy this CA bundle into the builder stage (TLS-intercepting proxies); never in the runtime stage
    ca_bundle: Path | None = None
    #: local wheels pip may use (``--find-links``): a framework wheel, envcheck's own wheel, ...
    wheels: tuple[Path, ...] = ()
    #: the project's source directory inside the context, copied last into /workspace
    source_dir: str = "src"
    #: a ``# syntax=`` line (off by default: offline builders cannot fetch the frontend image)
    syntax: str | None = None
    uid: int = 1000
    gid: int = 1000
    #: whether the context has a requirements.txt (set by write_context)
    requirements: bool = False
    extra_labels: dict[str, str] = field(default_factory=dict)


def templates_dir() -> Path:
    """The Jinja2 templates: shipped inside the package, or the checkout's top-level dockerfiles/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "dockerfiles", here.parents[1] / "dockerfiles"):
        if (candidate / "_base.Dockerfile.j2").is_file():
            return candidate
    raise FileNotFoundError("mlrig's Dockerfile templates are missing (dockerfiles/); reinstall mlrig")


def _env() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Dockerfiles, not HTML
    )


def _quote(value: str) -> str:
    """A Dockerfile LABEL value: JSON string quoting is what the Dockerfile parser accepts."""
    return json.dumps(value)


def _env_value(value: str) -> str:
    """ENV values with spaces, quotes or shell-special characters go in double quotes."""
    if value and all(c.isalnum() or c in "/_.,:-$" for c in value):
        return value
    return _quote(value)


def torch_arch_list(plan: ImagePlan) -> str:
    """TORCH_CUDA_ARCH_LIST for extensions: the GPUs asked for, else everything torch itself carries."""
    from envcheck.knowledge import archs

    if plan.gpus:
        ccs = sorted({cc for g in plan.gpus if (cc := archs.parse_cc(g.compute_capability)) is not None})
        return " ".join(f"{cc[0]}.{cc[1]}" for cc in ccs)
    codes = [c for c in (archs.parse_code(a) for a in plan.archs or ()) if c is not None]
    sass = sorted({c.cc for c in codes if c.kind == "sm"})
    ptx = {c.cc for c in codes if c.kind == "compute"}
    items = [f"{cc[0]}.{cc[1]}" + ("+PTX" if cc in ptx else "") for cc in sass]
    return " ".join(items) or "8.0 9.0+PTX"


def render_dockerfile(plan: ImagePlan, opts: RenderOptions | None = None) -> str:
    """The Dockerfile text for ``plan`` (pure)."""
    from envcheck import __version__

    o = opts or RenderOptions()

    def index_flags(index: str | None) -> str:
        if index is None:
            return ""
        return " --no-index" if index == "none" else f" --index-url {index}"

    def pip() -> str:
        return "pip install" + ("" if o.cache_mounts else " --no-cache-dir")

    def run_mounts(kind: str) -> str:
        if not o.cache_mounts:
            return ""
        if kind == "apt":
            return (
                "--mount=type=cache,target=/var/cache/apt,sharing=locked "
                "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked "
            )
        return "--mount=type=cache,target=/root/.cache/pip "

    def labels() -> str:
        merged = {**plan.labels(), **o.extra_labels}
        return " \\\n      ".join(f"{k}={_quote(v)}" for k, v in merged.items())

    def env(**pairs: str | None) -> str:
        """One ENV instruction; None values are left out."""
        items = [f"{k}={_env_value(v)}" for k, v in pairs.items() if v is not None]
        return "ENV " + " \\\n    ".join(items)

    template = _env().get_template(f"{plan.framework}.Dockerfile.j2")
    return template.render(
        plan=plan,
        o=o,
        mlrig_version=__version__,
        index_flags=index_flags,
        pip=pip,
        run_mounts=run_mounts,
        labels=labels,
        env=env,
        arch_list=lambda: torch_arch_list(plan),
    )


def render_dockerignore() -> str:
    return _env().get_template("dockerignore.j2").render()


@dataclass(frozen=True)
class Context:
    """A written build context."""

    path: Path
    dockerfile: Path
    wheels: tuple[Path, ...]
    requirements: bool


def write_context(plan: ImagePlan, out: Path, opts: RenderOptions | None = None) -> Context:
    """Write Dockerfile, .dockerignore and .mlrig/ into ``out`` (created if missing).

    Existing project files are left alone; an existing Dockerfile is replaced (it is ours to render).
    """
    o = opts or RenderOptions()
    for w in o.wheels:
        if not w.is_file() or w.suffix != ".whl":
            raise UsageError(f"not a wheel file: {w}", hint="give the path of a .whl file")
    if o.ca_bundle is not None and not o.ca_bundle.is_file():
        raise UsageError(
            f"CA bundle not found: {o.ca_bundle}", hint="e.g. /etc/ssl/certs/ca-certificates.crt"
        )
    if Path(o.source_dir).is_absolute() or ".." in Path(o.source_dir).parts:
        raise UsageError(f"--source must be a directory inside the context: {o.source_dir!r}")
    out.mkdir(parents=True, exist_ok=True)
    area = out / MLRIG_DIR
    wheel_dir = area / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for w in o.wheels:
        target = wheel_dir / w.name
        if not target.exists() or target.stat().st_size != w.stat().st_size:
            shutil.copy2(w, target)
        copied.append(target)
    # pip wants a file in every find-links dir; a README keeps the (possibly empty) dir in COPY
    (wheel_dir / "README").write_text("Local wheels pip may install from (--find-links), copied by mlrig.\n")
    ca = area / "ca.pem"
    if o.ca_bundle is not None:
        shutil.copyfile(o.ca_bundle, ca)
    elif ca.exists():
        ca.unlink()
    (out / o.source_dir).mkdir(parents=True, exist_ok=True)
    requirements = (out / "requirements.txt").is_file()
    final = RenderOptions(**{**o.__dict__, "requirements": requirements})
    dockerfile = out / "Dockerfile"
    dockerfile.write_text(render_dockerfile(plan, final))
    (out / ".dockerignore").write_text(render_dockerignore())
    (area / "plan.json").write_text(plan.model_dump_json(indent=2) + "\n")
    return Context(out, dockerfile, tuple(copied), requirements)
