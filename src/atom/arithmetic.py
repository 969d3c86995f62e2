"""How large an integer `*` or `**` would make, known before computing it.

Python integers grow without bound, so one short expression (`(10**1000)**1000`) can cost seconds of
CPU and gigabytes. Only `*` and `**` grow an integer faster than its operands; the size of their
result follows from the operands' sizes. Used by the calculator tool and by workflow templates.
"""

from __future__ import annotations

MAX_RESULT_BITS = 4096


def oversized_bits(operator: str, left: object, right: object, limit: int = MAX_RESULT_BITS) -> int | None:
    """The result's approximate size in bits when it would pass `limit`; None when it stays within."""
    if not (isinstance(left, int) and isinstance(right, int)) or isinstance(left, bool) or isinstance(right, bool):
        return None
    if operator == "*":
        bits = left.bit_length() + right.bit_length()
    elif operator == "**":
        if right < 0 or abs(left) <= 1:
            return None  # a float, or 0 / 1 / -1 whatever the exponent
        if right > limit:  # |left| >= 2, so the result has more than `right` bits
            return right
        bits = (left.bit_length() - 1) * right + 1
    else:
        return None
    return bits if bits > limit else None
