"""Fixtures for the refresh tests: the loopback index (``_index.py``) started per test and stopped
after it, and a loopback URL nothing listens on."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"knowledge_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


kit_module = _load("_index")


@pytest.fixture
def kit() -> ModuleType:
    """The index and wheel builders (tests/knowledge/_index.py)."""
    return kit_module


@pytest.fixture
def serve() -> Iterator[Callable[[object], object]]:
    """Start ``index`` on 127.0.0.1 (an ephemeral port); every server is stopped after the test."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(index):  # type: ignore[no-untyped-def]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), kit_module.handler(index))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        index.base = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        return index

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> str:
    """A loopback URL nothing listens on (connection refused, like an unreachable index)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/whl/"
