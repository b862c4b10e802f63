"""OpenSSH's ``StrictHostKeyChecking accept-new`` for the asyncssh engine.

asyncssh reads ``UserKnownHostsFile`` from the ssh config but not ``StrictHostKeyChecking``: a host
the user's config trusts on first use (``provision up`` writes such entries, with a known_hosts
file of its own) would be unreachable until the user had logged in once with ``ssh``. The
effective settings of a host come from ``ssh -G`` (OpenSSH's own resolution of Host/Match blocks
and Includes); without an ``ssh`` client, or for any other policy, host keys stay strictly checked.
A key that differs from a recorded one is always refused: accept-new only adds unknown hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``ssh -G`` resolves names only (no DNS, no network): a second is plenty
SSH_G_TIMEOUT = 5.0


@dataclass(frozen=True)
class AcceptNew:
    """Where an unknown host's key is recorded, and under which name ([host]:port off port 22)."""

    host: str
    port: int
    known_hosts: tuple[Path, ...]

    @property
    def pattern(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def effective_options(
    host: str, *, user: str | None, port: int | None, config: Path | None
) -> dict[str, str] | None:
    """``ssh -G`` for ``host`` as ``key -> value`` (keys lower case); None without an ssh client."""
    ssh = shutil.which("ssh")
    if ssh is None:
        return None
    argv = [ssh, "-G"]
    if config is not None:
        argv += ["-F", str(config)]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", str(port)]
    argv += ["--", host]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=SSH_G_TIMEOUT, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    options: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key.lower(), value.strip())
    return options


def accept_new_for(host: str, *, user: str | None, port: int | None, config: Path | None) -> AcceptNew | None:
    """The accept-new policy of ``host`` if its effective config asks for it, else None."""
    options = effective_options(host, user=user, port=port, config=config)
    if not options or options.get("stricthostkeychecking") != "accept-new":
        return None
    files = tuple(
        Path(os.path.expanduser(f)) for f in options.get("userknownhostsfile", "").split() if f != "none"
    )
    if not files:
        return None
    try:
        real_port = int(options.get("port", "22"))
    except ValueError:
        return None
    return AcceptNew(host=options.get("hostname") or host, port=real_port, known_hosts=files)


def is_known(asyncssh: Any, policy: AcceptNew) -> bool:
    """Whether any of the policy's known_hosts files has an entry (any key) for the host."""
    for path in policy.known_hosts:
        if not path.is_file():
            continue
        try:
            known = asyncssh.read_known_hosts(str(path))
            keys, cas, _revoked, certs, _rc, subjects, _rs = known.match(
                policy.host, policy.host, policy.port
            )
        except (OSError, ValueError, asyncssh.Error):
            return True  # unreadable or malformed: never treat the host as new
        if keys or cas or certs or subjects:
            return True
    return False


def record(policy: AcceptNew, key: Any) -> str | None:
    """Append the server's key to the first known_hosts file (0600), as ssh's accept-new does.

    Returns why it could not be recorded (the run still goes on, as ssh's would), else None."""
    path = policy.known_hosts[0]
    try:
        kind, blob = key.export_public_key("openssh").decode().split()[:2]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(f"{policy.pattern} {kind} {blob}\n")
    except (OSError, ValueError) as exc:
        return f"could not record the host key in {path}: {exc}"
    return None
