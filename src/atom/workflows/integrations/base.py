"""One HTTP call to an external API: transport errors and 429 + Retry-After handled in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from atom.workflows.integrations.errors import IntegrationRateLimited, IntegrationUnavailable

Sleep = Callable[[float], Awaitable[None]]
DEFAULT_RETRY_AFTER_S = 1.0


def retry_after_seconds(value: str | None) -> float:
    """Retry-After is seconds or an HTTP date; anything unreadable counts as 1 s."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    integration: str,
    max_retries: int,
    max_retry_after_s: float,
    sleep: Sleep = asyncio.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """Send; on 429 wait Retry-After and resend, at most `max_retries` times and only for waits up to
    `max_retry_after_s`; otherwise raise IntegrationRateLimited (retryable by the step's policy)."""
    attempt = 0
    while True:
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise IntegrationUnavailable(
                f"{integration}: timed out ({type(exc).__name__}).", integration=integration
            ) from exc
        except httpx.TransportError as exc:
            raise IntegrationUnavailable(
                f"{integration}: cannot reach {httpx.URL(url).host} ({type(exc).__name__}).", integration=integration
            ) from exc
        if response.status_code != 429:
            return response
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        if attempt >= max_retries or wait > max_retry_after_s:
            raise IntegrationRateLimited(
                f"{integration}: rate limited (HTTP 429, Retry-After {wait:g} s) after {attempt} retries.",
                integration=integration,
                status=429,
                retry_after=wait,
            )
        attempt += 1
        await sleep(wait)
