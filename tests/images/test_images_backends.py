"""Build backends without an engine: recorded engine output replayed through our own seams.

The fixtures in tests/fixtures/images/ were recorded from real builds on dockerd 20.10.24
(legacy builder through docker-py 7.2.0, and BuildKit through Debian's docker 20.10 CLI).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from provision.errors import UsageError
from provision.images import _docker, backends
from provision.images.backends import (
    BuildEvent,
    BuildFailed,
    BuildRequest,
    CliBackend,
    SdkBackend,
    buildkit_event,
    find_buildkit_cli,
    sdk_event,
    select,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


def chunks(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def context_with(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


# A Dockerfile whose line 26 is the torch step, as in the recorded failing build
FAILING_DOCKERFILE = "\n" * 25 + 'RUN pip install --no-cache-dir --no-index "torch==2.6.0+cu126"\n'


def test_sdk_chunks_become_steps_and_logs() -> None:
    events = [e for e in (sdk_event(c) for c in chunks("sdk_build_ok.jsonl")) if e is not None]
    steps = [e for e in events if e.kind == "step"]
    assert [s.step for s in steps] == list(range(1, steps[0].total + 1 if steps[0].total else 0))
    assert steps[0].text.startswith("ARG BASE_IMAGE=")
    assert any(s.text.startswith("COPY --from=builder /opt/venv") for s in steps)
    assert any(e.kind == "log" and "Successfully installed" in e.text for e in events)
    assert not any("\x1b[" in e.text for e in events)


def test_podman_step_spelling_is_understood() -> None:
    event = sdk_event({"stream": "[2/2] STEP 3/5: COPY --from=builder /opt/venv /opt/venv\n"})
    assert event == BuildEvent("step", "COPY --from=builder /opt/venv /opt/venv", 3, 5)


def test_pull_progress_carries_bytes() -> None:
    event = sdk_event(
        {"status": "Downloading", "progressDetail": {"current": 512, "total": 2048}, "id": "abc123"}
    )
    assert event is not None
    assert (event.kind, event.current, event.size, event.key) == ("pull", 512, 2048, "abc123")


def test_buildkit_lines_become_steps_downloads_and_logs() -> None:
    lines = (FIXTURES / "buildkit_build_ok.txt").read_text().splitlines()
    events = [e for e in (buildkit_event(ln) for ln in lines) if e is not None]
    steps = [e for e in events if e.kind == "step"]
    assert {e.text.split("]")[0] for e in steps} == {"[builder", "[runtime"}
    assert any("pip install" in e.text and e.step == 4 and e.total == 5 for e in steps)
    logs = [e.text for e in events if e.kind == "log"]
    assert any(t.startswith("Looking in links: /tmp/mlrig/wheels") for t in logs)
    dl = buildkit_event("#7 sha256:0a1b2c3d4e5f60718293 12.5MB / 40.2MB 3.1s")
    assert dl is not None and dl.kind == "download"
    assert (dl.current, dl.size) == (12_500_000, 40_200_000)


def test_sdk_backend_failure_names_the_step_line_and_pip_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = chunks("sdk_build_pip_fail.jsonl")
    monkeypatch.setattr(_docker, "client", lambda timeout=0: object())
    monkeypatch.setattr(_docker, "build_stream", lambda *a, **k: iter(recorded))
    ctx = context_with(tmp_path, FAILING_DOCKERFILE)
    seen: list[BuildEvent] = []
    with pytest.raises(BuildFailed) as e:
        SdkBackend().build(BuildRequest(ctx, "t:1"), seen.append)
    msg = e.value.message
    assert 'RUN pip install --no-cache-dir --no-index "torch==2.6.0+cu126"' in msg
    assert "Dockerfile line 26" in msg
    assert msg.endswith("exit code 1")
    assert "No matching distribution found for torch==2.6.0+cu126" in (e.value.hint or "")
    assert [ev.step for ev in seen if ev.kind == "step"] == [1, 2, 3, 4, 5, 6, 7]


def fake_cli(tmp_path: Path, body: str) -> str:
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_cli_backend_failure_from_recorded_buildkit_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = FIXTURES / "buildkit_build_pip_fail.txt"
    cli = fake_cli(tmp_path, f'cat "{recorded}" >&2\nexit 1\n')
    monkeypatch.setattr(_docker, "client", lambda timeout=0: object())
    ctx = context_with(
        tmp_path,
        "\n" * 24
        + 'RUN --mount=type=cache,target=/root/.cache/pip pip install --no-index "torch==2.6.0+cu126"\n',
    )
    with pytest.raises(BuildFailed) as e:
        CliBackend(backends.Cli(cli, "env", "20.10.24")).build(BuildRequest(ctx, "t:1"), lambda ev: None)
    assert "(builder stage, Dockerfile line 25): exit code 1" in e.value.message
    assert "No matching distribution" in (e.value.hint or "")


def test_cli_command_line(tmp_path: Path) -> None:
    req = BuildRequest(tmp_path, "img:1", build_args={"BASE_IMAGE": "x:1"}, labels={"a": "b"}, no_cache=True)
    cmd, env = CliBackend(backends.Cli("/usr/bin/docker", "env", "20.10.24")).command(req)
    assert env["DOCKER_BUILDKIT"] == "1"
    assert cmd[:2] == ["/usr/bin/docker", "build"]
    assert cmd[cmd.index("--network") + 1] == "host"
    assert cmd[cmd.index("--build-arg") : cmd.index("--build-arg") + 2] == ["--build-arg", "BASE_IMAGE=x:1"]
    assert "--no-cache" in cmd and cmd[-1] == str(tmp_path)
    bx, _ = CliBackend(backends.Cli("/x/docker", "buildx", "v0.17")).command(req)
    assert bx[:4] == ["/x/docker", "buildx", "build", "--load"]


def test_buildkit_cli_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = fake_cli(tmp_path, 'case "$1" in buildx) exit 1;; version) echo 20.10.24+dfsg1;; esac\n')
    monkeypatch.setenv("PROVISION_DOCKER_CLI", old)
    found = find_buildkit_cli()
    assert found is not None and found.mode == "env"
    (tmp_path / "docker").unlink()
    new = fake_cli(tmp_path, 'case "$1" in buildx) exit 1;; version) echo 28.2.2;; esac\n')
    monkeypatch.setenv("PROVISION_DOCKER_CLI", new)
    assert find_buildkit_cli() is None
    with pytest.raises(UsageError, match="BuildKit"):
        select("FROM a:1\nRUN --mount=type=cache,target=/root/.cache/pip pip install x\n")


def test_backend_selection() -> None:
    plain = "FROM a:1\nRUN pip install --no-cache-dir x\n"
    mounts = "FROM a:1\nRUN --mount=type=cache,target=/root/.cache/pip pip install x\n"
    assert select(plain).name == "sdk"
    with pytest.raises(UsageError, match="legacy builder rejects"):
        select(mounts, "sdk")
    with pytest.raises(UsageError, match="unknown backend"):
        select(plain, "podman")


def test_base_images_resolve_args_and_skip_stages() -> None:
    text = (
        "ARG BASE_IMAGE=nvidia/cuda:12.4.1-base-ubuntu22.04\n"
        "FROM ${BASE_IMAGE} AS builder\nFROM builder AS x\n"
    )
    assert backends.base_images(text, {}) == ["nvidia/cuda:12.4.1-base-ubuntu22.04"]
    assert backends.base_images(text, {"BASE_IMAGE": "local/b:1"}) == ["local/b:1"]


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(_docker.EngineUnavailable) as e:
        _docker.client(timeout=5)
    assert "no socket there" in e.value.message
    assert "docker-engine.sh start" in (e.value.hint or "")
    assert os.environ["DOCKER_HOST"].endswith("nothing.sock")
