"""A package index on loopback for the refresh tests: PyPI's simple JSON API (PEP 691, with
``core-metadata`` where a test wants PEP 658), PyTorch-style HTML pages, wheels served with HTTP
byte ranges, every request logged. Wheels are built here around METADATA and source files recorded
from the real releases (tests/fixtures/knowledge)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge"
FLAGS_2_14 = b"sm_75 sm_80 sm_86 sm_90 sm_100 sm_120"


def recorded(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def noise(n: int, seed: int = 0) -> bytes:
    """Incompressible bytes (a deflated member stays as big as it is)."""
    return random.Random(seed).randbytes(n)


def fake_library(flags: bytes | None, *, before: int = 200_000, after: int = 2_000_000) -> bytes:
    """A stand-in libtorch_python.so: noise, a few decoys, the arch-flags string, more noise.

    The decoys are strings a real library holds that are not the list ("sm_90" alone, a list not
    NUL-terminated); the string itself follows text without a NUL, as in torch 2.8.0's library."""
    decoys = b"\x00sm_90\x00kernel_sm_80_tiled\x00compute_90 and more\x00"
    middle = b"std::string ipc_h" + flags + b"\x00" if flags else b""
    return noise(before, 1) + decoys + middle + noise(after, 2)


def make_wheel(members: dict[str, bytes], *, stored: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


@dataclass
class Served:
    filename: str
    data: bytes
    requires_python: str | None = None
    #: serve ``<file>.metadata`` and advertise it (PEP 658)
    metadata: bytes | None = None
    yanked: bool = False
    #: answer ranged GETs with the whole file (a broken server)
    ignore_range: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Index:
    """The loopback index: ``projects`` maps a project to its files; ``log`` records requests."""

    projects: dict[str, list[Served]] = field(default_factory=dict)
    #: projects served as PEP 503 HTML only (like download.pytorch.org)
    html: bool = False
    log: list[tuple[str, str]] = field(default_factory=list)
    base: str = ""

    def add(self, project: str, *files: Served) -> None:
        self.projects.setdefault(project, []).extend(files)

    def file(self, name: str) -> Served | None:
        return next((f for fs in self.projects.values() for f in fs if f.filename == name), None)

    def wheel_requests(self, name: str) -> list[str]:
        """The Range header of every request for the wheel ``name`` ("" for an unranged GET)."""
        return [rng for path, rng in self.log if path == f"/files/{name}"]

    def page(self, project: str, accept: str) -> tuple[bytes, str] | None:
        files = self.projects.get(project)
        if files is None:
            return None
        if self.html or "json" not in accept:
            links = "".join(
                f'<a href="/files/{f.filename}#sha256={f.sha256}"'
                + (
                    f' data-requires-python="{f.requires_python.replace(">", "&gt;")}"'
                    if f.requires_python
                    else ""
                )
                + (' data-core-metadata="true"' if f.metadata else "")
                + f">{f.filename}</a><br/>\n"
                for f in files
            )
            return f"<html><body>{links}</body></html>".encode(), "text/html"
        doc = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "files": [
                {
                    "filename": f.filename,
                    "url": f"/files/{f.filename}",
                    "hashes": {"sha256": f.sha256},
                    "requires-python": f.requires_python,
                    "size": len(f.data),
                    "upload-time": "2026-10-28T15:16:30Z",
                    "yanked": f.yanked,
                    **(
                        {"core-metadata": {"sha256": hashlib.sha256(f.metadata).hexdigest()}}
                        if f.metadata
                        else {}
                    ),
                }
                for f in files
            ],
        }
        return json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json"


def handler(index: Index) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index.log.append((self.path, self.headers.get("Range", "")))
            m = re.fullmatch(r"/simple/([^/]+)/", self.path)
            if m:
                page = index.page(m.group(1), self.headers.get("Accept", ""))
                return self._send(page[0], page[1]) if page else self._status(404)
            m = re.fullmatch(r"/files/(.+?)(\.metadata)?", self.path)
            f = index.file(m.group(1)) if m else None
            if f is None or (m and m.group(2) and f.metadata is None):
                return self._status(404)
            if m and m.group(2):
                return self._send(f.metadata or b"", "text/plain")
            rng = self.headers.get("Range")
            if not rng or f.ignore_range:
                return self._send(f.data, "application/zip")
            return self._range(f.data, rng)

        def _range(self, data: bytes, rng: str) -> None:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m:
                return self._status(416)
            if m.group(1) == "":
                start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if start > end:
                return self._status(416)
            body = data[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)  # a client that stops reading: what an early-stopping scan does

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


# --------------------------------------------------------------------------- the released world


