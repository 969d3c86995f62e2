"""Domain errors. Services raise these; `create_app` maps them to HTTP once.

Every error carries a stable machine code (`AGENT_NOT_FOUND`), a human message and details.
"""

from __future__ import annotations

from typing import Any, ClassVar


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape every answer uses: `{"error": {"code", "message", "details"}}`."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


class AtomError(Exception):
    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}


class InvalidInput(AtomError):
    status_code = 422
    default_code = "INVALID_INPUT"


class Unauthorized(AtomError):
    status_code = 401
    default_code = "UNAUTHORIZED"


class Forbidden(AtomError):
    status_code = 403
    default_code = "FORBIDDEN"


class NotFound(AtomError):
    status_code = 404
    default_code = "NOT_FOUND"


class Conflict(AtomError):
    status_code = 409
    default_code = "CONFLICT"


class PayloadTooLarge(AtomError):
    status_code = 413
    default_code = "PAYLOAD_TOO_LARGE"


class Unavailable(AtomError):
    status_code = 503
    default_code = "UNAVAILABLE"


class ConfigurationError(AtomError):
    """A setting is wrong or a required service is unreachable at start-up."""

    default_code = "CONFIGURATION_ERROR"

    def __init__(self, message: str, *, setting: str, fix: str):
        super().__init__(message, details={"setting": setting, "fix": fix})
        self.setting = setting
        self.fix = fix

    def one_line(self) -> str:
        return f"{self.setting}: {self.message} Fix: {self.fix}"
