"""The README is part of the product: its rule table and its test command must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from envcheck.rules import catalog_markdown

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_rule_table_matches_the_rules() -> None:
    table = re.search(r"<!-- rules:start -->\n(.*?)\n<!-- rules:end -->", README, re.S)
    assert table is not None, "README lost its rules table markers"
    assert table.group(1).strip() == catalog_markdown().strip()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^exec (\S+)", ci, re.M)
    assert command is not None
    assert f"\n{command.group(1)}\n" in README