def torch_wheel(version: str, flags: bytes | None = FLAGS_2_14, *, pad: int = 3_000_000) -> bytes:
    return make_wheel(
        {
            f"torch-{version}.dist-info/METADATA": recorded(f"torch-{version}.METADATA"),
            "torch/version.py": recorded(f"torch-{version}.version_py"),
            "torch/lib/libtorch_python.so": fake_library(flags),
            "torch/lib/libtorch_cuda.so": noise(pad, 3),
        },
        stored=("torch/lib/libtorch_cuda.so",),
    )


def pypi_world() -> Index:
    """torch 2.14.1 and 2.15.0 (+ a release candidate, a yanked file, a macOS wheel), the
    cuda-toolkit metapackages they pin, TensorFlow 2.21.0, JAX 0.11.2-0.12.1 with its plugins,
    torchvision 0.29.0 and torchaudio 2.10.0."""
    idx = Index()
    t214, t215 = torch_wheel("2.14.1"), torch_wheel("2.15.0")
    for py in ("310", "311", "312", "313", "314", "314t"):
        abi = f"cp{py}"
        idx.add(
            "torch",
            Served(f"torch-2.14.1-cp{py.rstrip('t')}-{abi}-manylinux_2_28_x86_64.whl", t214, ">=3.10"),
        )
    meta215 = recorded("torch-2.15.0.METADATA")
    for py in ("311", "312", "313", "314", "314t", "315", "315t"):
        idx.add(
            "torch",
            Served(
                f"torch-2.15.0-cp{py.rstrip('t')}-cp{py}-manylinux_2_28_x86_64.whl",
                t215,
                ">=3.11",
                metadata=meta215,
            ),
        )
    idx.add(
        "torch",
        Served("torch-2.15.0-cp312-cp312-macosx_14_0_arm64.whl", b"not a linux wheel", ">=3.11"),
        Served("torch-2.16.0rc1-cp312-cp312-manylinux_2_28_x86_64.whl", b"a release candidate", ">=3.11"),
        Served("torch-2.14.0-cp312-cp312-manylinux_2_28_x86_64.whl", b"yanked", ">=3.10", yanked=True),
    )
    for v in ("13.0.3", "13.2.2"):
        tk = make_wheel({f"cuda_toolkit-{v}.dist-info/METADATA": recorded(f"cuda_toolkit-{v}.METADATA")})
        idx.add("cuda-toolkit", Served(f"cuda_toolkit-{v}-py2.py3-none-any.whl", tk))
    tf = make_wheel(
        {
            "tensorflow-2.21.0.dist-info/METADATA": recorded("tensorflow-2.21.0.METADATA"),
            "tensorflow/python/platform/build_info.py": recorded("tensorflow-2.21.0.build_info_py"),
            "tensorflow/libtensorflow_framework.so.2": noise(1_000_000, 4),
        }
    )
    for py in ("310", "311", "312", "313"):
        idx.add(
            "tensorflow", Served(f"tensorflow-2.21.0-cp{py}-cp{py}-manylinux_2_27_x86_64.whl", tf, ">=3.10")
        )
    for v, py in (("0.11.2", ">=3.12"), ("0.12.0.1", ">=3.12"), ("0.12.1", ">=3.12"), ("0.10.2", ">=3.11")):
        idx.add("jax", Served(f"jax-{v}-py3-none-any.whl", b"jax", py))
    for extra, last in (("cuda12", "0.12.0.1"), ("cuda13", "0.12.1")):
        plugin = make_wheel(
            {f"jax_{extra}_plugin-{last}.dist-info/METADATA": recorded(f"jax_{extra}_plugin-{last}.METADATA")}
        )
        for v in ("0.10.2", "0.11.2", "0.12.0.1", "0.12.1"):
            if v == "0.12.1" and extra == "cuda12":
                continue  # jax-cuda12-plugin stops at 0.12.0.1
            data = plugin if v == last else make_wheel({"x": b""})
            idx.add(
                f"jax-{extra}-plugin",
                Served(f"jax_{extra}_plugin-{v}-cp312-cp312-manylinux_2_27_x86_64.whl", data),
            )
    tv = make_wheel({"torchvision-0.29.0.dist-info/METADATA": recorded("torchvision-0.29.0.METADATA")})
    idx.add("torchvision", Served("torchvision-0.29.0-cp312-cp312-manylinux_2_28_x86_64.whl", tv))
    ta = make_wheel({"torchaudio-2.10.0.dist-info/METADATA": recorded("torchaudio-2.10.0.METADATA")})
    idx.add("torchaudio", Served("torchaudio-2.10.0-cp312-cp312-manylinux_2_28_x86_64.whl", ta))
    return idx
