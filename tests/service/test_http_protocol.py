"""service.http_protocol on a real uvicorn server and real sockets: a body of known length reaches
the app whole, in one message, and everything HTTP/1.1 allows around it still works (keep-alive,
pipelining, bodies sent slowly, early answers, hang-ups, chunked and oversized bodies)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from service import http_protocol
from service.http_protocol import WholeBodyHttpToolsProtocol
from tests.e2e.live import free_port


@dataclass
class RecordingApp:
    """Reads the whole body (except on /refuse) and answers with what it received."""

    requests: list[list[dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/refuse":  # answers at once, without reading the body
            await _answer(send, 401, {"error": "refused"})
            return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                break
        self.requests.append(messages)
        if messages[-1]["type"] == "http.disconnect":
            return
        body = b"".join(m["body"] for m in messages)
        summary = {
            "pieces": len(messages),
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "types": sorted({type(m["body"]).__name__ for m in messages}),
            "path": scope["path"],
        }
        await _answer(send, 200, summary)


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    content = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


@dataclass
class Running:
    app: RecordingApp
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture
def running() -> Iterator[Running]:
    app, port = RecordingApp(), free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=WholeBodyHttpToolsProtocol,
        lifespan="off",
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield Running(app, port)
    server.should_exit = True
    thread.join(10)


def _payload(size: int, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed) % 251 for i in range(251)) * (size // 251) + b"z" * (size % 251)


def _post(path: str, body: bytes, keep_alive: bool = True) -> bytes:
    connection = b"" if keep_alive else b"Connection: close\r\n"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
    return head + connection + b"\r\n" + body


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, Any]]:
    """One response from ``sock``; ``buffer`` keeps bytes of the next one (pipelining)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response; got {bytes(buffer)!r}"
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "content-length")
    start = len(head) + 4
    while len(buffer) < start + length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-response"
        buffer += chunk
    body = bytes(buffer[start : start + length])
    del buffer[: start + length]
    return status, json.loads(body)


