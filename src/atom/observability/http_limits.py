"""Bounds on a request's head (request line + headers), enforced while it is read: 431 past them.

uvicorn's httptools protocol buffers a header of any length and accepts any number of them
(an 8 MB header was read in full; 20,000 headers were accepted). This subclass counts the head's
bytes as they arrive and its header lines as they are parsed, and past either limit answers 431
with the standard error body and closes the connection before the application sees anything.
"""

from __future__ import annotations

import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_STATUS_LINE = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
LINGER_S = 2.0  # after a 431, how long what the client still sends is read and discarded
LINGER_MAX_BYTES = 64 * 1024 * 1024  # ...and at most this much of it


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing at once (the protocol answers 431)."""


def headers_too_large_body(max_bytes: int, max_headers: int) -> bytes:
    return json.dumps(
        {
            "error": {
                "code": "HEADERS_TOO_LARGE",
                "message": f"The request's headers are too large: at most {max_headers} headers "
                f"and {max_bytes} bytes of request line and headers are accepted.",
                "details": {"limit_bytes": max_bytes, "limit_headers": max_headers},
            }
        }
    ).encode()


def bounded_protocol(max_bytes: int, max_headers: int) -> type[HttpToolsProtocol]:
    """An httptools protocol class bound to these limits (uvicorn instantiates it per connection)."""
    body = headers_too_large_body(max_bytes, max_headers)

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _in_head = True  # a connection starts with a request head
        _head_bytes = 0  # bytes received since the head began (catches a head still arriving)
        _parsed_bytes = 0  # bytes of request line and headers parsed (catches a head that came in one piece)
        _header_count = 0
        _over = False
        _refused = False
        _discarded = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes, self._parsed_bytes, self._header_count = True, 0, 0, 0

        def on_url(self, url: bytes) -> None:
            self._parsed_bytes += len(url)
            if self._parsed_bytes > max_bytes:
                self._over = True
                raise _HeadTooLarge
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            self._parsed_bytes += len(name) + len(value) + 4
            if self._header_count > max_headers or self._parsed_bytes > max_bytes:
                self._over = True
                raise _HeadTooLarge
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            if self._refused:  # lingering after a 431: discard what the client still sends, buffer nothing
                self._discarded += len(data)
                if self._discarded > LINGER_MAX_BYTES:
                    self.transport.close()
                return
            if self._in_head:
                self._head_bytes += len(data)
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                if self._over:
                    self._refuse()
                    return
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            if self._in_head and self._head_bytes > max_bytes:
                self._refuse()

        def _refuse(self) -> None:
            self._refused = True
            self.logger.warning(
                "refused a request head over the limits",
                extra={"head_bytes": self._head_bytes, "headers": self._header_count},
            )
            head: list[Any] = [_STATUS_LINE]
            for name, value in self.server_state.default_headers:
                head.extend([name, b": ", value, b"\r\n"])
            head.extend(
                [
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(head))
            # Closing with unread input would reset the connection and the client would never see the 431:
            # half-close instead, discard the rest for a moment, then close.
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    return BoundedHttpToolsProtocol
