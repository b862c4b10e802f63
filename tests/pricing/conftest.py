"""Fixtures for the pricing tests: an isolated user catalog dir and a loopback price-API server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pricing"


@pytest.fixture(autouse=True)
def user_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets an empty user catalog dir, and the catalog caches are cleared around it."""
    from provision.catalog import reset_cache

    path = tmp_path / "catalog"
    path.mkdir()
    monkeypatch.setenv("PROVISION_CATALOG_DIR", str(path))
    reset_cache()
    yield path
    reset_cache()


def _load_fixture(name: str) -> dict[str, Any]:
    doc = json.loads((FIXTURES / name).read_text())
    doc.pop("_comment", None)
    return doc


@pytest.fixture
def load_fixture() -> Callable[[str], dict[str, Any]]:
    """Read a recorded-shape API response from tests/fixtures/pricing, without its ``_comment``."""
    return _load_fixture


class Recorder:
    """What the loopback server saw."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []


@pytest.fixture
def loopback() -> Iterator[
    Callable[[Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]], tuple[str, Recorder]]
]:
    """A 127.0.0.1 HTTP server answering ``handler(method, path, headers, body)`` with (status, JSON
    document or raw bytes); stopped at teardown."""
    servers: list[ThreadingHTTPServer] = []

    def start(
        handler: Callable[[str, str, dict[str, str], bytes], tuple[int, Any]],
    ) -> tuple[str, Recorder]:
        rec = Recorder()

        class H(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                rec.requests.append(
                    {"method": self.command, "path": self.path, "headers": headers, "body": body}
                )
                status, doc = handler(self.command, self.path, headers, body)
                raw = isinstance(doc, bytes)
                data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}", rec

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
