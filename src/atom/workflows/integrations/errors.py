"""Typed integration errors. `retryable` tells the engine whether a step retry can help."""

from __future__ import annotations

from typing import Any, ClassVar

from atom.errors import AtomError


class IntegrationError(AtomError):
    status_code = 502
    default_code = "INTEGRATION_ERROR"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        integration: str,
        code: str | None = None,
        retryable: bool | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ):
        merged = {"integration": integration, **(details or {})}
        if status is not None:
            merged["status"] = status
        if retry_after is not None:
            merged["retry_after_s"] = retry_after
        super().__init__(message, code=code, details=merged)
        self.integration = integration
        self.retryable = self.default_retryable if retryable is None else retryable
        self.status = status
        self.retry_after = retry_after


class IntegrationNotConfigured(IntegrationError):
    """A setting or credential is missing: a person must fix it."""

    status_code = 503
    default_code = "INTEGRATION_NOT_CONFIGURED"


class IntegrationAuthError(IntegrationError):
    """The credential was refused (invalid, revoked, missing scope)."""

    default_code = "INTEGRATION_AUTH_FAILED"


class IntegrationNotFound(IntegrationError):
    """The channel, project or resource does not exist or is not visible to the credential."""

    status_code = 404
    default_code = "INTEGRATION_NOT_FOUND"


class IntegrationRequestError(IntegrationError):
    """The service refused the request as invalid (4xx); sending it again will not help."""

    default_code = "INTEGRATION_REQUEST_REJECTED"


class IntegrationRateLimited(IntegrationError):
    """Still rate-limited after the bounded in-place retries; a later step retry may succeed."""

    status_code = 503
    default_code = "INTEGRATION_RATE_LIMITED"
    default_retryable = True


class IntegrationUnavailable(IntegrationError):
    """Network failure, timeout or a 5xx: transient, retryable."""

    status_code = 503
    default_code = "INTEGRATION_UNAVAILABLE"
    default_retryable = True
