"""~/.ssh/config entries for launched machines, kept in their own file behind one ``Include``.

The ``Include`` line goes at the very top of the user's config: ssh uses the first value it finds
for each option, so an entry included first wins over a later ``Host *`` block (SkyPilot #1022), and
an ``Include`` placed after a ``Host`` line would only apply inside that block. Files are written
atomically with mode 0600, through symlinks (dotfiles setups keep their link). Host keys go to a
known_hosts file of our own, because cloud IPs are reused and a stale key in the user's known_hosts
would block the next machine.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from provision.errors import ProvisionError

_BEGIN = "# >>> mlrig {name}"
_END = "# <<< mlrig {name}"


def render_entry(name: str, host: str, user: str, key_path: str | None, known_hosts: Path) -> str:
    """One Host block (pure)."""
    lines = [
        _BEGIN.format(name=name),
        f"Host {name}",
        f"    HostName {host}",
        f"    User {user}",
    ]
    if key_path:
        lines += [f'    IdentityFile "{key_path}"', "    IdentitiesOnly yes"]
    lines += [
        "    StrictHostKeyChecking accept-new",
        f'    UserKnownHostsFile "{known_hosts}"',
        "    ServerAliveInterval 30",
        _END.format(name=name),
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a shell redirect would, but atomically where that is safe.

    A symlink (a dotfiles setup) is written through: its target is replaced, the link stays. A
    target that is not a regular file (a FIFO, a device) is written in place, never replaced.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if target.exists() and not target.is_file():
        with open(target, "w") as fh:
            fh.write(text)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _strip_block(text: str, name: str) -> str:
    pattern = re.compile(
        rf"^{re.escape(_BEGIN.format(name=name))}\n.*?^{re.escape(_END.format(name=name))}\n?",
        re.DOTALL | re.MULTILINE,
    )
    return pattern.sub("", text)


def include_line(include: Path) -> str:
    return f'Include "{include}"'


def ensure_include(config: Path, include: Path) -> None:
    """Put our ``Include`` line at the top of ``config`` (moving it there if it is elsewhere)."""
    text = config.read_text() if config.exists() else ""
    line = include_line(include)
    marker = "# added by mlrig: machines from `provision up`"
    kept = [ln for ln in text.splitlines() if ln.strip() not in (line, marker)]
    if text.splitlines()[:2] == [marker, line]:
        return
    _write(config, "\n".join([marker, line, *kept]) + "\n")


def add(config: Path, include: Path, name: str, entry: str) -> None:
    """Add or replace ``name``'s entry (from render_entry) and make sure ``config`` includes it."""
    try:
        text = include.read_text() if include.exists() else ""
        text = _strip_block(text, name)
        if text and not text.endswith("\n"):
            text += "\n"
        _write(include, text + entry)
        ensure_include(config, include)
    except OSError as exc:
        raise ProvisionError(f"could not write the ssh config {exc.filename}: {exc.strerror}") from None


def remove(include: Path, name: str) -> bool:
    """Remove ``name``'s entry; True when there was one."""
    if not include.exists():
        return False
    text = include.read_text()
    new = _strip_block(text, name)
    if new == text:
        return False
    _write(include, new)
    return True


def node_alias(name: str, index: int) -> str:
    """The Host alias of node ``index`` of launch ``name``: the name for the head, ``NAME.K`` for the
    others (machine names have no dots, so no alias can be another machine's)."""
    return name if index == 0 else f"{name}.{index}"


def remove_all(include: Path, name: str) -> bool:
    """Remove ``name``'s entry and those of its nodes (``NAME.K``); True when there was one."""
    if not include.exists():
        return False
    text = include.read_text()
    nodes = set(re.findall(rf"^# >>> mlrig ({re.escape(name)}\.\d+)$", text, re.MULTILINE))
    new = text
    for alias in [name, *sorted(nodes)]:
        new = _strip_block(new, alias)
    if new == text:
        return False
    _write(include, new)
    return True


def has_entry(include: Path, name: str) -> bool:
    return include.exists() and _BEGIN.format(name=name) in include.read_text()
