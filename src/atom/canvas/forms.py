"""Form canvases: a JSON Schema (checked against the 2020-12 meta-schema by `jsonschema`) that the dashboard
renders as fields, and the server-side validation of what a person submits.

A form's schema is an object schema whose properties are the fields. What the dashboard can render, and so
what a form may use (docs/canvas.md): property types string, number, integer, boolean, or a string `enum`
(a choice); keywords title, description, default, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
minLength, maxLength, format (email, date, uri), enum, multipleOf; `required` at the top. `pattern` is not
offered: a regular expression from an agent could take exponential time to match (Python's `re` has no
time limit), and `$ref` is not offered (nothing is fetched to validate a form).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from atom.errors import InvalidInput

MAX_SCHEMA_BYTES = 32_000
MAX_FIELDS = 50
MAX_SUBMISSION_BYTES = 64_000
MAX_STRING = 10_000

FIELD_TYPES = frozenset({"string", "number", "integer", "boolean"})
FIELD_KEYWORDS = frozenset(
    {
        "type", "title", "description", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "maxLength", "format", "enum", "multipleOf",
    }
)  # fmt: skip
TOP_KEYWORDS = frozenset({"$schema", "type", "title", "description", "properties", "required", "additionalProperties"})
FORMATS = frozenset({"email", "date", "uri"})


def _schema_error(message: str, field: str = "content.schema") -> InvalidInput:
    return InvalidInput(
        f"The form schema is not usable: {message}.", code="INVALID_FORM_SCHEMA", details={"field": field}
    )


def check_schema(schema: Any) -> dict[str, Any]:
    """The schema if it is valid JSON Schema and within what a form may use; else InvalidInput naming the field."""
    if not isinstance(schema, dict):
        raise _schema_error("it must be a JSON object")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise _schema_error(f"it is larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        field = "content.schema" + (f".{where}" if where else "")
        raise _schema_error(f"not valid JSON Schema ({exc.message})", field) from exc
    if schema.get("type") != "object":
        raise _schema_error('a form schema must have "type": "object"', "content.schema.type")
    extra = set(schema) - TOP_KEYWORDS
    if extra:
        raise _schema_error(
            f"unsupported keyword {sorted(extra)[0]!r} at the top", f"content.schema.{sorted(extra)[0]}"
        )
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise _schema_error("a form needs at least one property", "content.schema.properties")
    if len(properties) > MAX_FIELDS:
        raise _schema_error(f"a form has at most {MAX_FIELDS} fields", "content.schema.properties")
    for name, field in properties.items():
        where = f"content.schema.properties.{name}"
        if not isinstance(field, dict):
            raise _schema_error(f"field {name!r} must be an object schema", where)
        unsupported = set(field) - FIELD_KEYWORDS
        if unsupported:
            keyword = sorted(unsupported)[0]
            raise _schema_error(f"field {name!r} uses {keyword!r}, which forms do not offer", f"{where}.{keyword}")
        if field.get("type") not in FIELD_TYPES:
            raise _schema_error(f"field {name!r} needs a type among {sorted(FIELD_TYPES)}", f"{where}.type")
        if "format" in field and field["format"] not in FORMATS:
            raise _schema_error(f"field {name!r} has an unsupported format", f"{where}.format")
    required = schema.get("required", [])
    missing = [r for r in required if r not in properties]
    if missing:
        raise _schema_error(f"required field {missing[0]!r} is not a property", "content.schema.required")
    return schema


def validate_submission(schema: dict[str, Any], values: Any) -> dict[str, Any]:
    """The values if they satisfy the schema (formats checked); else InvalidInput listing each bad field."""
    if not isinstance(values, dict):
        raise InvalidInput(
            "A form submission is a JSON object.", code="INVALID_SUBMISSION", details={"field": "values"}
        )
    if len(json.dumps(values, default=str)) > MAX_SUBMISSION_BYTES:
        raise InvalidInput(
            f"The submission is larger than {MAX_SUBMISSION_BYTES} bytes.",
            code="INVALID_SUBMISSION",
            details={"field": "values"},
        )
    closed = {**schema, "additionalProperties": schema.get("additionalProperties", False)}
    validator = Draft202012Validator(closed, format_checker=FormatChecker())
    fields = []
    for error in sorted(validator.iter_errors(values), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in error.path)
        if not path and error.validator == "required":
            path = str(error.message.split("'")[1]) if "'" in error.message else ""
        if not path and error.validator == "additionalProperties":
            path = "values"
        fields.append({"field": f"values.{path}" if path and path != "values" else "values", "message": error.message})
    if fields:
        named = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
        raise InvalidInput(f"The form is not valid: {named}.", code="INVALID_SUBMISSION", details={"fields": fields})
    return values
