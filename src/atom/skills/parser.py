"""SKILL.md -> ParsedSkill: lenient (a malformed file is a skill with warnings), never silent.

Both dialects are read: agentskills.io (`name`, `description`, `license`, `compatibility`,
`metadata`, `allowed-tools`) and OpenClaw/ClawHub (`homepage`, `user-invocable`, `version`,
`metadata.openclaw` and its legacy names), plus the older Atom fields (`packages`,
`node_packages`, `type`). Every auto-fix is recorded as a `ParseWarning`; only input that is not
text at all (binary, wrong encoding) is refused with `InvalidInput`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from atom.errors import InvalidInput
from atom.skills.manifest import Manifest, ParseWarning, build_manifest

MAX_SKILL_MD_BYTES = 1024 * 1024
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)[^`]*$")
_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_.-]*):(?P<rest>.*)$")


@dataclass(frozen=True)
class CodeBlock:
    language: str  # lower-cased info string: "python", "bash", "" ...
    code: str
    line: int  # 1-based line of the first code line in SKILL.md


@dataclass
class ParsedSkill:
    manifest: Manifest
    body: str
    front_matter: dict[str, Any]
    code_blocks: list[CodeBlock]
    warnings: list[ParseWarning] = field(default_factory=list)
    body_line: int = 1  # line of SKILL.md where the body starts

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def description(self) -> str:
        return self.manifest.description


def decode(raw: bytes, warnings: list[ParseWarning]) -> str:
    """Bytes -> text. BOM and CRLF are fixed with a warning; binary or non-UTF-8 input is refused."""
    if len(raw) > MAX_SKILL_MD_BYTES:
        raise InvalidInput(f"SKILL.md is {len(raw)} bytes; the limit is {MAX_SKILL_MD_BYTES}.", code="SKILL_TOO_LARGE")
    if b"\x00" in raw:
        raise InvalidInput("SKILL.md is binary (it contains NUL bytes), not text.", code="SKILL_BINARY")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        warnings.append(ParseWarning("bom_removed", "A UTF-8 byte-order mark was removed."))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"SKILL.md is not UTF-8 text (byte {exc.start} is invalid).", code="SKILL_NOT_UTF8") from exc
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > max(8, len(text) // 100):
        raise InvalidInput("SKILL.md is binary (too many control characters), not text.", code="SKILL_BINARY")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        warnings.append(ParseWarning("line_endings_normalized", "CRLF (or CR) line endings were converted to LF."))
    return text


def split_front_matter(text: str, warnings: list[ParseWarning]) -> tuple[str | None, str, int]:
    """(front matter text or None, body, body's first line number)."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].strip() != "---":
        warnings.append(ParseWarning("no_front_matter", "The file has no YAML front matter."))
        return None, text, 1
    if first:
        warnings.append(ParseWarning("leading_blank_lines", "Blank lines before the front matter were ignored."))
    for end in range(first + 1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            return "\n".join(lines[first + 1 : end]), "\n".join(lines[end + 1 :]), end + 2
    warnings.append(
        ParseWarning("front_matter_unclosed", "The front matter is never closed by `---`; read as body.", first + 1)
    )
    return None, "\n".join(lines[first + 1 :]), first + 2


def _quote_unquoted_colons(source: str) -> tuple[str, list[int]]:
    """Quote top-level scalar values that contain `: ` (a YAML error authors make in descriptions)."""
    fixed: list[str] = []
    changed: list[int] = []
    for number, line in enumerate(source.split("\n"), start=1):
        match = _TOP_KEY.match(line)
        rest = match.group("rest").strip() if match else ""
        if match and ": " in rest and rest[0] not in "'\"{[|>&*!":
            fixed.append(f"{match.group('key')}: {json.dumps(rest, ensure_ascii=False)}")
            changed.append(number)
        else:
            fixed.append(line)
    return "\n".join(fixed), changed


def _line_fallback(source: str) -> dict[str, Any]:
    """Last resort for YAML that does not parse: top-level `key: value` lines as strings."""
    result: dict[str, Any] = {}
    for line in source.split("\n"):
        match = _TOP_KEY.match(line)
        if match and match.group("rest").strip():
            value = match.group("rest").strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            result[match.group("key")] = value
    return result


def _safe_load(source: str) -> Any:
    # A YAML alias bomb is bounded by the 1 MiB input limit and PyYAML's non-expanding aliases.
    return yaml.safe_load(source)


def load_front_matter(source: str, warnings: list[ParseWarning]) -> dict[str, Any]:
    try:
        data = _safe_load(source)
    except yaml.YAMLError as first_error:
        repaired, lines = _quote_unquoted_colons(source)
        data = None
        if lines:
            try:
                data = _safe_load(repaired)
                warnings.append(
                    ParseWarning(
                        "yaml_unquoted_colon_quoted",
                        f"Values containing `: ` were quoted to make the YAML parse (lines {lines}).",
                        lines[0] + 1,
                    )
                )
            except yaml.YAMLError:
                data = None
        if data is None:
            mark = getattr(first_error, "problem_mark", None)
            data = _line_fallback(source)
            warnings.append(
                ParseWarning(
                    "yaml_unparseable",
                    f"The front matter is not valid YAML ({getattr(first_error, 'problem', 'error')}); "
                    f"top-level `key: value` lines were read as text ({len(data)} keys).",
                    (mark.line + 2) if mark is not None else None,
                )
            )
    if data is None:
        warnings.append(ParseWarning("front_matter_empty", "The front matter is empty."))
        return {}
    if not isinstance(data, dict):
        warnings.append(
            ParseWarning("front_matter_not_mapping", f"The front matter is a {type(data).__name__}, not a mapping.")
        )
        return {}
    return {str(k): v for k, v in data.items()}


def extract_code_blocks(body: str, first_line: int) -> list[CodeBlock]:
    blocks: list[CodeBlock] = []
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").lower()
        start = i + 1
        j = start
        while j < len(lines) and not (lines[j].strip().startswith(fence) and set(lines[j].strip()) == {fence[0]}):
            j += 1
        blocks.append(CodeBlock(language=info.strip("{}."), code="\n".join(lines[start:j]), line=first_line + start))
        i = j + 1
    return blocks


def first_paragraph(body: str) -> str:
    """The first prose paragraph (no headings, fences, images, tables or lists)."""
    paragraph: list[str] = []
    in_fence = False
    for line in body.split("\n"):
        stripped = line.strip()
        if _FENCE.match(line):
            in_fence = not in_fence
            if paragraph:
                break
            continue
        if in_fence:
            continue
        if not stripped:
            if paragraph:
                break
            continue
        if stripped.startswith(("#", "![", "|", "<", "---", "***", ">")):
            if paragraph:
                break
            continue
        paragraph.append(stripped)
    return " ".join(paragraph)


def parse_skill_md(raw: bytes | str, *, folder_name: str) -> ParsedSkill:
    """Parse one SKILL.md. `folder_name` names the skill when the file does not."""
    warnings: list[ParseWarning] = []
    text = decode(raw.encode("utf-8") if isinstance(raw, str) else raw, warnings)
    source, body, body_line = split_front_matter(text, warnings)
    front_matter = load_front_matter(source, warnings) if source is not None else {}
    manifest = build_manifest(
        front_matter,
        folder_name=folder_name,
        description_fallback=first_paragraph(body),
        warnings=warnings,
    )
    return ParsedSkill(
        manifest=manifest,
        body=body.rstrip("\n"),
        front_matter=front_matter,
        code_blocks=extract_code_blocks(body, body_line),
        warnings=warnings,
        body_line=body_line,
    )
