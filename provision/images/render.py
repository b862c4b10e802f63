"""Render a plan into a build context: Dockerfile and .dockerignore from the Jinja2 templates.

Pure text generation (``render_dockerfile``) plus one function that writes a context directory
(``write_context``): the Dockerfile, the .dockerignore, ``.mlrig/`` with local wheels (mlrig's
own among them, see ``selfwheel``) and the optional build-time CA bundle (read by the builder
stage only), and an empty source dir when the project has none yet.

A Dockerfile or .dockerignore that is already there is replaced only when it is ours and
unchanged: ``.mlrig/rendered.json`` records the SHA-256 of what was written, so a hand-written
file, or a rendered one edited since, is refused unless ``force``. Files are written through
symlinks (``envcheck.userfiles``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from envcheck.userfiles import WriteFailed, write_text
from provision.errors import ProvisionError, UsageError
from provision.images import selfwheel
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
    #: pack the running mlrig into the context and install envcheck from it (not from an index)
    bundle_self: bool = False
    #: what the image's pip installs envcheck from, when not the plan's requirement (set by write_context)
    envcheck_install: str | None = None
    #: replace a Dockerfile/.dockerignore that mlrig did not write (or that was edited since)
    force: bool = False


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
    #: mlrig's own wheel packed from the running code (None: envcheck comes from an index or --wheel)
    self_wheel: Path | None = None


#: the record of what render wrote, to tell our files from the user's
RECORD = "rendered.json"
#: files of a context that render owns (written only when absent, ours and unchanged, or forced)
OWNED = ("Dockerfile", ".dockerignore")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _written_before(area: Path) -> dict[str, str]:
    try:
        data = json.loads((area / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _check_ownership(out: Path, area: Path, force: bool) -> None:
    """Refuse to replace a Dockerfile or .dockerignore that is not ours as we wrote it."""
    if force:
        return
    record = _written_before(area)
    for name in OWNED:
        path = out / name
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            current = _sha256(path.read_text(errors="replace"))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        if record.get(name) != current:
            raise UsageError(
                f"{path} exists and was not written by provision (or was edited since): not replacing it",
                hint="--force replaces it; or render into another directory with -o",
            )


def _prepare_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: is a file; render writes a build context into a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> None:
    try:
        write_text(path, text)
    except WriteFailed as exc:
        raise ProvisionError(str(exc)) from None


def write_context(plan: ImagePlan, out: Path, opts: RenderOptions | None = None) -> Context:
    """Write Dockerfile, .dockerignore and .mlrig/ into ``out`` (created if missing).

    Existing project files are left alone; a Dockerfile or .dockerignore is replaced only when
    render wrote it and it is unchanged (or ``opts.force``).
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
    _prepare_dir(out)
    area = out / MLRIG_DIR
    _check_ownership(out, area, o.force)
    try:
        return _write_context(plan, out, area, o)
    except OSError as exc:  # a disk that fills or a directory that turns read-only half way
        where = exc.filename or out
        raise ProvisionError(f"cannot write {where}: {exc.strerror or exc}") from None


def _write_context(plan: ImagePlan, out: Path, area: Path, o: RenderOptions) -> Context:
    wheel_dir = area / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for w in o.wheels:
        target = wheel_dir / w.name
        if not target.exists() or target.stat().st_size != w.stat().st_size:
            shutil.copy2(w, target)
        copied.append(target)
    own = None
    install = None
    if o.bundle_self and not any(selfwheel.is_own_wheel(w) for w in o.wheels):
        own = selfwheel.build(wheel_dir, templates_dir())
        install = f"/tmp/mlrig/wheels/{own.name}"
    elif o.bundle_self:
        given = next(w for w in o.wheels if selfwheel.is_own_wheel(w))
        install = f"/tmp/mlrig/wheels/{given.name}"
    # pip wants a file in every find-links dir; a README keeps the (possibly empty) dir in COPY
    (wheel_dir / "README").write_text("Local wheels pip may install from (--find-links), copied by mlrig.\n")
    ca = area / "ca.pem"
    if o.ca_bundle is not None:
        shutil.copyfile(o.ca_bundle, ca)
    elif ca.exists():
        ca.unlink()
    (out / o.source_dir).mkdir(parents=True, exist_ok=True)
    requirements = (out / "requirements.txt").is_file()
    final = RenderOptions(**{**o.__dict__, "requirements": requirements, "envcheck_install": install})
    texts = {"Dockerfile": render_dockerfile(plan, final), ".dockerignore": render_dockerignore()}
    for name, text in texts.items():
        _write(out / name, text)
    _write(area / RECORD, json.dumps({k: _sha256(v) for k, v in texts.items()}, indent=2) + "\n")
    _write(area / "plan.json", plan.model_dump_json(indent=2) + "\n")
    return Context(out, out / "Dockerfile", tuple(copied), requirements, own)
