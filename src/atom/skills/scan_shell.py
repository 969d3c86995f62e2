"""Shell blocks, bundled shell scripts and install steps through a real shell parser (bashlex)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from atom.skills.findings import URL, Finding, Severity, Usage, excerpt, shady_url

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish"})
INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node", "php", "pwsh", "powershell", "iex"}
FETCHERS = frozenset({"curl", "wget", "fetch", "iwr", "invoke-webrequest", "aria2c"})
WRAPPERS = frozenset({"sudo", "env", "nohup", "exec", "time", "command", "doas", "xargs"})
_PROMPT = re.compile(r"^\s*(?:\$|\u276f)\s+")  # a terminal prompt before the command
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*")
_REVERSE_SHELL = re.compile(r"/dev/(?:tcp|udp)/|\bnc\b[^\n|]*\s-e\s|\bmkfifo\b[^\n]*\bnc\b", re.I)


@dataclass
class _Walk:
    file: str
    first_line: int
    source: str
    findings: list[Finding]
    usage: Usage
    downloaded: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)

    def line_of(self, pos: int) -> int:
        return self.first_line + self.source.count("\n", 0, max(0, pos))

    def add(self, rule: str, severity: Severity, pos: int, message: str) -> None:
        line = self.line_of(pos)
        text = self.source.split("\n")[line - self.first_line] if self.source else ""
        self.findings.append(Finding(rule, severity, self.file, line, excerpt(text), message))


def _words(node: Any) -> list[tuple[str, int]]:
    return [(p.word, p.pos[0]) for p in getattr(node, "parts", []) if p.kind == "word"]


def _command_name(words: list[tuple[str, int]]) -> tuple[str, list[str]]:
    names = [w for w, _ in words if "=" not in w.split("/")[0] or w.startswith("-")]
    while names and names[0].rsplit("/", 1)[-1] in WRAPPERS:
        names = names[1:]
        while names and names[0].startswith("-"):
            names = names[1:]
    if not names:
        return "", []
    return names[0].rsplit("/", 1)[-1].lower(), names[1:]


def _check_command(node: Any, walk: _Walk) -> tuple[str, list[str]]:
    words = _words(node)
    name, args = _command_name(words)
    pos = node.pos[0]
    for word, _ in words:
        if "=" in word and _ENV_NAME.fullmatch(word.split("=", 1)[0]):
            walk.assigned.add(word.split("=", 1)[0])
    if not name:
        return name, args
    if not name.startswith(("$", "-", ".")):
        walk.usage.use_bin(name, walk.file, walk.line_of(pos))
    if name in ("export", "read", "declare", "local", "set"):
        walk.assigned.update(a.split("=", 1)[0] for a in args if _ENV_NAME.fullmatch(a.split("=", 1)[0]))
    if name in FETCHERS:
        for arg in args:
            for url in URL.findall(arg):
                reason = shady_url(url)
                if reason:
                    walk.add("download_shady_host", Severity.HIGH, pos, f"Downloads from {reason}.")
        for flag, value in zip(args, [*args[1:], ""], strict=False):
            if flag in ("-o", "-O", "--output", "--output-document") and value and value != "-":
                walk.downloaded.add(value.rsplit("/", 1)[-1])
        for arg in args:
            if URL.fullmatch(arg) and ("-O" in args or "-o" not in args):
                walk.downloaded.add(arg.rstrip("/").rsplit("/", 1)[-1])
    if name == "chmod" and any("x" in a for a in args if a.startswith("+") or a[:1].isdigit()):
        targets = {a.rsplit("/", 1)[-1] for a in args if not a.startswith(("+", "-")) and not a[:1].isdigit()}
        if targets & walk.downloaded:
            walk.add("chmod_downloaded", Severity.HIGH, pos, "Makes a file it just downloaded executable.")
    if name in ("unzip", "7z", "7za", "unrar") and any(
        (a.startswith(("-P", "-p")) and len(a) > 2) or a == "-P" for a in args
    ):
        walk.add("password_archive", Severity.CRITICAL, pos, "Extracts a password-protected archive.")
    if (
        name == "rm"
        and any(a.startswith("-") and "r" in a for a in args)
        and any(a in ("/", "/*", "~", "~/", "$HOME", "/etc", "/usr") for a in args)
    ):
        walk.add("destructive_delete", Severity.HIGH, pos, "Deletes the whole system or home directory.")
    if name in SHELLS and any(a in ("-c",) for a in args):
        inner = " ".join(args[args.index("-c") + 1 :])
        if re.search(r"\b(?:curl|wget)\b", inner):
            walk.add("pipe_to_shell", _fetch_severity(inner), pos, "Runs a downloaded script through a shell.")
    return name, args


def _reads_stdin(args: list[str]) -> bool:
    """Does an interpreter given these arguments run the script it reads on stdin? (`python3 -m json.tool` does not.)"""
    for arg in args:
        if arg == "--" or arg == "-":
            return True
        if arg in ("-c", "-m", "-e", "-E", "-r", "--version", "-V", "--help", "-h"):
            return False
        if not arg.startswith("-"):
            return False  # a script file: stdin is its input, not its code
    return True


def _fetch_severity(text: str) -> Severity:
    return Severity.CRITICAL if any(shady_url(u) for u in URL.findall(text)) else Severity.HIGH


def _visit(node: Any, walk: _Walk) -> None:
    kind = node.kind
    if kind == "pipeline":
        commands = [p for p in node.parts if p.kind == "command"]
        names = [_check_command(c, walk) for c in commands]
        for index, (name, args) in enumerate(names):
            if index == 0:
                continue
            upstream = [n for n, _ in names[:index]]
            text = walk.source[node.pos[0] : node.pos[1]]
            if name in INTERPRETERS and _reads_stdin(args) and any(n in FETCHERS for n in upstream):
                walk.add(
                    "pipe_to_shell", _fetch_severity(text), node.pos[0], f"Pipes a download straight into `{name}`."
                )
            elif (
                name in INTERPRETERS and _reads_stdin(args) and any(n in ("base64", "xxd", "openssl") for n in upstream)
            ):
                walk.add("decoded_exec", Severity.CRITICAL, node.pos[0], "Decodes a blob and runs it.")
        for command in commands:
            _visit_children(command, walk)
        return
    if kind == "command":
        name, _ = _check_command(node, walk)
        for part in node.parts:
            if part.kind == "word":
                for sub in getattr(part, "parts", []):
                    if sub.kind == "processsubstitution" and name in INTERPRETERS:
                        inner = walk.source[sub.pos[0] : sub.pos[1]]
                        if re.search(r"\b(?:curl|wget)\b", inner):
                            walk.add(
                                "pipe_to_shell",
                                _fetch_severity(inner),
                                sub.pos[0],
                                "Runs a downloaded script via process substitution.",
                            )
        _visit_children(node, walk)
        return
    if kind == "parameter":
        match = _ENV_NAME.match(node.value)
        if match:
            walk.usage.use_env(match.group(0), walk.file, walk.line_of(node.pos[0]))
        return
    if kind == "for":
        walk.assigned.update(p.word for p in node.parts[1:2] if p.kind == "word")
    _visit_children(node, walk)


def _visit_children(node: Any, walk: _Walk) -> None:
    for attr in ("parts", "list"):
        for child in getattr(node, attr, None) or []:
            if child.kind != "command" or node.kind != "pipeline":
                _visit(child, walk)
    command = getattr(node, "command", None)
    if command is not None:
        _visit(command, walk)


def _regex_fallback(line: str, number: int, walk: _Walk) -> None:
    """A line bashlex cannot parse (zsh-isms, templates) still gets the dangerous-pattern rules."""
    if re.search(r"\b(?:curl|wget)\b[^|]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b", line):
        walk.add("pipe_to_shell", _fetch_severity(line), _pos_of_line(walk, number), "Pipes a download into a shell.")
    for url in URL.findall(line):
        if re.search(r"\b(?:curl|wget)\b", line) and shady_url(url):
            walk.add(
                "download_shady_host", Severity.HIGH, _pos_of_line(walk, number), f"Downloads from {url_host_of(url)}."
            )


def url_host_of(url: str) -> str:
    return shady_url(url) or url


def _pos_of_line(walk: _Walk, number: int) -> int:
    lines = walk.source.split("\n")
    return sum(len(line) + 1 for line in lines[:number])


def scan_shell(source: str, *, file: str, first_line: int, findings: list[Finding], usage: Usage) -> None:
    import bashlex  # builds its parser tables on import (~0.5 s): only when a shell block is scanned

    cleaned = "\n".join(_PROMPT.sub("", line) for line in source.split("\n"))
    walk = _Walk(file=file, first_line=first_line, source=cleaned, findings=findings, usage=usage)
    for match in _REVERSE_SHELL.finditer(cleaned):
        walk.add("reverse_shell", Severity.CRITICAL, match.start(), "Opens a reverse shell to a remote host.")
    try:
        trees = bashlex.parse(cleaned)
    except Exception:  # bashlex raises several error types; parse line by line instead
        trees = None
    if trees is not None:
        for tree in trees:
            _visit(tree, walk)
    else:
        for number, line in enumerate(cleaned.split("\n")):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                for tree in bashlex.parse(line):
                    _visit(
                        tree, _Walk(file, first_line + number, line, findings, usage, walk.downloaded, walk.assigned)
                    )
            except Exception:  # not shell at all (output, templates): the dangerous-pattern rules only
                _regex_fallback(line, number, walk)
    for name in list(usage.env):
        if name in walk.assigned and usage.env[name][0] == file:
            usage.env.pop(name)


def scan_unlabeled(source: str, *, file: str, first_line: int, findings: list[Finding]) -> None:
    """A fence without a language is mostly output or diagrams: only the dangerous-pattern rules apply."""
    walk = _Walk(file=file, first_line=first_line, source=source, findings=findings, usage=Usage())
    for match in _REVERSE_SHELL.finditer(source):
        walk.add("reverse_shell", Severity.CRITICAL, match.start(), "Opens a reverse shell to a remote host.")
    for number, line in enumerate(source.split("\n")):
        _regex_fallback(line, number, walk)


def scan_install_steps(steps: list[dict[str, Any]], *, findings: list[Finding], usage: Usage) -> None:
    for index, step in enumerate(steps):
        kind = str(step.get("kind", ""))
        where = f"SKILL.md#install[{index}]"
        for bin_name in step.get("bins") or []:
            if isinstance(bin_name, str):
                usage.bins.pop(bin_name, None)
        url = step.get("url") or step.get("href")
        if isinstance(url, str):
            reason = shady_url(url)
            if reason:
                findings.append(
                    Finding(
                        "install_shady_download",
                        Severity.CRITICAL,
                        where,
                        None,
                        excerpt(url),
                        f"An install step downloads from {reason}.",
                    )
                )
            elif kind == "download":
                findings.append(
                    Finding(
                        "install_download",
                        Severity.MEDIUM,
                        where,
                        None,
                        excerpt(url),
                        "An install step downloads a file to run; check where it comes from.",
                    )
                )
        command = step.get("command") or step.get("run") or step.get("script")
        if isinstance(command, str):
            scan_shell(command, file=where, first_line=1, findings=findings, usage=usage)
        package = step.get("package") or step.get("formula") or step.get("module")
        if package is not None:
            findings.append(
                Finding(
                    "install_package",
                    Severity.INFO,
                    where,
                    None,
                    excerpt(f"{kind} {package}"),
                    f"Installs the {kind or 'unknown'} package {package!s:.80}.",
                )
            )
