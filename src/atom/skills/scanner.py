"""The static scanner: every code block, bundled script, install step and the prose -> findings + verdict.

Fail closed: `scan()` never raises; an internal error gives a report with `error` set and no
verdict, and the registry keeps such a skill Untrusted (it cannot be trusted until a scan succeeds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from atom.observability.logging import get_logger
from atom.skills.bundle import SkillBundle
from atom.skills.findings import Finding, Severity, Usage, Verdict, verdict_of
from atom.skills.scan_python import scan_python
from atom.skills.scan_shell import scan_install_steps, scan_shell, scan_unlabeled
from atom.skills.scan_text import scan_prose

log = get_logger("atom.skills.scanner")
SCANNER_VERSION = "1"
PYTHON_LANGS = frozenset({"python", "py", "python3", "py3"})
SHELL_LANGS = frozenset({"bash", "sh", "shell", "zsh", "console", "terminal", "shellscript", "shell-session"})
MAX_UNDECLARED = 20
# Environment variables and programs every shell has: using them is not a missing declaration.
COMMON_ENV = frozenset(
    {
        "HOME",
        "PATH",
        "USER",
        "PWD",
        "SHELL",
        "TMPDIR",
        "TMP",
        "LANG",
        "TERM",
        "EDITOR",
        "PYTHONPATH",
        "OLDPWD",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "HOSTNAME",
        "UID",
        "RANDOM",
        "SECONDS",
        "PPID",
        "OSTYPE",
        "LC_ALL",
        "DISPLAY",
        "VIRTUAL_ENV",
        "CI",
        "DEBUG",
        "OPENCLAW_HOME",
    }
)
_COMMON_BINS_TEXT = (
    "echo printf cat ls cd pwd mkdir rm cp mv touch chmod chown ln head tail grep egrep sed awk cut sort uniq wc tr "
    "find xargs tee test [ true false sleep date env export source . set unset read if then else fi for do done "
    "while case esac return exit which command type basename dirname realpath readlink mktemp tar gzip gunzip zip "
    "unzip diff less more file stat du df ps kill jq curl wget git python python3 pip pip3 sh bash zsh open sudo "
    "time local declare eval exec trap shift wait jobs bg fg nohup clear history alias printenv id whoami uname "
    "hostname seq yes base64 md5sum sha256sum shasum xxd od tput stty tmux screen ssh scp rsync npm npx node brew "
    "apt apt-get uv uvx pipx go cargo make docker man vi vim nano code open xdg-open pbcopy pbpaste cron crontab "
    "systemctl "
)
COMMON_BINS = frozenset(_COMMON_BINS_TEXT.split())


@dataclass
class ScanReport:
    verdict: Verdict | None
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    duration_ms: float = 0.0
    scanner_version: str = SCANNER_VERSION

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            key = finding.severity.name.lower()
            counts[key] = counts.get(key, 0) + 1
        return counts

    def findings_json(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.findings]


def _analyse(bundle: SkillBundle) -> list[Finding]:
    findings: list[Finding] = []
    usage = Usage()
    parsed = bundle.parsed
    manifest = parsed.manifest
    scan_prose(parsed.body, file="SKILL.md", first_line=parsed.body_line, findings=findings)
    scan_prose(manifest.description, file="SKILL.md", first_line=1, findings=findings)
    for block in parsed.code_blocks:
        if block.language in PYTHON_LANGS:
            scan_python(
                block.code, file="SKILL.md", first_line=block.line, findings=findings, usage=usage, bundled=False
            )
        elif block.language in SHELL_LANGS:
            scan_shell(block.code, file="SKILL.md", first_line=block.line, findings=findings, usage=usage)
        elif block.language in ("", "text", "txt"):
            scan_unlabeled(block.code, file="SKILL.md", first_line=block.line, findings=findings)
    for path, text in bundle.files.items():
        lower = path.lower()
        first = text.split("\n", 1)[0]
        if lower.endswith(".py") or (first.startswith("#!") and "python" in first):
            scan_python(text, file=path, first_line=1, findings=findings, usage=usage, bundled=True)
        elif lower.endswith((".sh", ".bash", ".zsh")) or (first.startswith("#!") and "sh" in first):
            scan_shell(text, file=path, first_line=1, findings=findings, usage=usage)
        scan_prose(text, file=path, first_line=1, findings=findings)
    for path in bundle.skipped:
        findings.append(
            Finding(
                "bundled_binary",
                Severity.MEDIUM,
                path,
                None,
                path,
                "A bundled binary file could not be analysed (and was not imported).",
            )
        )
    scan_install_steps(manifest.install, findings=findings, usage=usage)
    _declared_versus_used(bundle, usage, findings)
    return findings


def _declared_versus_used(bundle: SkillBundle, usage: Usage, findings: list[Finding]) -> None:
    manifest = bundle.parsed.manifest
    declared_env = set(manifest.requires.env) | ({manifest.primary_env} if manifest.primary_env else set())
    declared_bins = set(manifest.requires.bins) | set(manifest.requires.any_bins)
    declared_bins |= {step_bin for step in manifest.install for step_bin in (step.get("bins") or [])}
    env = [(n, w) for n, w in usage.env.items() if n not in declared_env and n not in COMMON_ENV and n.isupper()]
    for name, (file, line) in env[:MAX_UNDECLARED]:
        findings.append(
            Finding(
                "undeclared_env",
                Severity.LOW,
                file,
                line,
                name,
                f"Uses the environment variable {name} without declaring it in requires.env.",
            )
        )
    bins = [(n, w) for n, w in usage.bins.items() if n not in declared_bins and n not in COMMON_BINS]
    bins = [(n, w) for n, w in bins if n.replace("-", "").replace("_", "").replace(".", "").isalnum()]
    for name, (file, line) in bins[:MAX_UNDECLARED]:
        findings.append(
            Finding(
                "undeclared_binary",
                Severity.LOW,
                file,
                line,
                name,
                f"Runs the program {name} without declaring it in requires.bins.",
            )
        )


def scan(bundle: SkillBundle) -> ScanReport:
    started = time.perf_counter()
    try:
        findings = _analyse(bundle)
        findings.sort(key=lambda f: (-f.severity, f.file, f.line or 0, f.rule))
        return ScanReport(verdict_of(findings), findings, duration_ms=(time.perf_counter() - started) * 1000)
    except Exception as exc:  # fail closed: no verdict, the skill stays Untrusted
        log.error("skill scan failed", skill=bundle.parsed.name, exc_info=exc)
        return ScanReport(
            None, [], error=f"{type(exc).__name__}: {exc}"[:500], duration_ms=(time.perf_counter() - started) * 1000
        )