def _expect(summary: dict[str, Any], body: bytes, pieces: int = 1) -> None:
    assert (summary["length"], summary["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert summary["pieces"] == pieces
    assert summary["types"] == ["bytes"]  # ASGI bodies are bytes, never bytearray or memoryview


def test_a_body_of_known_length_reaches_the_app_whole_in_one_message(running: Running) -> None:
    body = _payload(3_136_255)  # a 1000-image V2 binary request
    answer = httpx.post(running.url + "/infer", content=body, timeout=30)
    assert answer.status_code == 200
    _expect(answer.json(), body)


def test_a_body_sent_slowly_in_pieces_arrives_whole_and_the_connection_serves_the_next_request(
    running: Running,
) -> None:
    body, second = _payload(1_000_003), _payload(70_001, seed=1)
    request = _post("/first", body)
    with running.connect() as sock:
        buffer = bytearray()
        for start in range(0, len(request), 150_001):  # headers and body split across many reads
            sock.sendall(request[start : start + 150_001])
            time.sleep(0.01)
        status, summary = _read_response(sock, buffer)
        assert status == 200
        _expect(summary, body)
        sock.sendall(_post("/second", second))  # the parser starts afresh after a body it did not read
        status, summary = _read_response(sock, buffer)
        assert (status, summary["path"]) == (200, "/second")
        _expect(summary, second)


def test_headers_first_then_the_body_after_100_continue(running: Running) -> None:
    """curl's way with large bodies: the headers alone, the body only after ``100 Continue``."""
    body = _payload(2_000_000, seed=7)
    head = _post("/continue", body)[: -len(body)]
    head = head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    with running.connect() as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, summary = _read_response(sock, bytearray())
    assert status == 200
    _expect(summary, body)


def test_pipelined_requests_behind_a_large_body_are_answered_in_order(running: Running) -> None:
    bodies = [_payload(400_000, seed=1), _payload(5, seed=2), _payload(300_000, seed=3)]
    with running.connect() as sock:
        sock.sendall(b"".join(_post(f"/r{i}", body) for i, body in enumerate(bodies)))
        buffer = bytearray()
        for i, body in enumerate(bodies):
            status, summary = _read_response(sock, buffer)
            assert (status, summary["path"]) == (200, f"/r{i}")
            _expect(summary, body)


def test_an_early_answer_drops_the_rest_of_the_body_and_the_connection_goes_on(running: Running) -> None:
    body, after = _payload(2_000_000), _payload(1000, seed=5)
    request = _post("/refuse", body)
    with running.connect() as sock:
        buffer = bytearray()
        sock.sendall(request[: len(request) - len(body) + 1000])  # headers and the body's start
        status, answer = _read_response(sock, buffer)
        assert (status, answer) == (401, {"error": "refused"})
        sock.sendall(request[len(request) - len(body) + 1000 :])
        sock.sendall(_post("/after", after))
        status, summary = _read_response(sock, buffer)
        assert (status, summary["path"]) == (200, "/after")
        _expect(summary, after)
    assert len(running.app.requests) == 1  # only /after was read


def test_a_client_that_hangs_up_mid_body_gives_the_app_http_disconnect(running: Running) -> None:
    request = _post("/gone", _payload(1_000_000))
    with running.connect() as sock:
        sock.sendall(request[:300_000])
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while not running.app.requests:
        assert time.monotonic() < deadline, "the app never heard of the hang-up"
        time.sleep(0.01)
    assert [m["type"] for m in running.app.requests[0]] == ["http.disconnect"]


def test_a_chunked_body_streams_as_before(running: Running) -> None:
    body = _payload(1_500_000)
    pieces = (body[i : i + 100_000] for i in range(0, len(body), 100_000))
    answer = httpx.post(running.url + "/chunked", content=pieces, timeout=30)  # no Content-Length
    assert answer.status_code == 200
    summary = answer.json()
    assert (summary["length"], summary["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert summary["pieces"] > 1


def test_a_body_above_the_whole_body_limit_streams_in_pieces(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_protocol, "WHOLE_BODY_MAX_BYTES", 100_000)
    body = _payload(1_000_000)
    answer = httpx.post(running.url + "/large", content=body, timeout=30)
    assert answer.status_code == 200
    summary = answer.json()
    assert (summary["length"], summary["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert summary["pieces"] > 1  # uvicorn's 64 KB pieces: memory bounded while the app reads


def test_an_empty_body_is_one_empty_message(running: Running) -> None:
    answer = httpx.post(running.url + "/empty", content=b"", timeout=10)
    assert answer.status_code == 200
    _expect(answer.json(), b"")


def test_without_the_c_api_the_body_still_reaches_the_app_as_bytes(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_protocol, "_new_bytes", None)  # e.g. not CPython: a bytearray, copied
    body = _payload(1_000_000, seed=9)
    answer = httpx.post(running.url + "/fallback", content=body, timeout=30)
    assert answer.status_code == 200
    _expect(answer.json(), body)


def test_uninitialized_bytes_are_filled_through_their_view() -> None:
    data, view = http_protocol.uninitialized_bytes(1000)
    view[:] = bytes(range(200)) * 5
    assert type(data) is bytes and data == bytes(range(200)) * 5
    assert hash(data) == hash(bytes(range(200)) * 5)


def test_a_body_sent_after_its_headers_bypasses_the_parser(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the module: the socket is read straight into the body, not through httptools'
    per-read copies (its on_body callback) and uvicorn's buffers."""
    parsed: list[int] = []
    original = http_protocol._WholeBodyHttp.on_body
    monkeypatch.setattr(
        http_protocol._WholeBodyHttp, "on_body", lambda self, b: parsed.append(len(b)) or original(self, b)
    )
    body = _payload(3_000_000, seed=11)
    request = _post("/direct", body)
    with running.connect() as sock:
        sock.sendall(request[: -len(body)])
        time.sleep(0.05)  # the headers are parsed on their own
        sock.sendall(body)
        status, summary = _read_response(sock, bytearray())
    assert status == 200
    _expect(summary, body)
    assert parsed == []


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",  # the classic request-smuggling pair
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: +5\r\n",
    ],
)
def test_ambiguous_body_lengths_are_refused_before_any_body_is_read(running: Running, headers: bytes) -> None:
    """The body is read past the parser only for a length the parser itself accepted, so no
    request can make the two disagree on where a body ends."""
    with running.connect() as sock:
        sock.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n5\r\nhello\r\n0\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert running.app.requests == []
