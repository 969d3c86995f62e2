"""Workflow templates bound integer growth like the calculator: a bomb is a template error, refused at once."""

from __future__ import annotations

import pytest

from atom.workflows.templates import TemplateError, render_string

BOMBS = [
    "{{ (10 ** 1000) ** 1000 }}",
    "{{ ((10 ** 1000) ** 1000) ** 10 }}",
    "{{ 2 ** 5000 }}",
    "{{ (7 ** 900) * (7 ** 900) }}",
    "{{ inputs.n ** inputs.n }}",
    "total: {{ (inputs.n ** 1000) * inputs.n }}",
]


@pytest.mark.parametrize("source", BOMBS)
def test_an_integer_bomb_is_refused(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_string(source, {"inputs": {"n": 10**9}}, field="steps[0].with.x")
    assert "4096 bits" in caught.value.message and caught.value.details == {"field": "steps[0].with.x"}


def test_ordinary_arithmetic_still_renders() -> None:
    context = {"inputs": {"amount": 120, "rate": 3}}
    assert render_string("{{ inputs.amount * inputs.rate }}", context, field="x") == 360
    assert render_string("{{ 2 ** 64 }}", context, field="x") == 2**64
    assert render_string("{{ inputs.amount ** 2 }} EUR", context, field="x") == "14400 EUR"
