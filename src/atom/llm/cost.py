"""Usage cost from a price table: USD per million input and output tokens, per model.

`prices` maps a model name (or a model-name prefix, e.g. "gpt-4o" prices "gpt-4o-2024-08-06";
the longest matching prefix wins) to `{"input_per_mtok": 2.5, "output_per_mtok": 10.0}`.
An unpriced model gives `None` (cost unknown), never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from atom.errors import InvalidInput
from atom.llm.providers.base import Usage

PriceTable = Mapping[str, Mapping[str, float | int | str]]
_MILLION = Decimal(1_000_000)


def _price(entry: Mapping[str, float | int | str], field: str, model: str) -> Decimal:
    try:
        value = Decimal(str(entry[field]))
    except (KeyError, ArithmeticError) as exc:
        raise InvalidInput(
            f"price for {model!r} needs a numeric {field!r}", code="LLM_PRICE_INVALID", details={"model": model}
        ) from exc
    if value < 0 or not value.is_finite():
        raise InvalidInput(f"price {field!r} for {model!r} must be >= 0", code="LLM_PRICE_INVALID")
    return value


def find_price(model: str, prices: PriceTable) -> Mapping[str, float | int | str] | None:
    if model in prices:
        return prices[model]
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


def cost_usd(model: str, usage: Usage, prices: PriceTable) -> Decimal | None:
    """Exact cost in USD of one call, or None when the model has no price."""
    entry = find_price(model, prices)
    if entry is None:
        return None
    input_price = _price(entry, "input_per_mtok", model)
    output_price = _price(entry, "output_per_mtok", model)
    return (Decimal(usage.input_tokens) * input_price + Decimal(usage.output_tokens) * output_price) / _MILLION
