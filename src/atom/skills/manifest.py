"""Front matter -> Manifest: the fields Atom understands from both dialects, each fix a warning."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import json5

NAME_MAX = 64
DESCRIPTION_MAX = 1024
_NAME_OK = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# OpenClaw's metadata namespace and the names it had before (still found in published files).
NAMESPACES = ("openclaw", "clawdbot", "clawdis", "moltbot")
KNOWN_FIELDS = frozenset(
    {
        # agentskills.io
        "name",
        "description",
        "license",
        "compatibility",
        "metadata",
        "allowed-tools",
        # OpenClaw / ClawHub
        "homepage",
        "user-invocable",
        "disable-model-invocation",
        "command-dispatch",
        "command-tool",
        "command-arg-mode",
        "version",
        # older Atom
        "packages",
        "node_packages",
        "type",
    }
)
INSTALL_KINDS = frozenset({"brew", "node", "npm", "go", "uv", "pip", "download", "shell", "apt", "cargo"})


@dataclass(frozen=True)
class ParseWarning:
    code: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line}


@dataclass
class Requires:
    bins: list[str] = field(default_factory=list)
    any_bins: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    config: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    name: str
    description: str
    license: str | None = None
    compatibility: str | None = None
    homepage: str | None = None
    version: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    user_invocable: bool | None = None
    disable_model_invocation: bool | None = None
    command_dispatch: str | None = None
    namespace: str | None = None  # which metadata namespace held the OpenClaw fields
    requires: Requires = field(default_factory=Requires)
    primary_env: str | None = None
    os: list[str] = field(default_factory=list)
    always: bool = False
    emoji: str | None = None
    install: list[dict[str, Any]] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)  # older Atom: pip packages
    node_packages: list[str] = field(default_factory=list)  # older Atom: npm packages
    skill_type: str | None = None  # older Atom `type`: prompt | python
    metadata: dict[str, Any] = field(default_factory=dict)
    extra_fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_json_text(value: str, what: str, warnings: list[ParseWarning]) -> Any:
    """A JSON (or JSON5) document written as a YAML string; None (with a warning) when neither parses."""
    try:
        parsed = json.loads(value)
        warnings.append(ParseWarning("json_in_yaml", f"`{what}` was a JSON string inside YAML; it was decoded."))
        return parsed
    except ValueError:
        pass
    try:
        parsed = json5.loads(value)
        warnings.append(
            ParseWarning("json5_in_yaml", f"`{what}` was JSON5 (trailing commas, comments...) inside YAML; decoded.")
        )
        return parsed
    except (ValueError, RecursionError):
        warnings.append(ParseWarning("json_unparseable", f"`{what}` looks like JSON but does not parse; ignored."))
        return None


def slugify(value: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    return slug[:NAME_MAX].strip("-")


def _text(value: Any, what: str, warnings: list[ParseWarning]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float, bool)):
        warnings.append(ParseWarning("coerced_to_text", f"`{what}` was {type(value).__name__}; read as text."))
        return str(value)
    warnings.append(ParseWarning("wrong_type", f"`{what}` should be text, got {type(value).__name__}; ignored."))
    return None


def _bool(value: Any, what: str, warnings: list[ParseWarning]) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
        warnings.append(ParseWarning("coerced_to_bool", f"`{what}` was the text {value!r}; read as a boolean."))
        return value.strip().lower() in ("true", "yes")
    warnings.append(ParseWarning("wrong_type", f"`{what}` should be a boolean, got {value!r:.40}; ignored."))
    return None


def _list(value: Any, what: str, warnings: list[ParseWarning], *, split: bool = True) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        if split:
            parts = [p for p in re.split(r"[\s,]+", value.strip()) if p]
            if len(parts) > 1 or (parts and parts[0] != value.strip()):
                warnings.append(ParseWarning("split_to_list", f"`{what}` was one string; split into a list."))
            return parts
        return [value]
    if isinstance(value, list):
        items = [str(v) for v in value if isinstance(v, (str, int, float))]
        if len(items) != len(value):
            warnings.append(ParseWarning("wrong_type", f"`{what}` had entries that are not text; they were dropped."))
        return items
    warnings.append(ParseWarning("wrong_type", f"`{what}` should be a list, got {type(value).__name__}; ignored."))
    return []


def _name(raw: Any, folder_name: str, warnings: list[ParseWarning]) -> str:
    text = _text(raw, "name", warnings)
    if not text:
        name = slugify(folder_name) or "skill"
        warnings.append(ParseWarning("name_from_folder", f"No `name`; the folder name {name!r} is used."))
        return name
    if _NAME_OK.match(text) and "--" not in text:
        return text
    name = slugify(text) or slugify(folder_name) or "skill"
    warnings.append(ParseWarning("name_normalized", f"`name` {text!r:.80} is not a lowercase slug; using {name!r}."))
    return name


def _description(raw: Any, fallback: str, warnings: list[ParseWarning]) -> str:
    text = _text(raw, "description", warnings)
    if not text:
        text = fallback.strip()
        warnings.append(
            ParseWarning("description_from_body", "No `description`; the body's first paragraph is used.")
            if text
            else ParseWarning("description_missing", "No `description` and no paragraph to take one from.")
        )
    text = " ".join(text.split())
    if len(text) > DESCRIPTION_MAX:
        warnings.append(ParseWarning("description_truncated", f"`description` cut to {DESCRIPTION_MAX} characters."))
        text = text[:DESCRIPTION_MAX]
    return text


def _metadata(raw: Any, warnings: list[ParseWarning]) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str) and raw.strip().startswith(("{", "[")):
        raw = parse_json_text(raw.strip(), "metadata", warnings)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        warnings.append(ParseWarning("wrong_type", f"`metadata` should be a mapping, got {type(raw).__name__}."))
        return {}
    return {str(k): v for k, v in raw.items()}


def _install_steps(raw: Any, warnings: list[ParseWarning]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        raw = [raw]
        warnings.append(ParseWarning("split_to_list", "`install` was one step, not a list; read as a list."))
    if not isinstance(raw, list):
        warnings.append(ParseWarning("wrong_type", "`install` should be a list of steps; ignored."))
        return []
    steps: list[dict[str, Any]] = []
    for step in raw:
        if not isinstance(step, dict):
            warnings.append(ParseWarning("wrong_type", f"An install step is not a mapping ({step!r:.40}); dropped."))
            continue
        kind = str(step.get("kind", ""))
        if kind not in INSTALL_KINDS:
            warnings.append(ParseWarning("install_kind_unknown", f"Install step kind {kind!r:.30} is not known."))
        steps.append({str(k): v for k, v in step.items()})
    return steps


def _openclaw(manifest: Manifest, metadata: dict[str, Any], warnings: list[ParseWarning]) -> None:
    found = [ns for ns in NAMESPACES if ns in metadata]
    if not found:
        return
    ns = found[0]
    if len(found) > 1:
        warnings.append(ParseWarning("metadata_namespaces", f"Several namespaces {found}; {ns!r} is used."))
    if ns != "openclaw":
        warnings.append(
            ParseWarning("metadata_legacy_namespace", f"`metadata.{ns}` is a legacy name of `metadata.openclaw`.")
        )
    block = metadata[ns]
    if isinstance(block, str):
        block = parse_json_text(block, f"metadata.{ns}", warnings)
    if not isinstance(block, dict):
        warnings.append(ParseWarning("wrong_type", f"`metadata.{ns}` should be a mapping; ignored."))
        return
    manifest.namespace = ns
    requires = block.get("requires") or {}
    if not isinstance(requires, dict):
        warnings.append(ParseWarning("wrong_type", "`requires` should be a mapping; ignored."))
        requires = {}
    manifest.requires = Requires(
        bins=_list(requires.get("bins"), "requires.bins", warnings),
        any_bins=_list(requires.get("anyBins"), "requires.anyBins", warnings),
        env=_list(requires.get("env"), "requires.env", warnings),
        config=_list(requires.get("config"), "requires.config", warnings),
    )
    manifest.primary_env = _text(block.get("primaryEnv"), "primaryEnv", warnings)
    manifest.os = _list(block.get("os"), "os", warnings)
    manifest.always = bool(_bool(block.get("always"), "always", warnings))
    manifest.emoji = _text(block.get("emoji"), "emoji", warnings)
    manifest.install = _install_steps(block.get("install"), warnings)
    if manifest.skill_type is None and isinstance(block.get("type"), str):
        manifest.skill_type = str(block["type"])


def build_manifest(
    front_matter: dict[str, Any], *, folder_name: str, description_fallback: str, warnings: list[ParseWarning]
) -> Manifest:
    fm = front_matter
    metadata = _metadata(fm.get("metadata"), warnings)
    manifest = Manifest(
        name=_name(fm.get("name"), folder_name, warnings),
        description=_description(fm.get("description"), description_fallback, warnings),
        license=_text(fm.get("license"), "license", warnings),
        compatibility=_text(fm.get("compatibility"), "compatibility", warnings),
        homepage=_text(fm.get("homepage"), "homepage", warnings),
        version=_text(fm.get("version"), "version", warnings),
        allowed_tools=_list(fm.get("allowed-tools"), "allowed-tools", warnings),
        user_invocable=_bool(fm.get("user-invocable"), "user-invocable", warnings),
        disable_model_invocation=_bool(fm.get("disable-model-invocation"), "disable-model-invocation", warnings),
        command_dispatch=_text(fm.get("command-dispatch"), "command-dispatch", warnings),
        packages=_list(fm.get("packages"), "packages", warnings),
        node_packages=_list(fm.get("node_packages"), "node_packages", warnings),
        skill_type=_text(fm.get("type"), "type", warnings),
        metadata=json.loads(json.dumps(metadata, default=str)),
    )
    _openclaw(manifest, metadata, warnings)
    if manifest.skill_type is not None and manifest.skill_type not in ("prompt", "python"):
        warnings.append(ParseWarning("type_unknown", f"`type` {manifest.skill_type!r:.30} is not prompt or python."))
    manifest.extra_fields = sorted(k for k in fm if k not in KNOWN_FIELDS)
    if manifest.extra_fields:
        warnings.append(
            ParseWarning("unknown_fields", f"Fields Atom does not use were kept as-is: {manifest.extra_fields[:10]}.")
        )
    return manifest
