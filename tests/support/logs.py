"""Capture what Atom logs, rendered exactly as in production (JSON lines)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from atom.config import LogFormat, LogLevel, Settings
from atom.observability.logging import configure_logging


@contextmanager
def captured_logs(settings: Settings) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging(settings.model_copy(update={"log_format": LogFormat.JSON, "log_level": LogLevel.DEBUG}))
    buffer = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
