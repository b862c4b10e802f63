"""Undo what GitHub does to a pasted report: fences, ``<details>`` wrappers, quotes, CRLF.

Both readers start here, so a JSON report or a collect_env text pasted into an issue comment
reads the same as the file it came from.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)[\w+-]*\s*$")
_SUMMARY = re.compile(r"<summary\b[^>]*>.*?</summary>", re.IGNORECASE)
_HTML_TAGS = re.compile(r"</?(details|summary|pre|code)\b[^>]*>", re.IGNORECASE)
_QUOTE = re.compile(r"^\s*> ?")


def unwrap(text: str) -> str:
    """The report inside ``text``: markdown fences, HTML wrappers and ``> `` quoting removed."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    nonblank = [ln for ln in lines if ln.strip()]
    if nonblank and sum(1 for ln in nonblank if _QUOTE.match(ln)) >= 0.8 * len(nonblank):
        lines = [_QUOTE.sub("", ln, count=1) for ln in lines]
    kept: list[str] = []
    for line in lines:
        if _FENCE.match(line):
            continue
        bare = _HTML_TAGS.sub("", _SUMMARY.sub("", line)) if "<" in line else line
        if bare != line and not bare.strip():
            continue  # a line of wrappers only (<details>, <summary>title</summary>, </pre>)
        kept.append(bare)
    body = "\n".join(kept).strip()
    # an inline-code paste: `Collecting environment information... ... pypi`
    if body.startswith("`") and not body.startswith("``"):
        body = body[1:]
    if body.endswith("`") and not body.endswith("``"):
        body = body[:-1]
    return body.strip()
