"""``load``: envcheck JSON round trips, GitHub wrappers are undone, bad input is one clear error."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from envcheck.errors import UsageError
from envcheck.ingest import load
from envcheck.models import SCHEMA_VERSION, Report

CE = "pytorch-150852_8x_h100_centos9.txt"


def test_json_round_trip(report: Report) -> None:
    text = report.model_dump_json(indent=2)
    assert load(text, "r.json") == report


def test_json_pasted_in_a_fenced_details_block(report: Report) -> None:
    body = report.model_dump_json()
    text = f"<details><summary>envcheck --json</summary>\n\n```json\n{body}\n```\n\n</details>\n"
    assert load(text, "issue") == report


def test_json_after_a_prompt_and_before_a_note(report: Report) -> None:
    text = f"$ envcheck --json\n{report.model_dump_json(indent=1)}\nthat was on the login node\n"
    assert load(text, "comment") == report


def test_json_with_unknown_fields_from_a_newer_minor(report: Report) -> None:
    data = json.loads(report.model_dump_json())
    data["schema_version"] = "1.7"
    data["brand_new_top_level"] = {"x": 1}
    data["snapshot"]["nvidia"]["gpus"][0]["future_field"] = 42
    data["snapshot"]["future_section"] = {"a": "b"}
    loaded = load(json.dumps(data), "r.json")
    assert loaded.schema_version == "1.7"
    assert loaded.snapshot == report.snapshot


def test_json_from_a_newer_major_is_refused(report: Report) -> None:
    major = int(SCHEMA_VERSION.split(".")[0]) + 1
    data = json.loads(report.model_dump_json()) | {"schema_version": f"{major}.0"}
    with pytest.raises(UsageError) as err:
        load(json.dumps(data), "new.json")
    assert f"{major}.0" in err.value.message and "newer" in err.value.message
    assert err.value.hint is not None and "upgrade" in err.value.hint


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty input"),
        ("  \n```\n\n```\n<details>\n</details>\n", "empty input"),
        ("hello, this is not a report\nat all", "neither"),
        ("\x00\x01PK\x03\x04garbage\xff", "neither"),
        ('{"tool": "something else", "data": [1, 2]}', "no schema_version"),
        ("[1, 2, 3]", "no schema_version"),
        ('{"schema_version": "x.y", "snapshot": {}}', "MAJOR.MINOR"),
        ('{"schema_version": "1.0", "tool_version": "0.1.0", "created_at": "now"}', "snapshot"),
        ('{"schema_version": "1.0", "snapshot": {"nvidia": {"gpus": [{"index": "zero"}]}}}', "not a valid"),
    ],
)
def test_bad_input_is_one_clear_usage_error(text: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        load(text, "in.txt")
    message = err.value.message
    assert message.startswith("in.txt: ") and words in message
    assert "\n" not in message and err.value.exit_code == 2


def test_truncated_json_says_so(report: Report) -> None:
    text = report.model_dump_json(indent=2)
    with pytest.raises(UsageError) as err:
        load(text[: len(text) // 2], "cut.json")
    assert "not valid JSON" in err.value.message and "truncated" in err.value.message


def test_a_collect_env_cut_after_a_few_lines_is_read_and_marked_cut(
    read_fixture: Callable[[str], str],
) -> None:
    head = "\n".join(read_fixture(CE).split("\n")[:6])  # prompt, header and two lines
    snap = load(head, "cut.txt").snapshot
    torch = snap.framework("torch")
    assert torch is not None and torch.version == "2.8.0.dev20250327+cu126"
    assert snap.paste is not None and snap.paste.truncated is True


@pytest.mark.parametrize(
    "wrap",
    [
        lambda t: t,
        lambda t: t.replace("\n", "\r\n"),
        lambda t: (
            f"### Versions\n\n<details>\n<summary>collect_env</summary>\n\n```text\n{t}\n```\n</details>\n"
        ),
        lambda t: "\n".join("> " + line for line in t.split("\n")),
        lambda t: f"<details><summary>env</summary><pre>{t}</pre></details>",
        lambda t: "\ufeff" + t + "\n\n" + t,  # BOM, and the same report pasted twice
    ],
    ids=["raw", "crlf", "details", "quoted", "html-pre", "bom-twice"],
)
def test_github_wrappers_do_not_change_the_facts(
    wrap: Callable[[str], str], read_fixture: Callable[[str], str]
) -> None:
    text = read_fixture(CE)
    expected = load(text, "a").snapshot
    assert load(wrap(text), "b").snapshot == expected
