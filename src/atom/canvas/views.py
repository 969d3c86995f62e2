"""What a canvas looks like to each reader: the dashboard's render-ready view (chart geometry, sheet values,
code tokens, form fields), the agent's reading, and a one-line summary (`atom-os chat`, tool results)."""

from __future__ import annotations

from typing import Any

from pygments import lex
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from atom.canvas import charts, sheets
from atom.canvas.models import Canvas, CanvasAudit, CanvasKind, CanvasParticipant

MAX_TOKENS = 50_000
# Pygments token types -> the few classes the stylesheet colours.
_TOKEN_CLASSES = (
    ("Token.Comment", "tk-comment"),
    ("Token.Keyword", "tk-keyword"),
    ("Token.Literal.String", "tk-string"),
    ("Token.Literal.Number", "tk-number"),
    ("Token.Name.Function", "tk-function"),
    ("Token.Name.Class", "tk-function"),
    ("Token.Name.Builtin", "tk-builtin"),
    ("Token.Operator", "tk-operator"),
)


def _token_class(kind: str) -> str:
    for prefix, css in _TOKEN_CLASSES:
        if kind.startswith(prefix):
            return css
    return ""


def code_tokens(language: str, code: str) -> list[list[str]]:
    """[[class, text], ...] with neighbouring pieces of the same class joined; unknown language: plain text."""
    try:
        lexer = get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return [["", code]]
    out: list[list[str]] = []
    for kind, text in lex(code, lexer):
        css = _token_class(str(kind))
        if out and out[-1][0] == css:
            out[-1][1] += text
        elif len(out) < MAX_TOKENS:
            out.append([css, text])
        else:
            out[-1][1] += text
    return out


def form_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    fields = []
    for name, field in schema.get("properties", {}).items():
        fields.append(
            {
                "name": name,
                "type": field.get("type"),
                "label": field.get("title") or name,
                "description": field.get("description", ""),
                "required": name in required,
                "enum": field.get("enum"),
                "format": field.get("format"),
                "minimum": field.get("minimum"),
                "maximum": field.get("maximum"),
                "max_length": field.get("maxLength"),
                "default": field.get("default"),
            }
        )
    return fields


def rendered(canvas: Canvas) -> dict[str, Any]:
    """The kind-specific part the browser draws without interpreting anything."""
    content = canvas.content
    kind = CanvasKind(canvas.kind)
    if kind is CanvasKind.CHART:
        return {"chart": charts.geometry(content)}
    if kind is CanvasKind.SHEET:
        return {"columns": content.get("columns", []), "values": sheets.Sheet(content.get("rows", [])).values()}
    if kind is CanvasKind.CODE:
        return {"tokens": code_tokens(content.get("language", "text"), content.get("code", ""))}
    if kind is CanvasKind.FORM:
        return {"fields": form_fields(content["schema"])}
    return {}


def dashboard(
    canvas: Canvas,
    members: list[CanvasParticipant],
    history: list[CanvasAudit],
    names: dict[str, str],
    people: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The whole state the canvas page and the chat panel show; sent again whole on every change. `names`
    are agents' names by id, `people` usernames by user id: whoever acted is shown by name."""
    people = people or {}
    kind = CanvasKind(canvas.kind)
    content = canvas.content
    if kind is CanvasKind.CHART:  # the browser draws the geometry; the raw series are not needed twice
        content = {k: v for k, v in content.items() if k not in ("series", "labels")}
    if kind is CanvasKind.SHEET:
        content = {"rows": canvas.content.get("rows", [])}
    if kind is CanvasKind.CODE:
        content = {"language": canvas.content.get("language"), "filename": canvas.content.get("filename")}

    def who(actor: str | None) -> str:
        if not actor:
            return ""
        kind_, _, ident = actor.partition(":")
        if kind_ == "user":
            return f"{people.get(ident, ident)} (person)"
        return names.get(ident, ident)

    return {
        "id": canvas.id,
        "kind": canvas.kind,
        "title": canvas.title,
        "status": canvas.status,
        "version": canvas.version,
        "mode": canvas.mode,
        "lock_holder": who(canvas.lock_holder) if canvas.lock_holder else None,
        "turn": names.get(canvas.turn_agent_id or "", canvas.turn_agent_id),
        "owner": names.get(canvas.owner_agent_id or "", canvas.owner_agent_id),
        "content": content,
        "view": rendered(canvas),
        "submission": canvas.submission,
        "submitted_by": who(canvas.submitted_by),
        "participants": [{"agent": names.get(p.agent_id, p.agent_id), "role": p.role} for p in members],
        "reviews": [{**r, "by": who(r.get("by"))} for r in canvas.reviews[-20:]],
        "history": [
            {
                "action": h.action,
                "by": who(h.actor),
                "version": h.version,
                "outcome": h.outcome,
                "at": h.created_at.isoformat(),
            }
            for h in history
        ],
        "updated_at": canvas.updated_at.isoformat(),
    }


def for_agent(canvas: Canvas) -> dict[str, Any]:
    body: dict[str, Any] = {
        "canvas_id": canvas.id,
        "kind": canvas.kind,
        "title": canvas.title,
        "status": canvas.status,
        "version": canvas.version,
        "mode": canvas.mode,
        "lock_holder": canvas.lock_holder,
        "turn_agent_id": canvas.turn_agent_id,
        "content": canvas.content,
        "submission": canvas.submission,
        "reviews": canvas.reviews[-20:],
    }
    if canvas.kind == CanvasKind.SHEET.value:
        body["values"] = sheets.Sheet(canvas.content.get("rows", [])).values()
    return body


def summary(canvas: Canvas) -> str:
    content = canvas.content
    kind = CanvasKind(canvas.kind)
    title = f" {canvas.title!r}" if canvas.title else ""
    if kind is CanvasKind.CHART:
        series = content.get("series", [])
        points = max((len(s.get("values", [])) for s in series), default=0)
        detail = f"{content.get('chart_type')} chart, {len(series)} series of {points} points"
    elif kind is CanvasKind.FORM:
        detail = f"form with {len(content.get('schema', {}).get('properties', {}))} fields"
    elif kind is CanvasKind.SHEET:
        rows = content.get("rows", [])
        detail = f"sheet, {len(rows)} rows"
    elif kind is CanvasKind.TERMINAL:
        detail = f"terminal output, {len(content.get('lines', []))} lines"
    elif kind is CanvasKind.CODE:
        detail = f"{content.get('language') or 'text'} code, {len(content.get('code', '').splitlines())} lines"
    elif kind is CanvasKind.EMAIL:
        detail = f"email draft to {', '.join(content.get('to', [])) or 'nobody yet'}"
    elif kind is CanvasKind.STATUS:
        detail = f"status panel, {len(content.get('items', []))} items"
    elif kind is CanvasKind.COMPONENT:
        detail = f"custom component {content.get('component')} v{content.get('version')}"
    else:
        detail = f"markdown, {len(content.get('text', ''))} characters"
    return f"canvas{title}: {detail} (version {canvas.version}) at /canvases/{canvas.id}"
