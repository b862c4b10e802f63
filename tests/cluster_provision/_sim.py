"""Simulated machines on this one host, for the cluster bring-up tests.

* :class:`Netns` is one network namespace with only a loopback interface, held open by a sleeping
  process we start. Simulated nodes share it, so they reach each other on 127.0.0.K while nothing
  they listen on (torchrun's store, Ray's many ports) is visible outside it, and two test runs on
  the same machine never collide on a port.
* :class:`SimNode` is one machine: its own hostname (UTS namespace) and process tree (PID
  namespace with its own /proc) inside that network, and a directory standing for its disk. Its
  first-boot script runs as the namespace's first process; killing our ``unshare`` child kills
  the namespace's init and, with it, every process the node started (Ray daemonises its own).
* :class:`SshNodes` runs Debian's sshd on 127.0.0.K addresses (one per node, each with its own
  host key and ``SetEnv MLRIG_NODE=nodeK``), for the asyncssh runner.
* :class:`MetadataServer` answers as the GCE and EC2 (IMDSv2) metadata servers of one machine.

Every process is stopped by its PID; nothing binds anything but loopback addresses.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

#: a safety net: a namespace holder or a node left behind by a crashed test run ends by itself
LIFETIME = 600


def namespaces_work() -> str | None:
    """None when unshare/nsenter can make the namespaces here, else why not (the tests then skip)."""
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        proc = subprocess.run(
            ["unshare", "--net", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child", "--", "true"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if proc.returncode != 0:
        return f"cannot create namespaces here (needs root): {proc.stderr.strip()[:200]}"
    return None


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _kill(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


class Netns:
    """A network namespace with loopback up, alive while our holder process sleeps in it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--",
                "sh",
                "-c",
                f"ip link set lo up && echo ready && exec sleep {LIFETIME}",
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError("could not bring up loopback in a new network namespace")

    @property
    def path(self) -> str:
        assert self.proc is not None
        return f"/proc/{self.proc.pid}/ns/net"

    def stop(self) -> None:
        _kill(self.proc)


