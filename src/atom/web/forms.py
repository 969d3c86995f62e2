"""Form validation with the API's own pydantic schemas: errors keyed by field, ready for `field()`."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FRIENDLY = {
    "string_pattern_mismatch": "Letters, digits and the characters shown only.",
    "string_too_short": "Too short.",
    "string_too_long": "Too long.",
    "enum": "Choose one of the options.",
    "missing": "Required.",
}


def validate(model: type[M], data: dict[str, Any], *, prefix: str = "") -> tuple[M | None, dict[str, str]]:
    """`(instance, {})`, or `(None, {prefix+field: message})` naming each invalid field."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            name = prefix + ".".join(str(part) for part in err.get("loc", ())) if err.get("loc") else prefix + "form"
            ctx = err.get("ctx") or {}
            message = _FRIENDLY.get(err["type"], err.get("msg", "Invalid."))
            if err["type"] == "string_too_short" and "min_length" in ctx:
                message = f"At least {ctx['min_length']} characters."
            elif err["type"] == "string_too_long" and "max_length" in ctx:
                message = f"At most {ctx['max_length']} characters."
            errors.setdefault(name, message)
        return None, errors
