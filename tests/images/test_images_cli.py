"""`provision image` through the real console entry point: output, JSON, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provision.images import lint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


def provision(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", "image", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def test_plan_json() -> None:
    r = provision(
        "plan", "-f", "torch==2.6", "--cuda", "12.4", "--driver", "535.104.05", "--gpu", "H100", "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["requirement"] == "torch==2.6.*"
    assert data["cuda"] == "12.4"
    assert data["driver_mode"] == "minor-version"
    assert data["gpus"][0]["compute_capability"] == "9.0"
    assert data["labels"]["dev.mlrig.cuda"] == "12.4"
    assert all(f["source"] and f["as_of"] for f in data["facts"])


def test_impossible_combination_is_one_error_and_exit_2() -> None:
    r = provision("plan", "-f", "torch==2.6", "--cuda", "12.8")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "error: torch 2.6 has no build for CUDA 12.8 (builds: 11.8, 12.4, 12.6)"
    assert lines[1] == "hint: nearest valid: --cuda 12.6, --cuda 12.4"
    assert "Traceback" not in r.stderr


def test_gpu_refusal_via_cli() -> None:
    r = provision("plan", "-f", "torch==2.11", "--cuda", "12.8", "--gpu", "V100")
    assert r.returncode == 2
    assert "compute capability 7.0" in r.stderr


def test_plan_from_envcheck_report() -> None:
    r = provision(
        "plan", "-f", "torch", "--from-envcheck", str(FIXTURES / "report_a10_driver535.json"), "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["requirement"], data["python"], data["driver"]) == (
        "torch==2.6.0+cu124",
        "3.10",
        "535.129.03",
    )
    missing = provision("plan", "--from-envcheck", "/nonexistent/report.json")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_render_writes_a_clean_context(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    r = provision("render", "-o", str(out), "-f", "tensorflow==2.18.0", "--python", "3.11")
    assert r.returncode == 0, r.stderr
    assert "hadolint and structural checks: clean" in r.stderr
    text = (out / "Dockerfile").read_text()
    assert lint.lint(text).ok
    assert '"tensorflow[and-cuda]==2.18.0"' in text


def test_build_without_engine_says_how_to_start_one(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    assert provision("render", "-o", str(out), "-f", "jax", "--cuda", "cpu", "--no-lint").returncode == 0
    r = provision("build", str(out), env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 3
    assert "no Docker engine answers" in r.stderr and "docker-engine.sh start" in r.stderr
    missing = provision("build", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "no Dockerfile" in missing.stderr


# ------------------------------------------------------------------ careful with files and input


def _render(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return provision("render", "-o", str(out), "-f", "torch==2.6", "--cuda", "cpu", "--no-lint", *extra)


def test_render_refuses_a_hand_written_dockerfile_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    out.mkdir()
    mine = "FROM scratch\n# my own\n"
    (out / "Dockerfile").write_text(mine)
    r = _render(out)
    assert r.returncode == 2, r.stderr
    assert "was not written by provision" in r.stderr and "--force" in r.stderr
    assert (out / "Dockerfile").read_text() == mine and not (out / ".mlrig").exists()
    (out / "Dockerfile").unlink()
    (out / ".dockerignore").write_text("secrets/\n")  # the .dockerignore is guarded the same way
    assert _render(out).returncode == 2 and (out / ".dockerignore").read_text() == "secrets/\n"
    forced = _render(out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "Dockerfile").read_text().startswith("# Rendered by mlrig")


def test_render_replaces_its_own_unchanged_files_but_not_edited_ones(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    assert _render(out).returncode == 0
    again = _render(out)  # ours and unchanged: re-rendering is the normal workflow
    assert again.returncode == 0, again.stderr
    (out / "Dockerfile").write_text((out / "Dockerfile").read_text() + "RUN echo edited by hand\n")
    edited = _render(out)
    assert edited.returncode == 2 and "edited since" in edited.stderr
    assert "edited by hand" in (out / "Dockerfile").read_text()


def test_render_writes_through_a_symlinked_dockerfile(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    assert _render(out).returncode == 0
    real = tmp_path / "dotfiles" / "Dockerfile"
    real.parent.mkdir()
    (out / "Dockerfile").rename(real)
    (out / "Dockerfile").symlink_to(real)
    assert _render(out).returncode == 0
    assert (out / "Dockerfile").is_symlink() and real.read_text().startswith("# Rendered by mlrig")


def test_render_into_a_file_or_an_impossible_place_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target in (a_file, a_file / "ctx", Path("/proc/mlrig-cannot-be-here")):
        r = _render(target)
        assert r.returncode == 2, (target, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert a_file.read_text() == "x"


def test_render_packs_this_mlrig_so_the_image_never_needs_an_unpublished_release(tmp_path: Path) -> None:
    import base64
    import hashlib
    import zipfile

    from envcheck import __version__

    out = tmp_path / "ctx"
    r = _render(out)
    assert r.returncode == 0, r.stderr
    wheel = out / ".mlrig" / "wheels" / f"mlrig-{__version__}-py3-none-any.whl"
    assert "packed this mlrig" in r.stderr and wheel.is_file()
    text = (out / "Dockerfile").read_text()
    assert f'"/tmp/mlrig/wheels/{wheel.name}"' in text and f'"mlrig=={__version__}"' not in text
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        templates = "provision/images/dockerfiles/torch.Dockerfile.j2"
        assert {"envcheck/cli.py", "provision/cli.py", templates} <= names
        info = f"mlrig-{__version__}.dist-info"
        assert "Requires-Dist: typer" in zf.read(f"{info}/METADATA").decode()
        assert "envcheck" in zf.read(f"{info}/entry_points.txt").decode()
        for line in zf.read(f"{info}/RECORD").decode().splitlines():  # a RECORD pip accepts
            name, digest, _ = line.split(",")
            if digest:
                raw = hashlib.sha256(zf.read(name)).digest()
                assert digest == "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    first = wheel.read_bytes()
    assert _render(out).returncode == 0 and wheel.read_bytes() == first  # reproducible: cache-friendly
    pinned = _render(tmp_path / "pinned", "--envcheck-requirement", f"mlrig=={__version__}")
    assert pinned.returncode == 0 and not list((tmp_path / "pinned" / ".mlrig" / "wheels").glob("*.whl"))
    assert f'"mlrig=={__version__}"' in (tmp_path / "pinned" / "Dockerfile").read_text()


def test_a_bad_tag_is_a_usage_error_before_any_engine_is_asked(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    assert _render(out).returncode == 0
    for bad in ("BAD TAG!!", "Upper/case", "x:" + "t" * 200, "a//b"):
        r = provision("build", str(out), "-t", bad, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
        assert r.returncode == 2, (bad, r.stderr)
        assert "not a valid image reference" in r.stderr and "Docker engine" not in r.stderr


def test_every_image_json_output_has_a_schema_version() -> None:
    r = provision("plan", "-f", "jax", "--cuda", "cpu", "--json")
    assert json.loads(r.stdout)["schema_version"] == "1.0"


def test_the_engine_hint_works_without_a_checkout() -> None:
    from provision.images._docker import start_hint

    hint = start_hint()
    assert hint.startswith("start Docker") and "DOCKER_HOST" in hint
    # the private-engine script is named by its absolute path, so it works from any directory
    assert "scripts/docker-engine.sh" not in hint or "/scripts/docker-engine.sh start" in hint
