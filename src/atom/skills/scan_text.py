"""The prose of a skill: instructions aimed at the agent or the reader that code analysis cannot see.

Malware skills rarely put the payload in a code block: they tell the reader to download a
password-protected archive or to paste a command from a paste site. These rules read the
Markdown text line by line, with a small window for "the link ... and its password".
"""

from __future__ import annotations

import re

from atom.skills.findings import ARCHIVE_URL, URL, Finding, Severity, excerpt, shady_url

_PASSWORD = re.compile(r"\b(?:pass(?:word)?|pwd|passcode)\b[\s*_:=`'\"]*[\w-]{2,}", re.I)
_RUN_WORDS = re.compile(r"\b(?:run|execute|paste|launch|open|install)\b", re.I)
_EXECUTABLE = re.compile(r"\b[\w-]+\.(?:exe|msi|scr|bat|cmd|ps1|dmg|pkg|app)\b", re.I)
_INJECTION = (
    (
        re.compile(
            r"\bignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier) (?:instructions|rules|prompts?)\b", re.I
        ),
        Severity.HIGH,
    ),
    (
        re.compile(r"\bdisregard (?:your|all|the|any) (?:previous |prior )?(?:instructions|rules|guidelines)\b", re.I),
        Severity.HIGH,
    ),
    (re.compile(r"\b(?:do not|don't|never) (?:tell|inform|alert|notify|show) the user\b", re.I), Severity.HIGH),
    (re.compile(r"\bwithout (?:telling|informing|notifying|alerting) the user\b", re.I), Severity.HIGH),
    (re.compile(r"\b(?:reveal|print|output|send) (?:your |the )?system prompt\b", re.I), Severity.MEDIUM),
    (re.compile(r"\byou are now (?:in )?(?:developer|dan|jailbreak|unrestricted)\b", re.I), Severity.HIGH),
    (
        re.compile(
            r"\b(?:exfiltrate|upload|send|post) (?:the )?(?:user'?s? )?(?:credentials|private keys?|seed "
            r"phrases?|passwords|api keys|\.env|ssh keys?)\b",
            re.I,
        ),
        Severity.HIGH,
    ),
)


def scan_prose(text: str, *, file: str, first_line: int, findings: list[Finding]) -> None:
    lines = text.split("\n")
    in_fence = False
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        number = first_line + index
        for pattern, severity in _INJECTION:
            if pattern.search(line):
                findings.append(
                    Finding(
                        "prompt_injection",
                        severity,
                        file,
                        number,
                        excerpt(line),
                        "Text aimed at the agent that overrides its rules or hides from the user.",
                    )
                )
        if in_fence:
            continue
        window = " ".join(lines[max(0, index - 3) : index + 4])
        for url in ARCHIVE_URL.findall(line):
            if _PASSWORD.search(window):
                findings.append(
                    Finding(
                        "password_archive",
                        Severity.CRITICAL,
                        file,
                        number,
                        excerpt(line),
                        "Tells the reader to download a password-protected archive (a known "
                        "way to slip malware past scanners).",
                    )
                )
            elif _EXECUTABLE.search(url):
                findings.append(
                    Finding(
                        "download_executable",
                        Severity.HIGH,
                        file,
                        number,
                        excerpt(line),
                        "Tells the reader to download and run a native executable.",
                    )
                )
        for url in URL.findall(line):
            reason = shady_url(url)
            if reason and _RUN_WORDS.search(window):
                findings.append(
                    Finding(
                        "paste_site_command",
                        Severity.CRITICAL,
                        file,
                        number,
                        excerpt(line),
                        f"Tells the reader to run something from {reason}.",
                    )
                )
