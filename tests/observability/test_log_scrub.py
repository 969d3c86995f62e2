"""Credentials never reach a log line, whoever wrote it (our loggers, uvicorn, the websockets library)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from atom.observability.logging import configure_logging, get_logger, scrub_text
from tests.conftest import make_settings

KEY = "atom_0123456789ab_" + "Zx9-_" * 9


def test_query_values_headers_and_key_shapes_are_scrubbed() -> None:
    assert scrub_text(f'"WebSocket /ws/chat/a?token={KEY}&session_id=s1" [accepted]') == (
        '"WebSocket /ws/chat/a?token=[redacted]&session_id=s1" [accepted]'
    )
    assert scrub_text("GET /x?api_key=abc&key=def&access_token=ghi") == (
        "GET /x?api_key=[redacted]&key=[redacted]&access_token=[redacted]"
    )
    assert scrub_text(f"< X-API-Key: {KEY}") == "< X-API-Key: [redacted]"
    assert scrub_text("Authorization: Bearer abc") == "Authorization: [redacted]"
    assert scrub_text(f"something mentions {KEY} in passing") == "something mentions [redacted] in passing"
    for harmless in ("monkey=1", "key_id=abc", "tokens=5", "keyboard"):
        assert scrub_text(harmless) == harmless


def test_every_logger_goes_through_the_scrubber(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # Earlier tests (live servers) leave library loggers at their own levels; this test is about the path
    # a record takes once it is emitted, so those two emit at INFO and propagate to the root here.
    libraries = [logging.getLogger(name) for name in ("uvicorn.error", "websockets.server")]
    saved_libraries = [(lg.level, lg.propagate, lg.disabled) for lg in libraries]
    for lg in libraries:
        lg.setLevel(logging.INFO)
        lg.propagate, lg.disabled = True, False
    configure_logging(make_settings(tmp_path, None, log_format="json"))
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", f"/ws/x?token={KEY}")
        logging.getLogger("websockets.server").info("< x-api-key: %s", KEY)
        get_logger("atom.test").info("request", url=f"/api/me?key={KEY}")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for lg, (level, propagate, disabled) in zip(libraries, saved_libraries, strict=True):
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    assert KEY not in stream.getvalue()
    assert lines[0]["event"] == '127.0.0.1:5 - "WebSocket /ws/x?token=[redacted]" [accepted]'
    assert lines[2]["url"] == "/api/me?key=[redacted]"