@dataclass
class SimNode:
    """One simulated machine: hostname, own process tree, shared loopback network, a disk directory."""

    hostname: str
    disk: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def boot(self, netns: Netns, script: Path) -> None:
        """Run ``script`` as first boot (log in ``disk/boot.log``, status in ``disk/boot.rc``); stay up."""
        self.disk.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLRIG_CLUSTER_DIR": str(self.disk / "etc"), **self.env}
        inner = (
            'hostname "$1" || exit 97; bash "$2" >"$3/boot.log" 2>&1; echo $? >"$3/boot.rc"; '
            f"exec sleep {LIFETIME}"
        )
        self.proc = subprocess.Popen(
            [
                "nsenter",
                f"--net={netns.path}",
                "--",
                "unshare",
                "--uts",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child",
                "--",
                "bash",
                "-c",
                inner,
                "node",
                self.hostname,
                str(script),
                str(self.disk),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def init_pid(self) -> int:
        """The PID (seen from here) of the node's first process: the namespaces to enter."""
        assert self.proc is not None
        proc = psutil.Process(self.proc.pid)
        children = wait_for(proc.children, 10, f"{self.hostname}'s init")
        return int(children[0].pid)

    def booted(self) -> int | None:
        """The first boot's exit status once it finished, else None."""
        rc = self.disk / "boot.rc"
        try:
            return int(rc.read_text().strip())
        except (OSError, ValueError):
            return None

    def file(self, name: str) -> str:
        return (self.disk / "etc" / name).read_text()

    def _enter(self, argv: Sequence[str], env: dict[str, str] | None) -> tuple[list[str], dict[str, str]]:
        """The command line that runs ``argv`` inside this node, and its environment."""
        full = {**os.environ, "MLRIG_CLUSTER_DIR": str(self.disk / "etc"), **self.env, **(env or {})}
        cmd = ["nsenter", f"--target={self.init_pid}", "--net", "--uts", "--pid", "--mount", "--", *argv]
        return cmd, full

    def run(
        self, argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` inside this node (its hostname, processes, network), like a command over SSH."""
        cmd, full = self._enter(argv, env)
        return subprocess.run(
            cmd,
            env=full,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            stdin=subprocess.DEVNULL,
        )

    def popen(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        cmd, full = self._enter(argv, env)
        return subprocess.Popen(
            cmd,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def processes(self) -> list[psutil.Process]:
        """Every process of this node still alive (as seen from here)."""
        if self.proc is None:
            return []
        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Kill the node: its init dies with our unshare child, and the kernel kills the rest of it."""
        _kill(self.proc)


def stop_all(nodes: Sequence[SimNode], netns: Netns | None) -> list[int]:
    """Stop every node and the network; returns the PIDs still alive afterwards (should be none)."""
    pids = {p.pid for n in nodes for p in n.processes()}
    for node in nodes:
        node.stop()
    if netns is not None:
        netns.stop()
    time.sleep(0.3)
    return sorted(pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie")


# --------------------------------------------------------------------------- sshd nodes
def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _ssh_answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class SshNode:
    name: str
    address: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None


class SshNodes:
    """Debian's sshd on 127.0.0.K, one daemon per simulated node, a fresh client key for the tests."""

    def __init__(self, addresses: Sequence[str], root: Path) -> None:
        self.root = root
        self.key = root / "client_key"
        self.nodes = [SshNode(f"node{k}", a, 0, root / f"node{k}") for k, a in enumerate(addresses)]
        self.user = psutil.Process().username()

    def _keygen(self, path: Path) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def start(self) -> None:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._keygen(self.key)
        for node in self.nodes:
            node.dir.mkdir(parents=True)
            self._keygen(node.dir / "host_key")
            shutil.copy(f"{self.key}.pub", node.dir / "authorized_keys")
            self.start_node(node, sshd)

    def start_node(self, node: SshNode, sshd: str | None = None) -> None:
        sshd = sshd or shutil.which("sshd") or "/usr/sbin/sshd"
        for _attempt in range(5):  # another process may take the free port between our probe and sshd
            node.port = free_port(node.address)
            config = node.dir / "sshd_config"
            config.write_text(
                "\n".join(
                    [
                        f"ListenAddress {node.address}:{node.port}",
                        f"HostKey {node.dir / 'host_key'}",
                        f"PidFile {node.dir / 'sshd.pid'}",
                        f"AuthorizedKeysFile {node.dir / 'authorized_keys'}",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "PubkeyAuthentication yes",
                        "PermitRootLogin prohibit-password",
                        "StrictModes no",
                        "UsePAM no",
                        "LogLevel ERROR",
                        f"SetEnv MLRIG_NODE={node.name}",
                        "",
                    ]
                )
            )
            node.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(node.dir / "sshd.log", "ab"),  # noqa: SIM115 - the daemon owns it
                start_new_session=True,
            )
            with contextlib.suppress(TimeoutError):
                wait_for(
                    lambda n=node: _ssh_answers(n.address, n.port) or n.proc.poll() is not None, 10, "sshd"
                )
            if node.proc.poll() is None and _ssh_answers(node.address, node.port):
                return
            _kill(node.proc)
        raise RuntimeError(
            f"sshd on {node.address} did not start: {(node.dir / 'sshd.log').read_text()[-500:]}"
        )

    def stop_node(self, node: SshNode) -> None:
        """Stop one daemon and the sessions it started (they live in its process group)."""
        if node.proc is not None and node.proc.poll() is None:
            for child in psutil.Process(node.proc.pid).children(recursive=True):
                child.kill()
            _kill(node.proc)

    def stop(self) -> None:
        for node in self.nodes:
            self.stop_node(node)


# --------------------------------------------------------------------------- cloud metadata
@dataclass
class MetadataServer:
    """One machine's metadata server: GCE (``Metadata-Flavor: Google``) and EC2 IMDSv2 (token) paths.

    ``gce`` maps paths under /computeMetadata/v1/ to answers, ``aws`` paths under /latest/meta-data/.
    ``hang`` makes every answer wait that long (a metadata server that does not answer).
    """

    gce: dict[str, str] = field(default_factory=dict)
    aws: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    log: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        meta = self
        token = os.urandom(8).hex()

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                meta.log.append(f"PUT {self.path}")
                if self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self._send(200, token)
                else:
                    self._send(400, "bad token request")

            def do_GET(self) -> None:
                meta.log.append(f"GET {self.path}")
                if meta.hang:
                    time.sleep(meta.hang)
                if self.path.startswith("/computeMetadata/v1/"):
                    if self.headers.get("Metadata-Flavor") != "Google":
                        return self._send(403, "Missing Metadata-Flavor:Google header")
                    key = self.path.removeprefix("/computeMetadata/v1/")
                    return self._send(200, meta.gce[key]) if key in meta.gce else self._send(404, "not found")
                if self.path.startswith("/latest/meta-data/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != token:
                        return self._send(401, "")
                    key = self.path.removeprefix("/latest/meta-data/")
                    return self._send(200, meta.aws[key]) if key in meta.aws else self._send(404, "")
                return self._send(404, "")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def hostport(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def tempdir(prefix: str) -> Path:
    """A short, unique directory under /tmp (Ray's socket paths must fit in 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
