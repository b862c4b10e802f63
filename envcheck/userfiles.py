"""Files the user names on the command line: read within a bound, write as a shell would.

Shared by ``envcheck`` (``-o``, ``--plot``) and ``provision`` (rendered contexts, plots,
``--from-envcheck``); ``provision`` may import envcheck, never the other way round.

Reading (:func:`read_bytes`) stops at a size limit, so ``/dev/zero``, ``/dev/full`` or a
multi-gigabyte file named by mistake is one error line, not an out-of-memory kill; pipes and
``/dev/stdin`` still work.

Writing:

- A symlink is written *through*: its target changes, the link stays (dotfiles setups).
- A device, FIFO or socket (``/dev/stdout``, ``/dev/null``, a named pipe) is opened and written
  like ``> PATH`` would; it is never replaced by a regular file, and a write error
  (``/dev/full``: no space left) is reported.
- A regular file, or a path that does not exist yet, is replaced atomically: a temporary file
  beside the target, fsync, rename. Readers never see half a report; the old file's permission
  bits are kept.
- A directory, an unwritable place or a missing parent is one :class:`WriteFailed` whose message
  names the path and the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["ReadFailed", "WriteFailed", "check_writable", "read_bytes", "write_bytes", "write_text"]

#: the most a report, a paste or a setup script may be: far above any real one
READ_LIMIT = 64 * 1024 * 1024


class ReadFailed(Exception):
    """The file could not be read; ``str(exc)`` is one line naming the path and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot read {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def read_bytes(path: str | os.PathLike[str], limit: int = READ_LIMIT) -> bytes:
    """The file's bytes, at most ``limit`` of them (more is an error, not a silent cut)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except IsADirectoryError:
        raise ReadFailed(p, "is a directory") from None
    except OSError as exc:
        raise ReadFailed(p, _reason(exc)) from None
    if len(data) > limit:
        raise ReadFailed(p, f"larger than {limit >> 20} MiB (a device or the wrong file?)")
    return data


class WriteFailed(Exception):
    """The file could not be written; ``str(exc)`` is one line naming the path and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot write {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _stat(path: Path) -> os.stat_result | None:
    """``stat`` through symlinks; None when nothing is there (a dangling symlink counts as nothing)."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP, EACCES on a parent, ENOTDIR in the middle of the path
        raise WriteFailed(path, _reason(exc)) from exc


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`WriteFailed` now if :func:`write_bytes` would surely fail later.

    For outputs produced after long work (a plot after a benchmark): checks that the path is not
    a directory, that its directory exists, and that we may write there. Creates nothing.
    """
    p = Path(path)
    st = _stat(p)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise WriteFailed(p, "is a directory")
        if not os.access(p, os.W_OK):
            raise WriteFailed(p, "permission denied")
        return
    parent = Path(os.path.realpath(p)).parent
    if not parent.is_dir():
        raise WriteFailed(p, f"no such directory: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteFailed(p, f"permission denied in {parent}")


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` (see the module docstring); returns the file really written."""
    return write_bytes(path, text.encode(encoding))


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` (see the module docstring); returns the file really written."""
    p = Path(path)
    st = _stat(p)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise WriteFailed(p, "is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_in_place(p, data)
        return p
    real = Path(os.path.realpath(p))  # through symlinks, dangling ones included (as `>` creates it)
    _replace_atomically(real, data, st, shown=p)
    return real


def _write_in_place(path: Path, data: bytes) -> None:
    """A device, FIFO or socket: open for writing and write, as ``> path`` would."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise WriteFailed(path, _reason(exc)) from exc
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise WriteFailed(path, _reason(exc)) from exc
    finally:
        os.close(fd)


def _replace_atomically(real: Path, data: bytes, old: os.stat_result | None, *, shown: Path) -> None:
    tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never follow or reuse something planted at the temporary name; 0o666 & ~umask
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileNotFoundError as exc:
        raise WriteFailed(shown, f"no such directory: {real.parent}") from exc
    except OSError as exc:
        raise WriteFailed(shown, _reason(exc)) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if old is not None:
                os.fchmod(fd, stat.S_IMODE(old.st_mode))
                if os.geteuid() == 0:  # root rewriting a user's file keeps it the user's
                    with contextlib.suppress(OSError):
                        os.fchown(fd, old.st_uid, old.st_gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteFailed(shown, _reason(exc)) from exc
