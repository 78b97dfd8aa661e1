"""uvicorn's httptools protocol, receiving a request body of known length straight into the one
``bytes`` object the app gets, in one message.

uvicorn streams a request body to the ASGI app in pieces of about 64 KB: once 64 KB are buffered
it pauses reading the socket, wakes the app's ``receive``, copies the piece out and resumes
reading. A 1000-image V2 binary request (3.1 MB) thus cost 48 pause/resume cycles (two
``epoll_ctl`` calls and a task wake-up each) and, after the kernel's copy into uvloop's read
buffer, four more copies of the body (uvloop's ``bytes`` of each read, httptools' slice of it,
uvicorn's bytearray, the copy out of it) plus the app's join. Every route of this service reads
the whole body before it does anything with it, so streaming gains nothing here.

With a Content-Length of at most ``WHOLE_BODY_MAX_BYTES``, once the headers are parsed this
protocol allocates the body as an uninitialised ``bytes`` object of that length and has the loop
read the socket straight into it (``asyncio.BufferedProtocol``); the parser, which would copy
every read again only to hand it over, is bypassed until the body is complete and then restarted
for the next request on the connection. The app is woken once, with the whole body as a single
``http.request`` message: one copy (the kernel's) instead of six. Measured in docs/performance.md.

Nothing else changes. The app still starts as soon as the headers are parsed, so it can refuse a
request (401, 413) before the body arrives; once it has answered, the rest of the body is read
and dropped as uvicorn does. A client that hangs up mid-body still yields ``http.disconnect``.
Chunked bodies (no Content-Length) and larger ones take uvicorn's streaming path.
"""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import Settings

# The default body limit: a larger body is refused with 413 unless the operator raised the limit,
# and then it streams in pieces instead of being held whole before the app reads it.
WHOLE_BODY_MAX_BYTES: int = Settings.model_fields["max_body_bytes"].default
_READ_BYTES = 256 * 1024  # the read buffer for headers and streamed bodies (uvloop's own size)


class WholeBodyHttpToolsProtocol(asyncio.BufferedProtocol):
    """uvicorn's ``HttpToolsProtocol`` behind a buffered reader: reads go into a reusable buffer
    and through the parser, except the body of known length, which goes straight into its ``bytes``.

    uvloop reads into the protocol's own buffer only for protocols that are not
    ``asyncio.Protocol`` subclasses, hence a wrapper around uvicorn's protocol, not a subclass.
    """

    def __init__(self, **uvicorn_arguments: Any) -> None:
        self.http = _WholeBodyHttp(**uvicorn_arguments)
        self._read_buffer = memoryview(bytearray(_READ_BYTES))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.http.connection_made(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def eof_received(self) -> None:
        self.http.eof_received()

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()

    # get_buffer and buffer_updated run for every read: attributes, not properties or extra calls
    # (each Python call here costs ~1 us of a lone client's latency, issue 5)
    def get_buffer(self, sizehint: int) -> memoryview:
        http = self.http
        return self._read_buffer if http.view is None else http.view[http.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        http = self.http
        if http.view is not None:
            http.body_received(nbytes)
            return
        http.data_received(self._read_buffer[:nbytes])  # type: ignore[arg-type]  # parsed, not kept
        if http.pieces is not None:  # the headers and the start of a whole body were in this read
            http.read_rest_past_parser()


class _WholeBodyHttp(HttpToolsProtocol):
    """``HttpToolsProtocol`` that collects a body of known length and delivers it in one message.

    A body that came whole with its headers (most small requests) is kept as the parser's pieces
    and joined; one that did not is moved into a ``bytes`` of its full length, and the rest of it
    is read straight into that past the parser."""

    length = 0  # Content-Length of the body being received whole; 0: uvicorn's streaming
    pieces: list[bytes] | None = None  # the body as the parser handed it, until it moves
    body: bytes | bytearray | None = None  # the body read past the parser, and its writable view:
    view: memoryview | None = None  # not None while the next read belongs to it
    filled = 0  # bytes of the body received so far

    def read_rest_past_parser(self) -> None:
        """The body is not complete after this read: move what came into the body's own ``bytes``
        and have the next reads go straight there."""
        assert self.pieces is not None
        pieces, self.pieces = self.pieces, None
        self.body, self.view = uninitialized_bytes(self.length)
        for piece in pieces:
            self.view[self.filled : self.filled + len(piece)] = piece
            self.filled += len(piece)

    def body_received(self, nbytes: int) -> None:
        self._unset_keepalive_if_required()
        self.filled += nbytes
        if self.filled == self.length:
            self.parser = httptools.HttpRequestParser(self)  # it stopped in the middle of this body
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets it
            self.on_message_complete()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
                break
        upgrading = self.parser.should_upgrade() and self._should_upgrade()
        whole = not upgrading and length is not None and 0 < length <= WHOLE_BODY_MAX_BYTES
        self.length, self.pieces = (length, []) if whole else (0, None)  # type: ignore[assignment]
        self.body, self.view, self.filled = None, None, 0

    def on_body(self, body: bytes) -> None:
        if self.pieces is None:
            super().on_body(body)
        else:
            self.pieces.append(body)

    def on_message_complete(self) -> None:
        if self.length:
            body = self.body if self.pieces is None else b"".join(self.pieces)
            self.length, self.pieces, self.body, self.view = 0, None, None, None
            if not self.cycle.response_complete:  # once answered, the body is dropped
                # bytes: the cycle's receive() passes it on as bytes(body), which is no copy
                self.cycle.body = body  # type: ignore[assignment]
        super().on_message_complete()


def uninitialized_bytes(size: int) -> tuple[bytes | bytearray, memoryview]:
    """A new ``bytes`` object of ``size`` bytes and a writable view of its contents, to be filled
    before the object is shared (as C code does with ``PyBytes_FromStringAndSize(NULL, size)``).
    Without CPython's C API: a bytearray, which uvicorn copies into ``bytes`` for the app."""
    if _new_bytes is None:
        buffer = bytearray(size)
        return buffer, memoryview(buffer)
    data = _new_bytes(None, size)
    contents = (ctypes.c_char * size).from_address(_bytes_data(data))  # valid while `data` lives
    return data, memoryview(contents).cast("B")


def _c_api() -> tuple[Any, Any]:
    try:
        new_bytes, bytes_data = ctypes.pythonapi.PyBytes_FromStringAndSize, ctypes.pythonapi.PyBytes_AsString
    except AttributeError:
        return None, None
    new_bytes.restype, new_bytes.argtypes = ctypes.py_object, (ctypes.c_char_p, ctypes.c_ssize_t)
    bytes_data.restype, bytes_data.argtypes = ctypes.c_void_p, (ctypes.py_object,)
    return new_bytes, bytes_data


_new_bytes, _bytes_data = _c_api()
