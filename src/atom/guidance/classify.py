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
# "rate limited (HTTP 429 ...)" a rate limit before anything else. The text is lower-cased once and
# each pattern starts with a literal (no leading `\b`), which keeps the search fast; words that tool
# names contain (`request_permission`) are matched as phrases only.
MESSAGE_PATTERNS: tuple[tuple[ErrorCategory, re.Pattern[str]], ...] = (
    (
        ErrorCategory.RATE_LIMIT,
        re.compile(r"rate[ _-]?limit|too many requests|quota|throttl|retry[ _-]after"),
    ),
    (
        ErrorCategory.AUTH_EXPIRED,
        re.compile(
            r"expired[ _](token|session|credential|key)|token expired|token has expired|tokens have expired"
            r"|session expired|session has expired|credential expired|credentials expired|credentials have expired"
            r"|key expired|key has expired|keys have expired"
            r"|unauthori[sz]ed|unauthenticated|invalid[ _]api[ _]key|invalid[ _]key|api[ _]key|authenticat|credential"
            r"|sign[ -]?in again|log[ -]?in again|reauthori[sz]e|re-authori[sz]e"
            r"|_auth\b|_auth_|auth_(expired|failed|required|error)"
        ),
    ),
    (
        ErrorCategory.PERMISSION_DENIED,
        re.compile(
            r"permission (denied|required|error|missing)|permission to |permissions to |no permission"
            r"|need permission|needs permission|without permission|lack permission|lacks permission"
            r"|insufficient permission|forbidden|not allowed|not permitted|access denied|denied"
            r"|insufficient[ _](scope|privilege|right)|missing[ _]scope|needs (student|intern|supervised|autonomous)"
        ),
    ),
    (
        ErrorCategory.NETWORK_ERROR,
        re.compile(
            r"timed?[ _-]?out|connection[ _](refused|reset|closed|error|aborted)|cannot reach|could not reach"
            r"|unreachable|network|dns (lookup|resolution|error|failure)|nxdomain|name resolution|could not resolve"
            r"|temporarily unavailable|service unavailable|bad gateway|econn(refused|reset|aborted)|broken pipe"
            r"|_unavailable\b"
        ),
    ),
    (
        ErrorCategory.RESOURCE_NOT_FOUND,
        re.compile(
            r"not found|no such|does not exist|doesn't exist|no longer exists|no tool named"
            r"|unknown (tool|agent|workflow|step|channel|project|user|id|resource|file)|_not_found\b"
        ),
    ),
    (
        ErrorCategory.INVALID_INPUT,
        re.compile(
            r"invalid|required|must be|malformed|validation|bad request|schema|missing (field|parameter|argument|value)"
            r"|unexpected (field|argument|keyword)|not a valid|out of range|too (long|large|many|big)|cannot parse"
            r"|could not parse"
        ),
    ),
)

_STATUS_IN_TEXT = re.compile(r"http[ /]?(?:1\.[01] )?([1-5]\d\d)\b|status(?: code)?[ =:]+([1-5]\d\d)\b")


def status_in(text: str) -> int | None:
    """The HTTP status a message names (`HTTP 404 from api.example.com`), if any."""
    found = _STATUS_IN_TEXT.search(text[:MAX_TEXT].lower())
    if found is None:
        return None
    return int(found.group(1) or found.group(2))


# Words every branch of a category's pattern contains (one at least): a text holding none of them
# cannot match, so the pattern is not tried (a substring test is far cheaper than a regex search).
ANCHORS: dict[ErrorCategory, tuple[str, ...]] = {
    ErrorCategory.RATE_LIMIT: ("rate", "too many", "quota", "throttl", "retry"),
    ErrorCategory.AUTH_EXPIRED: ("expired", "auth", "key", "credential", "sign", "log"),
    ErrorCategory.PERMISSION_DENIED: (
        "permission", "forbidden", "not allowed", "not permitted", "denied", "insufficient", "scope", "needs ",
    ),
    ErrorCategory.NETWORK_ERROR: (
        "time", "connection", "reach", "network", "dns", "nxdomain", "resol", "unavailable", "gateway", "econn",
        "broken pipe",
    ),
    ErrorCategory.RESOURCE_NOT_FOUND: ("not found", "no such", "exist", "no tool named", "unknown", "_not_found"),
    ErrorCategory.INVALID_INPUT: (
        "invalid", "required", "must be", "malformed", "validation", "bad request", "schema", "missing",
        "unexpected", "not a valid", "out of range", "too ", "parse",
    ),
}  # fmt: skip


def classify(*, status_code: int | None = None, message: str | None = None, code: str | None = None) -> ErrorCategory:
    text = " ".join(part for part in (code, message) if part)[:MAX_TEXT].lower()
    status = status_code if status_code is not None else status_in(text)
    if status is not None and status in STATUS_CATEGORIES:
        return STATUS_CATEGORIES[status]
    for category, pattern in MESSAGE_PATTERNS:
        if any(anchor in text for anchor in ANCHORS[category]) and pattern.search(text):
            return category
    return ErrorCategory.UNKNOWN
