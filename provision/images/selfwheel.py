"""A wheel of the mlrig that is running, for the image it renders.

A rendered image runs ``envcheck`` inside (``provision image test``), and it must be the same
envcheck that planned it: a release may not be on PyPI at all (``pip install "mlrig==0.1.0"``
failed for every user of a checkout), or PyPI's may differ from a patched checkout. So
``render`` packs the code this process runs (the ``envcheck`` and ``provision`` packages and
the Dockerfile templates, as ``pyproject.toml`` lays them out) with the installed metadata
(name, version, dependencies, console scripts) into a wheel in the build context. pip and
hatch cannot do this: they build wheels from sources with a build backend, which an installed
copy or an offline machine may not have. The wheel is reproducible (sorted entries, fixed
timestamps), so an unchanged mlrig does not invalidate Docker's layer cache.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from provision.errors import ProvisionError

DIST = "mlrig"
PACKAGES = ("envcheck", "provision")
#: where the templates live inside the wheel (pyproject.toml's force-include)
TEMPLATES_IN_WHEEL = "provision/images/dockerfiles"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_DEFAULT_SCRIPTS = "[console_scripts]\nenvcheck = envcheck._entry:main\nprovision = provision.cli:main\n"


def wheel_name(version: str) -> str:
    return f"{DIST}-{version}-py3-none-any.whl"


def is_own_wheel(path: Path) -> bool:
    """Whether ``path`` is a wheel of mlrig itself (then it is installed instead of a fresh one)."""
    return path.name.lower().startswith(f"{DIST}-") and path.suffix == ".whl"


def _metadata(version: str) -> tuple[str, str]:
    """(METADATA, entry_points.txt) of the installed distribution, checked against ``version``."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise ProvisionError(
            "cannot pack mlrig for the image: it is not installed (no package metadata)",
            hint="pip install mlrig (or -e . in a checkout), or pass --envcheck-requirement / --wheel",
        ) from None
    text = dist.read_text("METADATA") or ""
    if dist.version != version:
        raise ProvisionError(
            f"cannot pack mlrig for the image: the code is {version} but the installed metadata says "
            f"{dist.version}",
            hint="reinstall mlrig (pip install -e . in a checkout), or pass --envcheck-requirement",
        )
    return text, dist.read_text("entry_points.txt") or _DEFAULT_SCRIPTS


def _files(templates: Path) -> Iterator[tuple[str, Path]]:
    """(path in the wheel, file on disk) of every file the running packages are made of."""
    import envcheck
    import provision

    for module in (envcheck, provision):
        root = Path(module.__file__ or "").resolve().parent
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root.parent).as_posix()
            compiled = "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo")
            if path.is_file() and not compiled and not rel.startswith(TEMPLATES_IN_WHEEL + "/"):
                yield rel, path
    for path in sorted(templates.iterdir()):
        if path.is_file():
            yield f"{TEMPLATES_IN_WHEEL}/{path.name}", path


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(dest: Path, templates: Path) -> Path:
    """Write ``mlrig-<version>-py3-none-any.whl`` of the running code into ``dest``; returns its path."""
    from envcheck import __version__

    meta, scripts = _metadata(__version__)
    info = f"{DIST}-{__version__}.dist-info"
    entries: list[tuple[str, bytes]] = [(name, path.read_bytes()) for name, path in _files(templates)]
    entries += [
        (f"{info}/METADATA", meta.encode()),
        (f"{info}/entry_points.txt", scripts.encode()),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: mlrig selfwheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    record = "".join(f"{name},{_digest(data)},{len(data)}\n" for name, data in entries)
    record += f"{info}/RECORD,,\n"
    target = dest / wheel_name(__version__)
    tmp = target.with_name(target.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [*entries, (f"{info}/RECORD", record.encode())]:
            item = zipfile.ZipInfo(name, date_time=_EPOCH)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(item, data)
    tmp.replace(target)
    return target
