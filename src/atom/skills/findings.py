"""Findings, severities and verdicts shared by the scanner's analysers."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import urlsplit


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 — a verdict, not a password; nothing above LOW
    REVIEW = "review"  # a MEDIUM finding: a person should read it
    WARN = "warn"  # a HIGH finding: risky, trust only knowingly
    MALICIOUS = "malicious"  # a CRITICAL finding: refused


EXCERPT_MAX = 200


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    file: str
    line: int | None
    excerpt: str
    message: str
    source: str | None = None  # None: the static scanner; "llm": the optional LLM review (skills/review.py)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.name.lower(),
            "file": self.file,
            "line": self.line,
            "excerpt": self.excerpt,
            "message": self.message,
        }
        if self.source is not None:
            found["source"] = self.source
        return found


@dataclass
class Usage:
    """What the code uses, for the declared-versus-used check."""

    env: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # name -> first (file, line)
    bins: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def use_env(self, name: str, file: str, line: int | None) -> None:
        self.env.setdefault(name, (file, line))

    def use_bin(self, name: str, file: str, line: int | None) -> None:
        self.bins.setdefault(name, (file, line))


def excerpt(text: str) -> str:
    one_line = " ".join(text.strip().split())
    return one_line if len(one_line) <= EXCERPT_MAX else one_line[: EXCERPT_MAX - 1] + "…"


def verdict_of(findings: list[Finding]) -> Verdict:
    worst = max((f.severity for f in findings), default=Severity.INFO)
    if worst >= Severity.CRITICAL:
        return Verdict.MALICIOUS
    if worst >= Severity.HIGH:
        return Verdict.WARN
    if worst >= Severity.MEDIUM:
        return Verdict.REVIEW
    return Verdict.PASS


# Where anonymous, unreviewable payloads are hosted: a download from one of these is not a vendor's installer.
PASTE_HOSTS = frozenset(
    {
        "pastebin.com",
        "paste.ee",
        "hastebin.com",
        "ghostbin.com",
        "glot.io",
        "rentry.co",
        "rentry.org",
        "controlc.com",
        "dpaste.com",
        "dpaste.org",
        "justpaste.it",
        "paste.c-net.org",
        "termbin.com",
        "ix.io",
        "sprunge.us",
        "0x0.st",
        "transfer.sh",
        "bit.ly",
        "tinyurl.com",
        "is.gd",
        "t.ly",
        "cutt.ly",
        "pastes.dev",
        "privatebin.net",
        "gist.githubusercontent.com",
    }
)
URL = re.compile(r"""\bhttps?://[^\s'"<>)\]`|]+""", re.IGNORECASE)
ARCHIVE_URL = re.compile(r"""https?://[^\s'"<>)\]`]+\.(?:zip|rar|7z|tar\.gz|tgz|exe|dmg|pkg|msi)\b""", re.I)


def url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_raw_ip(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_loopback


def is_paste_host(host: str) -> bool:
    return host in PASTE_HOSTS or any(host.endswith("." + h) for h in PASTE_HOSTS)


def shady_url(url: str) -> str | None:
    """Why a download URL is shady (raw IP, paste site, shortener), or None."""
    host = url_host(url)
    if is_raw_ip(host):
        return f"a raw IP address ({host})"
    if is_paste_host(host):
        return f"a paste or link-shortening site ({host})"
    return None
