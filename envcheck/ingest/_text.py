"""Undo what terminals, GitHub and log collectors do to a pasted report, line by line.

Every recogniser reads the same normalised ``Doc``: Markdown fences and ``>`` quotes gone,
``<details>``/``<summary>``/``<pre>`` wrappers and HTML entities undone, ANSI colours and control
characters removed, log-collector prefixes (``2024-03-14T06:35:42Z``, pytest's ``E   ``,
``service  | ``, Python logging's ``2024-09-22 16:26:39,791 - root - INFO - ``, vLLM's ``INFO 05-26 07:50:26
[core.py:396] ``) cut, CRLF and lone CR unified. Indentation is kept (``nvidia-smi -q`` needs it):
recognisers match with leading whitespace allowed. Shell prompt lines are kept too, and their
commands are listed, because ``CUDA_VISIBLE_DEVICES=2 python train.py`` or ``docker run --gpus``
are facts.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Doc", "Line", "normalise", "unwrap"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\u2028\u2029\ufeff]")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[^`]*$")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+(?=\S|$)")
_TAGS = re.compile(
    r"</?(?:details|summary|pre|code|br|p|sub|sup|kbd|em|strong|b|i|div|span|ul|ol|li|tt)\b[^>]*>",
    re.IGNORECASE,
)
_ISO_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?(?:\s|$)")
_PYTEST_PREFIX = re.compile(r"^E {3}")
#: quote markers (maybe none) before a Python prompt ">>> code"
_REPL_PROMPT = re.compile(r"^(\s{0,3}(?:>\s?)*?)>>>(?: |$)")
#: Python logging's default formats ("2024-09-22 16:26:39,791 - root - INFO - ", "INFO:root:") and vLLM's
#: ("INFO 05-26 07:50:26 [core.py:396] ")
_LEVELS = ("DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL ")
_LOGGING_PREFIX = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)? - [\w.]+ - [A-Z]+ - "
    r"|(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[\w.]+:\d+\] )"
)
_SERVICE_PREFIX = re.compile(r"^([\w.-]{2,40})\s+\|(?:\s|$)")
#: "user@host:~/dir$ cmd", "(env) [root@h dir]# cmd", "$ cmd", "PS C:\\x> cmd", "➜ cmd" (oh-my-zsh),
#: "❯ cmd" (starship, pure), "~ » cmd"
_PROMPT = re.compile(
    r"^\s*(?:\([\w.-]+\)\s*)?"
    r"(?:[\w.-]+@[\w.-]+(?::[^\s$#]*)?\s?[$#%]"
    r"|\[[^\]\n]{1,80}\][$#%]"
    r"|[~/][^\s$#]*[$#]"
    r"|[$#%]"
    r"|PS [A-Za-z]:\\[^>]*>"
    r"|[A-Za-z]:\\[^>\s]*>"
    r"|➜\s+[\w./~-]*"
    r"|❯"
    r"|[~\w./-]*\s*»"
    r"|\+{1,2})"
    r"\s+(?P<cmd>[A-Za-z_./][^\n]*)$"
)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});")


@dataclass(frozen=True)
class Line:
    """One normalised line: ``no`` is its 1-based number in the input."""

    no: int
    text: str


@dataclass
class Doc:
    """The paste after normalisation, as lines and as one text for multi-line patterns."""

    lines: list[Line]
    #: (index into ``lines``, command) for each line that looks like a shell prompt
    commands: list[tuple[int, str]] = field(default_factory=list)
    text: str = ""
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        parts = [ln.text for ln in self.lines]
        self.text = "\n".join(parts)
        starts, pos = [], 0
        for p in parts:
            starts.append(pos)
            pos += len(p) + 1
        self._starts = starts

    def index_at(self, offset: int) -> int:
        """The index into ``lines`` of the line holding character ``offset`` of ``text``."""
        return max(0, bisect_right(self._starts, offset) - 1)

    def line_no(self, offset: int) -> int | None:
        return self.lines[self.index_at(offset)].no if self.lines else None


def _clean(line: str) -> str:
    if not line.isascii():  # full-width colons and digits from CJK input methods, odd spaces
        line = unicodedata.normalize("NFKC", line)
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    line = _CONTROL.sub("", line.replace("\u00a0", " "))
    if "<" in line:
        line = _TAGS.sub("", line)
    if "&" in line and _ENTITY.search(line):
        line = html.unescape(line)
    return line.rstrip()


def _service_prefix(lines: list[str]) -> str | None:
    """``docker compose`` logs prefix every line with ``name  | ``: the prefix seen on many lines."""
    counts = Counter(m.group(1) for ln in lines if (m := _SERVICE_PREFIX.match(ln)))
    if not counts:
        return None
    name, n = counts.most_common(1)[0]
    return name if n >= 3 else None


#: Longer lines are cut for the recognisers: no dump has lines this long, and every pattern then
#: runs on bounded input (a JSON report on one line is read from the uncut text)
MAX_LINE = 4000


def normalise(text: str, max_line: int | None = MAX_LINE) -> Doc:
    """The paste in ``text`` with its wrappers removed (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw = text.split("\n")
    if max_line is not None:
        raw = [r[:max_line] for r in raw]
    service = _service_prefix(raw[:400])
    service_re = re.compile(rf"^{re.escape(service)}\s+\|(?:\s|$)") if service else None
    lines: list[Line] = []
    commands: list[tuple[int, str]] = []
    for no, original in enumerate(raw, start=1):
        line = _clean(original)
        if _FENCE.match(line):
            continue
        if line.lstrip().startswith(">"):
            # ">>> import torch" is Python's prompt, not a third quote level (a quoted one keeps it too)
            repl = _REPL_PROMPT.match(line)
            line = line[repl.end(1) :] if repl else _QUOTE.sub("", line, count=1)
            if _FENCE.match(line):
                continue
        if service_re is not None:
            line = service_re.sub("", line, count=1)
        line = _ISO_PREFIX.sub("", line, count=1)
        line = _PYTEST_PREFIX.sub("", line, count=1)
        if line[:4].isdigit() or line.startswith(_LEVELS):
            line = _LOGGING_PREFIX.sub("", line, count=1)
        stripped = line.strip()
        if len(stripped) >= 2 and stripped[0] == "`" and stripped[-1] == "`" and stripped[1] != "`":
            line = line.replace("`", "", 1)[::-1].replace("`", "", 1)[::-1]  # a line in inline code
        if (m := _PROMPT.match(line)) is not None:
            commands.append((len(lines), m.group("cmd").strip()))
        lines.append(Line(no, line))
    return Doc(lines, commands)


def unwrap(text: str) -> str:
    """The paste as one text, wrappers removed: what the JSON reader parses."""
    body = normalise(text, max_line=None).text.strip()
    # an inline-code paste: `Collecting environment information... ... pypi`
    if body.startswith("`") and not body.startswith("``"):
        body = body[1:]
    if body.endswith("`") and not body.endswith("``"):
        body = body[:-1]
    return body.strip()
