"""Reading a definition's text (YAML or JSON) into plain data, bounded before anything is validated.

The text is outside input, so reading it must stay cheap whatever it holds: its size is bounded
(`MAX_SOURCE_BYTES`), YAML aliases (`*name`) are refused (they let a few hundred bytes expand into
millions of nodes, or into a structure that contains itself), collections may nest at most
`MAX_DEPTH` levels (deeper nesting exhausts the recursion of every reader after the parser) and a
document holds at most `MAX_NODES` values (each costs pure-Python work in every later pass). The
YAML is scanned event by event first (libyaml when present), so a refused document costs one pass
of the C parser. A problem here raises `MalformedDefinition`: the text is not a definition at all,
as opposed to a definition with problems (`DefinitionError`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import yaml

from atom.errors import InvalidInput

MAX_SOURCE_BYTES = 256 * 1024
MAX_DEPTH = 32  # collections inside collections; real definitions use under ten
MAX_NODES = 10_000  # keys, values and items; 99 steps of a dozen fields each use about 2,000
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_VALUES = (yaml.ScalarEvent, *_OPENS)


class DefinitionError(InvalidInput):
    """A definition that cannot be stored; `details["errors"]` lists every problem with line and field."""

    default_code = "INVALID_WORKFLOW"

    def __init__(self, problems: list[dict[str, Any]]):
        first = problems[0]
        where = f"line {first['line']}, " if first.get("line") else ""
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"{where}{first['field'] or '(document)'}: {first['message']}{more}", details={"errors": problems}
        )
        self.problems = problems


class MalformedDefinition(DefinitionError):
    """The text cannot be read as a definition: not YAML/JSON, not a mapping, too large, too deep, aliases."""

    default_code = "MALFORMED_WORKFLOW"

    def __init__(self, message: str, *, line: int | None = None, kind: str = "syntax"):
        super().__init__([{"field": "", "line": line, "message": message, "type": kind}])


def detect_format(text: str, fmt: str | None = None) -> Literal["yaml", "json"]:
    if fmt == "yaml":
        return "yaml"
    if fmt == "json":
        return "json"
    return "json" if text.lstrip().startswith("{") else "yaml"


def load(text: str, fmt: str | None) -> tuple[dict[str, Any], yaml.Node | None]:
    """The document as plain data (keys as written) and its YAML node tree (for line numbers)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise MalformedDefinition(f"the definition is {size} bytes; the limit is {MAX_SOURCE_BYTES}", kind="size")
    if detect_format(text, fmt) == "json":
        data, node = _load_json(text)
    else:
        data, node = _load_yaml(text)
    data = _normalise_keys(data)
    if not isinstance(data, dict):
        raise MalformedDefinition(
            f"the document must be a mapping (name, steps, ...), not {_kind(data)}", line=1, kind="document"
        )
    return data, node


def _load_json(text: str) -> tuple[Any, yaml.Node | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedDefinition(f"invalid JSON: {exc.msg}", line=exc.lineno) from exc
    except RecursionError as exc:
        raise MalformedDefinition(f"nested more than {MAX_DEPTH} levels deep", kind="depth") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise MalformedDefinition(f"invalid JSON: {exc}") from exc
    _check_depth(data)
    try:
        _scan_yaml(text)  # JSON is YAML: its node marks give line numbers
        node = _compose(text)
    except (yaml.YAMLError, MalformedDefinition, RecursionError, ValueError):
        node = None
    return data, node


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    try:
        _scan_yaml(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise MalformedDefinition(f"invalid YAML: {exc.problem or exc}", line=line) from exc
    except yaml.YAMLError as exc:
        raise MalformedDefinition(f"invalid YAML: {exc}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar its tag cannot hold: a date, a huge integer
        raise MalformedDefinition(f"invalid YAML value: {exc}") from exc
    return data, node


def _scan_yaml(text: str) -> None:
    """One pass over the parser's events: refuse aliases, nesting beyond `MAX_DEPTH`, more than `MAX_NODES`."""
    loader = _Loader(text)
    depth = 0
    events = 0
    try:
        while loader.check_event():
            event = loader.get_event()  # type: ignore[no-untyped-call]
            events += isinstance(event, _VALUES)
            if events > MAX_NODES:
                raise MalformedDefinition(
                    f"more than {MAX_NODES} values in one definition", line=_line(event), kind="size"
                )
            if isinstance(event, yaml.AliasEvent):
                raise MalformedDefinition(
                    f"YAML aliases are not allowed (*{event.anchor}): write the value out where it is used",
                    line=_line(event),
                    kind="alias",
                )
            if isinstance(event, _OPENS):
                depth += 1
                if depth > MAX_DEPTH:
                    raise MalformedDefinition(
                        f"nested more than {MAX_DEPTH} levels deep", line=_line(event), kind="depth"
                    )
            elif isinstance(event, _CLOSES):
                depth -= 1
    finally:
        loader.dispose()


def _line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else None


def _compose(text: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _check_depth(data: Any) -> None:
    """Depth and node count, iteratively, so a deep document cannot exhaust the recursion of the check."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise MalformedDefinition(f"more than {MAX_NODES} values in one definition", kind="size")
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth + 1 > MAX_DEPTH:
            raise MalformedDefinition(f"nested more than {MAX_DEPTH} levels deep", kind="depth")
        stack.extend((child, depth + 1) for child in children)


def _kind(data: Any) -> str:
    if data is None:
        return "an empty document"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    return f"a value of type {type(data).__name__}"


def _normalise_keys(data: Any) -> Any:
    """YAML 1.1 reads `on:`/`yes:` keys as booleans and dates as date objects; keep what the author wrote."""
    if isinstance(data, dict):
        return {(k if isinstance(k, str) else str(k).lower()): _normalise_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_normalise_keys(v) for v in data]
    if isinstance(data, datetime):
        return data.isoformat()
    if hasattr(data, "isoformat") and not isinstance(data, str | int | float | bool):
        return data.isoformat()
    return data


class Locator:
    """Maps a pydantic error location to the YAML/JSON node's line, using the composer's node marks."""

    def __init__(self, root: yaml.Node | None, data: Any):
        self.root = root
        self.data = data

    def find(self, loc: Iterable[str | int]) -> tuple[str, int | None]:
        node = self.root
        data = self.data
        parts: list[str] = []
        line = node.start_mark.line + 1 if node is not None else None
        for key in loc:
            child, child_data = self._child(node, data, key)
            if child is None and child_data is None:
                continue  # a discriminator tag or a model-level location: not a key in the document
            if isinstance(key, int):
                label = f"[{key}]"
                if isinstance(child_data, dict) and isinstance(child_data.get("id"), str):
                    label += f"({child_data['id']})"
                parts.append(label)
            else:
                parts.append(("." if parts else "") + str(key))
            node, data = child, child_data
            if node is not None:
                line = node.start_mark.line + 1
        return "".join(parts), line

    @staticmethod
    def _child(node: yaml.Node | None, data: Any, key: str | int) -> tuple[yaml.Node | None, Any]:
        child_data: Any
        if isinstance(data, dict) and isinstance(key, str):
            if key not in data:
                return None, None
            child_data = data[key]
        elif isinstance(data, list) and isinstance(key, int):
            if not 0 <= key < len(data):
                return None, None
            child_data = data[key]
        else:
            return None, None
        child_node: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                    child_node = value_node
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child_node = node.value[key]
        return child_node, child_data if child_data is not None else {}
