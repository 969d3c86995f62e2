"""Python code blocks and bundled scripts through the AST (names resolved through imports, not substrings)."""

from __future__ import annotations

import ast
import re

from atom.skills.findings import Finding, Severity, Usage, excerpt

_BLOB = re.compile(r"^(?:[A-Za-z0-9+/]{160,}={0,2}|(?:[0-9a-fA-F]{2}){100,}|(?:\\x[0-9a-fA-F]{2}){60,})$")
_PROCESS = {
    "os.system",
    "os.popen",
    "os.spawnl",
    "os.spawnv",
    "os.spawnlp",
    "os.spawnvp",
    "os.execv",
    "os.execl",
    "os.execvp",
    "os.execlp",
    "os.execve",
    "os.posix_spawn",
    "pty.spawn",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
}
_NETWORK_MODULES = (
    "socket",
    "urllib",
    "http.client",
    "requests",
    "httpx",
    "aiohttp",
    "ftplib",
    "smtplib",
    "telnetlib",
    "paramiko",
    "websocket",
    "websockets",
    "urllib3",
)
_DECODERS = {
    "base64.b64decode",
    "base64.b32decode",
    "base64.b85decode",
    "base64.a85decode",
    "codecs.decode",
    "bytes.fromhex",
    "binascii.unhexlify",
    "binascii.a2b_base64",
    "zlib.decompress",
    "marshal.loads",
}
_DYNAMIC = {"eval", "exec", "compile", "builtins.eval", "builtins.exec"}
_WRITE_MODES = re.compile(r"[wax+]")
_SAFE_PREFIXES = ("/tmp/", "./", "../")  # noqa: S108 — inside the sandbox /tmp is a private tmpfs


class _Visitor(ast.NodeVisitor):
    def __init__(
        self, file: str, first_line: int, lines: list[str], findings: list[Finding], usage: Usage, bundled: bool
    ) -> None:
        self.file, self.first_line, self.lines, self.bundled = file, first_line, lines, bundled
        self.findings, self.usage = findings, usage
        self.aliases: dict[str, str] = {}

    def add(self, rule: str, severity: Severity, node: ast.AST, message: str) -> None:
        lineno = getattr(node, "lineno", 1)
        text = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        self.findings.append(Finding(rule, severity, self.file, self.first_line + lineno - 1, excerpt(text), message))

    def qualified(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            return f"{self.qualified(node.value)}.{node.attr}"
        if isinstance(node, ast.Call):
            return self.qualified(node.func) + "()"
        return ""

    def _network_import(self, module: str, node: ast.AST) -> None:
        if module.split(".")[0] in {m.split(".")[0] for m in _NETWORK_MODULES}:
            # In a bundled script it is code the sandbox would run (and refuse); in a snippet, documentation.
            severity = Severity.MEDIUM if self.bundled else Severity.LOW
            self.add("network", severity, node, f"Uses the network ({module}); the sandbox has none.")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top
            self._network_import(alias.name, node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self._network_import(module, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        if name in _PROCESS:
            shell = any(
                k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords
            )
            severity = Severity.HIGH if shell or name in ("os.system", "os.popen") else Severity.MEDIUM
            self.add("process_exec", severity, node, f"Starts another program ({name}).")
        elif name in _DYNAMIC or name.endswith(("builtins.eval", "builtins.exec")):
            decoded = any(self.qualified(n.func) in _DECODERS for n in ast.walk(node) if isinstance(n, ast.Call))
            blob = any(
                isinstance(n, ast.Constant) and isinstance(n.value, str | bytes) and len(n.value) > 100
                for n in ast.walk(node)
            )
            if decoded or blob:
                self.add("decoded_exec", Severity.CRITICAL, node, f"Runs decoded or embedded code with {name}().")
            elif node.args and not isinstance(node.args[0], ast.Constant):
                self.add("dynamic_code", Severity.HIGH, node, f"Runs code built at run time with {name}().")
            else:
                self.add("dynamic_code", Severity.MEDIUM, node, f"Uses {name}().")
        elif name in ("__import__", "importlib.import_module") and node.args:
            if not isinstance(node.args[0], ast.Constant):
                self.add("dynamic_import", Severity.HIGH, node, "Imports a module whose name is computed at run time.")
        elif name in ("os.getenv", "os.environ.get") and node.args and isinstance(node.args[0], ast.Constant):
            self.usage.use_env(str(node.args[0].value), self.file, self.first_line + node.lineno - 1)
        elif name in ("open", "io.open", "builtins.open", "pathlib.Path.write_text", "shutil.rmtree"):
            self._check_write(name, node)
        elif name.endswith((".write_text", ".write_bytes")) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Call) and target.args and isinstance(target.args[0], ast.Constant):
                self._check_path(str(target.args[0].value), node)
        self.generic_visit(node)

    def _check_write(self, name: str, node: ast.Call) -> None:
        if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
            return
        if name == "shutil.rmtree":
            self._check_path(node.args[0].value, node)
            return
        mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and _WRITE_MODES.search(mode.value):
            self._check_path(node.args[0].value, node)

    def _check_path(self, path: str, node: ast.AST) -> None:
        if (path.startswith(("/", "~")) or ".." in path.split("/")) and not path.startswith(_SAFE_PREFIXES):
            self.add("write_outside_workdir", Severity.HIGH, node, f"Writes outside its work directory ({path:.80}).")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self.qualified(node.value) == "os.environ" and isinstance(node.slice, ast.Constant):
            self.usage.use_env(str(node.slice.value), self.file, self.first_line + node.lineno - 1)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str) and len(value) >= 200 and _BLOB.match(value.replace("\n", "")):
            self.add("encoded_blob", Severity.MEDIUM, node, f"A {len(value)}-character encoded blob (obfuscation?).")


def scan_python(
    source: str, *, file: str, first_line: int, findings: list[Finding], usage: Usage, bundled: bool
) -> None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # Documentation snippets often hold placeholders; a bundled script that does not parse cannot be vetted.
        severity = Severity.MEDIUM if bundled else Severity.INFO
        line = getattr(exc, "lineno", None) or 1
        text = source.split("\n")[line - 1] if source else ""
        findings.append(
            Finding(
                "python_unparsed",
                severity,
                file,
                first_line + line - 1,
                excerpt(text),
                "Python that does not parse could not be analysed.",
            )
        )
        return
    _Visitor(file, first_line, source.split("\n"), findings, usage, bundled).visit(tree)
