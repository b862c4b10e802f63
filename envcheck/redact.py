"""Remove what identifies a person or a machine before a report is shared.

Hostname, user names, home directories, GPU/MIG UUIDs and serials, IP and MAC addresses, e-mail
addresses and anything that looks like a credential become stable placeholders (``<host>``,
``<home>``, ``<user>``, ``GPU-<redacted-1>``): the same value always gets the same placeholder
within a report, and GPUs are numbered in index order, so two redacted reports of one machine
still diff cleanly and every rule still evaluates (versions, names and counts are untouched).
"""

from __future__ import annotations

import re
from typing import Any

from envcheck.models import Report

__all__ = ["redact"]

#: environment variable names whose values are secrets whatever they look like
SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASS(WORD|WD)?\b|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH(?!OR)|COOKIE|SESSION)",
    re.IGNORECASE,
)
#: values that are credentials by their shape (GitHub, Hugging Face, OpenAI-style, AWS, Slack,
#: Google API keys, GitLab, JWTs)
TOKEN = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{16,}"
    r"|(AKIA|ASIA)[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}|glpat-[A-Za-z0-9_-]{16,}"
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,})"
)
#: a long random-looking word (letters and digits mixed), checked only in env values and commands
_OPAQUE = re.compile(
    r"(?<![\w/.-])(?=[A-Za-z0-9+_=-]*\d)(?=[A-Za-z0-9+_=-]*[A-Za-z])[A-Za-z0-9+_=-]{32,}(?![\w/.-])"
)
_URL_CREDS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+(:[^/\s@]*)?@", re.IGNORECASE)
_UUID = re.compile(
    r"\b(GPU|MIG)-([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b"
)
_BARE_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX4 = "[0-9a-fA-F]{1,4}"
_IPV6 = re.compile(
    rf"(?<![\w:])(?:{_HEX4}:){{3,7}}{_HEX4}(?![\w:])"  # full form
    rf"|(?<![\w:]){_HEX4}(?::{_HEX4})*::(?:{_HEX4}(?::{_HEX4})*)?(?![\w:])"  # compressed with ::
)
_QUAD = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
#: a dotted quad that is an address by its context: after "//" or "@", or before ":<port>"
_IPV4 = re.compile(rf"(?<![\w.])(?<!==)({_QUAD})()(?![\w.])")
_IPV4_IN_CONTEXT = re.compile(rf"(?:(?<=//)|(?<=@))({_QUAD})(?![\w.])|(?<![\w.])({_QUAD})(?=:\d)")
_ADDRESS_FIELDS = {"name", "command", "commands", "address", "ip", "host", "hostname", "message", "markers"}
_MAC = re.compile(r"\b(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b")
_HOME = re.compile(
    r"(/home/|/Users/|/var/home/|/export/home/"
    r"|[A-Za-z]:[\\/]Users[\\/]|[A-Za-z]:[\\/]Documents and Settings[\\/])"
    r"([^/\\\s:;'\"]+)",
    re.IGNORECASE,
)
#: root's home: "/root" itself or "/root/..." (not "/rootfs" or "/srv/root")
_ROOT_HOME = re.compile(r"(?<![\w.~-])/root(?=[/\s:;'\"]|$)")
_KEEP_IPS = {"127.0.0.1", "0.0.0.0", "255.255.255.255", "::1"}
#: accounts that name a role, not a person: their home is hidden but the word stays
_SYSTEM_USERS = {
    "root",
    "user",
    "admin",
    "ubuntu",
    "ec2-user",
    "centos",
    "debian",
    "jovyan",
    "runner",
    "nobody",
}
#: fields whose values are versions: dotted quads there are not IP addresses
_VERSION_FIELD = re.compile(r"(version|vbios|banner|_build)$|^(nvidia_wheels|plugins)$")


