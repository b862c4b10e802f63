"""Readers for other people's reports: an envcheck JSON file, or whatever text they pasted.

``load`` accepts bytes or text in any common encoding (UTF-16 from PowerShell's ``>``, a BOM),
undoes the wrapping GitHub, terminals and log collectors add (``_text.normalise``), then lets
one small recogniser per format find what it knows (collect_env, vLLM's collect-env, the
Hugging Face ``env`` commands, TensorFlow's dumps, ``jax.print_environment_info``, nvidia-smi,
nvcc, pip/conda lists, lscpu, os-release, docker info, shell lines, error lines) and merges it all
into one Snapshot (``merge``). A whole GitHub issue body is valid input. The returned Report
carries no findings: the caller judges the Snapshot with today's rules.
"""

from __future__ import annotations

import datetime as _dt
import json
import re

from envcheck import __version__
from envcheck.errors import UsageError
from envcheck.ingest import (
    banners,
    bitsandbytes,
    collect_env,
    cv_env,
    docker,
    hf_env,
    install,
    jax_env,
    lightning_env,
    lscpu,
    messages,
    nvcc,
    nvidia_smi,
    ollama,
    os_release,
    packages,
    repl,
    shell,
    tf_env,
    torch_config,
    versions,
)
from envcheck.ingest._decode import decode
from envcheck.ingest._json import load_json
from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc, normalise
from envcheck.ingest.merge import merge
from envcheck.models import Report, Snapshot

__all__ = ["RECOGNISERS", "decode", "load", "read_paste"]

_HINT = (
    "give a file written by `envcheck --json`, or the output of `python -m torch.utils.collect_env`, "
    "nvidia-smi, `pip list`, an error message or a whole issue body"
)
#: one reader per format, each returning the Partials it found
RECOGNISERS = (
    collect_env.read, torch_config.read, nvidia_smi.read, hf_env.read, cv_env.read, lightning_env.read,
    tf_env.read, jax_env.read, repl.read, banners.read, ollama.read, bitsandbytes.read, versions.read,
    packages.read, install.read, nvcc.read, lscpu.read, os_release.read, docker.read, shell.read,
    messages.read,
)  # fmt: skip
#: of a longer paste, the first and last halves of this are read (GitHub caps an issue body at 65,536
#: characters; a log attached as a file can be far longer)
MAX_CHARS = 2_000_000
#: likewise in lines (a log of empty or one-character lines is long in lines, short in characters)
MAX_LINES = 100_000
#: no real paste holds more dumps of one kind than this; of more, the first and last halves are merged
MAX_PARTIALS = 64


def read_paste(doc: Doc) -> Snapshot | None:
    """The Snapshot the text in ``doc`` states; None when no recogniser found anything."""
    partials: list[Partial] = []
    for recognise in RECOGNISERS:
        found = recognise(doc)
        if len(found) > MAX_PARTIALS:
            found = found[: MAX_PARTIALS // 2] + found[-MAX_PARTIALS // 2 :]
        partials.extend(found)
    facts = [p for p in partials if p.kind != "shell"]
    if not facts:
        return None
    return merge(partials)


def _looks_like_json(body: str) -> bool:
    """A JSON document, not a line that starts with "[" ("[user@host ~]$", "[2024-03-14 ...] [INFO]")."""
    if body.startswith("{"):
        return True
    if not body.startswith("["):
        return False
    try:
        json.JSONDecoder().raw_decode(body)
    except (ValueError, RecursionError):
        return False
    return True


def load(data: str | bytes, origin: str) -> Report:
    """The Report in ``data`` (``origin`` names it in error messages: a path or "stdin")."""
    text = decode(data)
    cut = len(text) > MAX_CHARS
    if cut:  # a huge log: its start (the environment) and its end (the error) matter
        text = text[: MAX_CHARS // 2] + "\n" + text[-MAX_CHARS // 2 :]
    if text.count("\n") + text.count("\r") > MAX_LINES:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) > MAX_LINES:
            cut = True
            text = "\n".join(lines[: MAX_LINES // 2] + lines[-MAX_LINES // 2 :])
    if not text.strip():
        raise UsageError(f"{origin}: empty input", hint=_HINT)
    doc = normalise(text)
    body = doc.text.strip().strip("`").strip()
    if not body:
        raise UsageError(f"{origin}: empty input", hint=_HINT)
    if body.startswith(("{", "[")):  # maybe JSON, maybe on lines longer than the recognisers read
        body = normalise(text, max_line=None).text.strip().strip("`").strip()
    if _looks_like_json(body):
        return load_json(body, origin)
    snapshot = read_paste(doc)
    if snapshot is None:
        if re.search(r"^\s*\{", body, re.MULTILINE) and "schema_version" in body:
            # JSON after a prompt or a note, maybe on one line longer than the recognisers read
            full = normalise(text, max_line=None).text
            if start := re.search(r"^\s*\{", full, re.MULTILINE):
                return load_json(full[start.start() :].strip().rstrip("`").strip(), origin)
        if "Traceback (most recent call last)" in body:  # say what it is, not quote a "Traceback" back
            what = "a Python traceback, but no dump or CUDA/driver error line envcheck can read"
        else:
            first = next((ln for ln in body.split("\n") if ln.strip()), "")[:60]
            what = (
                "neither an envcheck JSON report nor a dump or error line envcheck can read "
                f"(starts {first!r})"
            )
        raise UsageError(f"{origin}: {what}", hint=_HINT)
    if cut and snapshot.paste is not None:
        snapshot.paste.truncated = True
    return Report(
        tool_version=__version__,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        snapshot=snapshot,
    )
