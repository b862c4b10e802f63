"""accept-new's known_hosts writes, on the files users really have: a dotfiles symlink, a
directory where the file should be, a device, a file another tool holds read-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncssh
import pytest

from envcheck.cluster.hostkeys import AcceptNew, is_known, record


@pytest.fixture(scope="module")
def host_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _policy(path: Path, port: int = 2222) -> AcceptNew:
    return AcceptNew(host="127.0.0.2", port=port, known_hosts=(path,))


def test_a_symlinked_known_hosts_is_written_through_not_replaced(
    tmp_path: Path, host_key: asyncssh.SSHKey
) -> None:
    real = tmp_path / "dotfiles" / "known_hosts"
    real.parent.mkdir()
    real.write_text("# kept\n")
    link = tmp_path / "ssh" / "known_hosts"
    link.parent.mkdir()
    link.symlink_to(real)
    policy = _policy(link)
    assert not is_known(asyncssh, policy)
    assert record(policy, host_key) is None
    assert link.is_symlink() and os.readlink(link) == str(real)
    lines = real.read_text().splitlines()
    assert lines[0] == "# kept" and lines[1].startswith("[127.0.0.2]:2222 ssh-ed25519 ")
    assert is_known(asyncssh, policy)  # read back through the link: the next run checks the key


def test_port_22_is_recorded_under_the_bare_host(tmp_path: Path, host_key: asyncssh.SSHKey) -> None:
    path = tmp_path / "new" / "known_hosts"
    assert record(_policy(path, 22), host_key) is None
    assert path.read_text().startswith("127.0.0.2 ssh-ed25519 ")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_directory_in_place_of_the_file_is_a_reason_not_a_crash(
    tmp_path: Path, host_key: asyncssh.SSHKey
) -> None:
    where = tmp_path / "known_hosts"
    where.mkdir()
    reason = record(_policy(where), host_key)
    assert reason is not None and str(where) in reason and where.is_dir()


def test_a_device_is_appended_to_and_left_a_device(host_key: asyncssh.SSHKey) -> None:
    devnull = Path(os.devnull)
    assert record(_policy(devnull), host_key) is None
    assert stat.S_ISCHR(devnull.stat().st_mode)
    assert not is_known(asyncssh, _policy(devnull))  # not a file: nothing recorded there to match


def test_a_malformed_known_hosts_never_makes_a_host_new(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_bytes(b"\xff\xfe" + "[127.0.0.2]:2222 ssh-ed25519 AAAA\n".encode("utf-16-le"))
    assert is_known(asyncssh, _policy(path))  # unreadable: treated as known, so the key is checked strictly