class _Redactor:
    def __init__(self, home: str | None = None) -> None:
        self.mapping: dict[str, str] = {}
        self.counters: dict[str, int] = {}
        self.users: set[str] = set()
        self.hosts: set[str] = set()
        #: home directories known by value ($HOME, the report's home disk), longest first
        self.homes: list[str] = []
        self.add_home(home)

    def add_home(self, path: str | None) -> None:
        """Hide ``path`` wherever it appears (only a real directory: not "/" or a bare word)."""
        if not path:
            return
        path = path.rstrip("/\\")
        if len(path) < 2 or not (path.startswith("/") or re.match(r"[A-Za-z]:[\\/]", path)):
            return
        if path not in self.homes:
            self.homes.append(path)
            self.homes.sort(key=len, reverse=True)

    def placeholder(self, value: str, kind: str) -> str:
        if value not in self.mapping:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            n = self.counters[kind]
            self.mapping[value] = {
                "GPU": f"GPU-<redacted-{n}>",
                "MIG": f"MIG-<redacted-{n}>",
            }.get(kind, f"<{kind}-{n}>")
        return self.mapping[value]

    def learn(self, data: dict[str, Any]) -> None:
        """Collect the identifying values that are known by field before touching any string."""
        snap = data.get("snapshot") or {}
        system = snap.get("system") or {}
        for disk in (snap.get("disk") or {}).get("disks") or []:
            if disk.get("label") == "home":
                self.add_home(disk.get("path"))
        if system.get("hostname"):
            self.hosts.add(system["hostname"])
            self.hosts.add(system["hostname"].split(".")[0])
        env = system.get("env") or {}
        for name in ("USER", "LOGNAME", "USERNAME", "SUDO_USER"):
            if env.get(name):
                self.users.add(env[name])
        for name in ("HOSTNAME", "HOST", "COMPUTERNAME"):
            if env.get(name):
                self.hosts.add(env[name])
        for m in _HOME.finditer(_all_text(data)):
            self.users.add(m.group(2))
        self.users = {u for u in self.users if len(u) >= 3 and u not in _SYSTEM_USERS}
        self.hosts = {h for h in self.hosts if len(h) >= 3 and h.lower() != "localhost"}
        # GPUs and their MIG instances in index order, so the numbering is the same across reports
        gpus = sorted((snap.get("nvidia") or {}).get("gpus") or [], key=lambda g: g.get("index", 0))
        for gpu in gpus:
            if gpu.get("uuid"):
                self.text(gpu["uuid"], "uuid")
            for mig in gpu.get("mig_devices") or []:
                if mig.get("uuid"):
                    self.text(mig["uuid"], "uuid")

    def _ip(self, ip: str) -> str:
        return ip if ip in _KEEP_IPS else self.placeholder(ip, "ip")

    def text(self, value: str, field: str, parent: str = "") -> str:
        """``value`` with every identifying part replaced; ``field`` is the key it sits under."""
        if field == "hostname":
            return "<host>"
        if field == "serial":
            return self.placeholder(value, "serial")
        out = _UUID.sub(lambda m: self.placeholder(m.group(0), m.group(1)), value)
        out = _BARE_UUID.sub(lambda m: self.placeholder(m.group(0).lower(), "uuid"), out)
        out = _URL_CREDS.sub(r"\1<redacted>@", out)
        out = TOKEN.sub("<redacted>", out)
        out = _EMAIL.sub("<email>", out)
        for home in self.homes:
            out = re.sub(rf"(?<![\w.~-]){re.escape(home)}(?=[/\\\s:;'\"]|$)", "<home>", out)
        out = _HOME.sub("<home>", out)
        out = _ROOT_HOME.sub("<home>", out)
        if parent == "env" or field in {"name", "command", "commands"}:
            out = _OPAQUE.sub("<redacted>", out)
        if not _VERSION_FIELD.search(field) and not _VERSION_FIELD.search(parent):
            out = _MAC.sub("<mac>", out)
            out = _IPV6.sub(lambda m: self._ip(m.group(0)), out)
            # a bare dotted quad is an address only where addresses live; elsewhere it may be a
            # four-part version (cuDNN 9.1.0.70), so it needs an address's context (URL, port, @)
            pattern = _IPV4 if field in _ADDRESS_FIELDS or parent == "env" else _IPV4_IN_CONTEXT
            out = pattern.sub(lambda m: self._ip(m.group(1) or m.group(2)), out)
        for word in sorted(self.hosts, key=len, reverse=True):
            out = re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", "<host>", out)
        for word in sorted(self.users, key=len, reverse=True):
            out = re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", "<user>", out)
        return out

    def walk(self, value: Any, field: str, parent: str = "") -> Any:
        if isinstance(value, str):
            if parent == "env" and SECRET_NAME.search(field):
                return "<redacted>"
            return self.text(value, field, parent)
        if isinstance(value, list):
            return [self.walk(v, field, parent) for v in value]
        if isinstance(value, dict):
            return {k: self.walk(v, str(k), field) for k, v in value.items()}
        return value


def _all_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_all_text(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(_all_text(v) for v in value)
    return ""


def redact(report: Report, home: str | None = None) -> Report:
    """A copy of ``report`` that can be pasted publicly; the original is not modified.

    Every home directory becomes ``<home>``: /home/x, /Users/x, C:\\Users\\x, /root, the report's
    own home disk, and ``home`` (pass ``$HOME`` when redacting a report of this machine).
    """
    data = report.model_dump(mode="json")
    r = _Redactor(home)
    r.learn(data)
    return Report.model_validate(r.walk(data, ""))
