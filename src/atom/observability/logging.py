"""structlog set-up: JSON lines (or pretty console on a TTY), request id bound per request.

Values under keys that name a credential are replaced before any renderer sees them, so a
secret passed to a log call by mistake still never reaches the log file. Text is scrubbed too,
ours and other libraries' alike (uvicorn's access and WebSocket lines, the websockets library's
debug handshake): credential query values (`?token=`, `key=`, `api_key=`...), credential header
lines and anything shaped like an Atom API key become `[redacted]`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from atom.config import LogFormat, Settings

_SENSITIVE_PARTS = (
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "key_value",
)
REDACTED = "[redacted]"


# `?token=...`, `&api_key=...`: the value up to the next separator. Names match whole (`monkey=` is left alone).
_QUERY_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:access_|api_|auth_)?(?:token|key|apikey|password|secret)=)[^&\s\"'#;,]*"
)
# `Authorization: Bearer x`, `X-API-Key: x`, `Cookie: a=b; c=d` in a logged header dump.
_HEADER_SECRET = re.compile(r"(?i)((?:authorization|x-api-key|cookie|set-cookie)\s*[:=]\s*)[^\r\n\"']+")
_ATOM_KEY = re.compile(r"atom_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}")


def scrub_text(text: str) -> str:
    """`text` with credential query values, credential header values and Atom API keys replaced."""
    if "=" in text:
        text = _QUERY_SECRET.sub(r"\1" + REDACTED, text)
    if ":" in text or "=" in text:
        text = _HEADER_SECRET.sub(r"\1" + REDACTED, text)
    if "atom_" in text:
        text = _ATOM_KEY.sub(REDACTED, text)
    return text


def scrub_strings(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = scrub_text(value)
    return event_dict


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SENSITIVE_PARTS)


def redact_sensitive(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key != "event" and _is_sensitive(key):
            event_dict[key] = REDACTED
    return event_dict


def _final_processors(settings: Settings) -> list[Any]:
    """Scrub, then render; for JSON a traceback is text first, so it is scrubbed as well."""
    use_json = settings.log_format == LogFormat.JSON or (
        settings.log_format == LogFormat.AUTO and not sys.stderr.isatty()
    )
    if use_json:
        return [structlog.processors.format_exc_info, scrub_strings, structlog.processors.JSONRenderer()]
    return [scrub_strings, structlog.dev.ConsoleRenderer()]


def configure_logging(settings: Settings) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_sensitive,
    ]
    structlog.configure(
        processors=[
            # First: a line below the level costs one check, not the whole chain (time stamp, redaction).
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_final_processors(settings),  # every line, ours and other libraries', is scrubbed here
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.value)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True
    # Our middleware logs each request with its id; uvicorn's access line would duplicate it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
