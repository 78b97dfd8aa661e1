"""uvicorn's httptools protocol, handing the app a request body of known length in one piece.

uvicorn streams a request body to the ASGI app in pieces of about 64 KB: once 64 KB are buffered
it pauses reading the socket, wakes the app's ``receive``, copies the piece out and resumes
reading. A 1000-image V2 binary request (3.1 MB) thus costs 48 pause/resume cycles (two
``epoll_ctl`` calls and a task wake-up each) and, after the socket read, four copies of the body
(httptools' slice of each read, uvicorn's bytearray, the copy out of it, the app's join) before
onnxruntime sees it. Every route of this service reads the whole body before it does anything
with it, so streaming gains nothing here.

With a Content-Length of at most ``WHOLE_BODY_MAX_BYTES`` this protocol keeps the reads of the
body as they come, joins them once when the body is complete and wakes the app once, with the
whole body as a single ``http.request`` message. Once the headers are parsed it takes the rest
of the body past the parser (which would copy every read again only to hand it over) and starts
a fresh parser for the next request on the connection. Measured: ``docs/performance.md``.

Nothing else changes. The app still starts as soon as the headers are parsed, so it can refuse a
request (401, 413) before the body arrives; once it has answered, the rest of the body is read
and dropped as uvicorn does. A client that hangs up mid-body still yields ``http.disconnect``.
Chunked bodies (no Content-Length) and larger ones take uvicorn's streaming path.
"""

from __future__ import annotations

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import Settings

# The default body limit: a larger body is refused with 413 unless the operator raised the limit,
# and then it streams in pieces instead of being held whole before the app reads it.
WHOLE_BODY_MAX_BYTES: int = Settings.model_fields["max_body_bytes"].default


class WholeBodyHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that buffers a body of known length and delivers it in one message."""

    _pieces: list[bytes | memoryview] | None = None  # the body so far, while whole-body mode is on
    _missing = 0  # bytes of that body still to come
    _past_parser = False  # reading the rest of that body without the parser

    def data_received(self, data: bytes) -> None:
        if self._past_parser:
            self._unset_keepalive_if_required()
            self._take_body(data)
            return
        super().data_received(data)
        self._past_parser = self._pieces is not None and self._missing > 0

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        upgrading = self.parser.should_upgrade() and self._should_upgrade()
        length = _content_length(self.headers)
        whole = not upgrading and length is not None and 0 < length <= WHOLE_BODY_MAX_BYTES
        self._pieces, self._missing = ([], length) if whole else (None, 0)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        if self._pieces is None:
            super().on_body(body)
        else:
            self._keep(body)

    def on_message_complete(self) -> None:
        pieces, self._pieces = self._pieces, None
        if pieces is not None and not self.cycle.response_complete:
            # A bytes object: the cycle's receive() passes it on as bytes(body), which is no copy.
            self.cycle.body = b"".join(pieces)  # type: ignore[assignment]
        super().on_message_complete()

    def _take_body(self, data: bytes) -> None:
        if len(data) < self._missing:
            self._keep(data)
            return
        end = self._missing
        view = memoryview(data)
        self._keep(view[:end] if len(data) > end else data)
        rest = view[end:]
        self._past_parser = False
        self._restart_parser()  # it stopped in the middle of this body
        self.on_message_complete()
        if rest:  # the next request, pipelined behind this one
            self.data_received(bytes(rest))

    def _keep(self, piece: bytes | memoryview) -> None:
        self._missing -= len(piece)
        if not self.cycle.response_complete:  # once answered, the rest is dropped (as uvicorn does)
            assert self._pieces is not None
            self._pieces.append(piece)

    def _restart_parser(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets it


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
