"""Which hosts ``--ssh`` means: a list, a hostfile, or a glob over the aliases of an ssh config.

``--ssh 'train-*'`` reaches the nodes of a ``provision`` cluster through the ``Host`` entries
``provision up`` writes (in a file the user's config ``Include``s); envcheck reads the config
files, never provision. Only the names are read here: connecting (HostName, User, Port,
IdentityFile, ProxyJump, known hosts) is the SSH library's job with the same config.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shlex
from pathlib import Path

from envcheck.errors import UsageError

_GLOB_CHARS = set("*?[")
_LINE = re.compile(r"^\s*([A-Za-z]\w*)\s*(?:=\s*|\s+)(.*)$")


def _words(line: str) -> tuple[str, list[str]]:
    """``Key value...`` or ``Key=value`` -> ("key", [values]); comments and blanks -> ("", [])."""
    m = _LINE.match(line)
    if not m:
        return "", []
    try:
        return m.group(1).lower(), shlex.split(m.group(2), comments=True)
    except ValueError:  # an unbalanced quote: take the words as they are
        return m.group(1).lower(), m.group(2).split()


def config_aliases(path: Path, _seen: set[Path] | None = None) -> list[str]:
    """Concrete ``Host`` names (no wildcards, no negations) of ``path`` and the files it Includes."""
    seen = _seen if _seen is not None else set()
    try:
        real = path.resolve()
        if real in seen:
            return []
        seen.add(real)
        text = path.read_text(errors="replace")
    except OSError:
        return []
    found: list[str] = []
    for raw in text.splitlines():
        key, args = _words(raw)
        if key == "host":
            found += [a for a in args if not (_GLOB_CHARS & set(a)) and not a.startswith("!")]
        elif key == "include":
            for pattern in args:
                expanded = os.path.expanduser(pattern)
                if not os.path.isabs(expanded):
                    expanded = str(Path.home() / ".ssh" / expanded)
                for inc in sorted(glob.glob(expanded)):
                    found += config_aliases(Path(inc), seen)
    return list(dict.fromkeys(found))


def _hostfile(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        raise UsageError(f"--ssh @{path}: cannot read: {exc.strerror or exc}") from exc
    # MPI-style hostfiles: "node1 slots=8" -> node1
    return [ln.split("#", 1)[0].split()[0] for ln in lines if ln.split("#", 1)[0].strip()]


def expand_hosts(specs: list[str], config: Path | None) -> list[str]:
    """``a,b c`` / ``@hostfile`` / ``'train-*'`` (matched against the config's aliases) -> host list."""
    hosts: list[str] = []
    aliases: list[str] | None = None
    for spec in specs:
        for token in spec.replace(",", " ").split():
            if token.startswith("@"):
                hosts += _hostfile(token[1:])
            elif _GLOB_CHARS & set(token):
                if aliases is None:
                    aliases = config_aliases(config or Path.home() / ".ssh" / "config")
                matched = [a for a in aliases if fnmatch.fnmatchcase(a, token)]
                if not matched:
                    where = config or "~/.ssh/config"
                    raise UsageError(
                        f"--ssh {token!r} matches no Host alias in {where}",
                        hint="list the hosts (--ssh a,b,c) or point --ssh-config at the file with them",
                    )
                hosts += matched
            else:
                hosts.append(token)
    if not hosts:
        raise UsageError("--ssh names no host", hint="e.g. --ssh node1,node2 or --ssh 'train-*'")
    return list(dict.fromkeys(hosts))


def split_target(target: str) -> tuple[str | None, str, int | None]:
    """``user@host:port`` -> (user, host, port); ``[v6]:port`` and bare hosts too."""
    user, _, hostport = target.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):
        inside, _, tail = hostport[1:].partition("]")
        host = inside
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif hostport.count(":") == 1:
        name, _, p = hostport.partition(":")
        if p.isdigit():
            host, port = name, int(p)
    return user or None, host, port
