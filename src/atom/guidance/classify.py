"""RULES.md's seven error categories, classified by status code first, then by the message.

`classify(status_code=..., message=..., code=...)` is pure: the same error always lands in the
same category. The status code is the one given, else one the message names (`HTTP 404`,
`status 429`). A status code that maps to a category decides; otherwise the error code and the
message are matched against the patterns below, in order, and the first match decides. What
matches nothing is `unknown`.
"""

from __future__ import annotations

import re
from enum import StrEnum

MAX_TEXT = 4000  # longer messages are matched on their first characters only (bounded work)


class ErrorCategory(StrEnum):
    PERMISSION_DENIED = "permission_denied"
    AUTH_EXPIRED = "auth_expired"
    NETWORK_ERROR = "network_error"
    RATE_LIMIT = "rate_limit"
    INVALID_INPUT = "invalid_input"
    RESOURCE_NOT_FOUND = "resource_not_found"
    UNKNOWN = "unknown"


STATUS_CATEGORIES: dict[int, ErrorCategory] = {
    400: ErrorCategory.INVALID_INPUT,
    401: ErrorCategory.AUTH_EXPIRED,
    403: ErrorCategory.PERMISSION_DENIED,
    404: ErrorCategory.RESOURCE_NOT_FOUND,
    407: ErrorCategory.AUTH_EXPIRED,
    408: ErrorCategory.NETWORK_ERROR,
    410: ErrorCategory.RESOURCE_NOT_FOUND,
    413: ErrorCategory.INVALID_INPUT,
    414: ErrorCategory.INVALID_INPUT,
    415: ErrorCategory.INVALID_INPUT,
    422: ErrorCategory.INVALID_INPUT,
    429: ErrorCategory.RATE_LIMIT,
    502: ErrorCategory.NETWORK_ERROR,
    503: ErrorCategory.NETWORK_ERROR,
    504: ErrorCategory.NETWORK_ERROR,
}

# Checked in this order: "Invalid API key" is an expired credential before it is invalid input,
# "rate limited (HTTP 429 ...)" a rate limit before anything else.
MESSAGE_PATTERNS: tuple[tuple[ErrorCategory, re.Pattern[str]], ...] = (
    (
        ErrorCategory.RATE_LIMIT,
        re.compile(r"rate[ _-]?limit|too many requests|quota|throttl|retry[ _-]after", re.I),
    ),
    (
        ErrorCategory.AUTH_EXPIRED,
        re.compile(
            r"expired[ _](token|session|credential|key)|(token|session|credential|key)s? (has |have )?expired"
            r"|unauthori[sz]ed|unauthenticated|invalid[ _](api[ _])?key|api[ _]key|authenticat|credential"
            r"|sign[ -]?in again|log[ -]?in again|re-?authori[sz]e|\w*_AUTH(_\w+)?\b",
            re.I,
        ),
    ),
    (
        ErrorCategory.PERMISSION_DENIED,
        re.compile(
            r"\bpermission|\bforbidden|not allowed|not permitted|access denied|\bdenied"
            r"|insufficient[ _](scope|privilege|right)|missing[ _]scope|needs (STUDENT|INTERN|SUPERVISED|AUTONOMOUS)",
            re.I,
        ),
    ),
    (
        ErrorCategory.NETWORK_ERROR,
        re.compile(
            r"timed?[ _-]?out|timeout|connection[ _](refused|reset|closed|error|aborted)|cannot reach|could not reach"
            r"|unreachable|network|\bdns\b|name resolution|could not resolve|temporarily unavailable"
            r"|service unavailable"
            r"|bad gateway|econn\w*|broken pipe|\w*_UNAVAILABLE\b",
            re.I,
        ),
    ),
    (
        ErrorCategory.RESOURCE_NOT_FOUND,
        re.compile(
            r"not found|no such|does not exist|doesn't exist|no longer exists|no tool named"
            r"|unknown (tool|agent|workflow|step|channel|project|user|id|resource|file)|\w*_NOT_FOUND\b",
            re.I,
        ),
    ),
    (
        ErrorCategory.INVALID_INPUT,
        re.compile(
            r"invalid|required|must be|malformed|validation|bad request|schema|missing (field|parameter|argument|value)"
            r"|unexpected (field|argument|keyword)|not a valid|out of range|too (long|large|many|big)|cannot parse"
            r"|could not parse",
            re.I,
        ),
    ),
)

_STATUS_IN_TEXT = re.compile(r"\bHTTP[ /]?(?:1\.[01] )?([1-5]\d\d)\b|\bstatus(?: code)?[ =:]+([1-5]\d\d)\b", re.I)


def status_in(text: str) -> int | None:
    """The HTTP status a message names (`HTTP 404 from api.example.com`), if any."""
    found = _STATUS_IN_TEXT.search(text[:MAX_TEXT])
    if found is None:
        return None
    return int(found.group(1) or found.group(2))


def classify(*, status_code: int | None = None, message: str | None = None, code: str | None = None) -> ErrorCategory:
    text = " ".join(part for part in (code, message) if part)[:MAX_TEXT]
    status = status_code if status_code is not None else status_in(text)
    if status is not None and status in STATUS_CATEGORIES:
        return STATUS_CATEGORIES[status]
    for category, pattern in MESSAGE_PATTERNS:
        if pattern.search(text):
            return category
    return ErrorCategory.UNKNOWN
