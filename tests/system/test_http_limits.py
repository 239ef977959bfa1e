"""HTTP limits of the real `smsdesk serve` process over loopback: head size, slow clients (a slowloris
included), keep-alive, the connection cap, client disconnects. Each over-limit event is one log line.

Limits are set small by flags so that every test is bounded: at most a few hundred connections and
a few seconds each.
"""

from __future__ import annotations

import base64
import contextlib
import json
import resource
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, wait_until
from tests.support.serve_process import AUTH, LiveServe, closed_by_server, read_response

REQUEST_TIMEOUT = 1.0
KEEP_ALIVE = 1
HEADER_LIMIT = 4096
CAP = 40
AUTH_HEADER = "Basic " + base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}".encode()).decode()


@pytest.fixture
def serve(tmp_path: Path, home: Path) -> Iterator[LiveServe]:
    server = LiveServe(make_db(tmp_path / "smsdesk.db", shop_credential()), tmp_path / "serve.log",
                       "--request-timeout", str(REQUEST_TIMEOUT), "--keep-alive-timeout", str(KEEP_ALIVE),
                       "--max-header-bytes", str(HEADER_LIMIT), "--max-connections", str(CAP))
    try:
        yield server
    finally:
        server.stop()


def log_lines(server: LiveServe, marker: str) -> list[str]:
    return [line for line in server.log().splitlines() if marker in line]


def stored(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def test_oversized_header_line_is_431_and_closed_without_reading_it(serve: LiveServe) -> None:
    """An unauthenticated client streams one endless header line: 431 once past the limit, and the
    server closes instead of buffering (before the fix it read it all and answered 200)."""
    before = serve.rss_kb()
    sock = serve.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
    sent = 0
    try:
        for _ in range(32 * 1024 * 1024 // 65536):  # up to 32 MiB, stopped by the server long before
            sock.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_response(sock, 5)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 8 * 1024 * 1024, sent  # refused early, not after the whole stream
    assert serve.rss_kb() - before < 16 * 1024  # no buffering of what was sent
    assert len(log_lines(serve, "request head over 4096 bytes")) == 1
    assert httpx.get(serve.url + "/healthz").status_code == 200
    assert "Traceback" not in serve.log()


def test_many_headers_over_the_limit_are_431(serve: LiveServe) -> None:
    headers = {f"x-h{i}": "v" * 100 for i in range(60)}  # about 6.6 KB of headers
    response = httpx.get(serve.url + "/healthz", headers=headers)
    assert response.status_code == 431
    assert httpx.get(serve.url + "/healthz", headers={"x-h": "v" * 1000}).status_code == 200


def test_slowloris_headers_are_timed_out_with_408(serve: LiveServe) -> None:
    """Twenty clients send a header byte every 0.2 s and never finish: each gets 408 and is closed
    within the request timeout; a webhook sent meanwhile is stored."""
    socks = [serve.connect() for _ in range(20)]
    for sock in socks:
        sock.sendall(b"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed: set[int] = set()
    while time.monotonic() - started < REQUEST_TIMEOUT + 3 and len(closed) < len(socks):
        for index, sock in enumerate(socks):
            if index in closed:
                continue
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed.add(index)
        time.sleep(0.2)
    response = httpx.post(serve.url + "/infobip/inbound", json=mo_body(mo_result("STOP", message_id="s1")),
                          auth=AUTH)
    assert response.status_code == 200
    answers = [read_response(sock, 2) for sock in socks]
    for sock in socks:
        sock.close()
    assert time.monotonic() - started < REQUEST_TIMEOUT + 6
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[:3]
    assert 1 <= len(log_lines(serve, "request not complete within 1 s")) <= 2  # rate-limited: one line per burst


def test_connection_that_sends_nothing_is_closed(serve: LiveServe) -> None:
    sock = serve.connect()
    started = time.monotonic()
    answer = read_response(sock, REQUEST_TIMEOUT + 3)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < REQUEST_TIMEOUT + 2


def test_slow_body_is_timed_out_and_nothing_is_stored(serve: LiveServe) -> None:
    body = json.dumps(mo_body(mo_result("STOP", message_id="slow-body"))).encode()
    sock = serve.connect()
    sock.sendall(f"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH_HEADER}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    started = time.monotonic()
    try:
        for byte in body:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
            if time.monotonic() - started > REQUEST_TIMEOUT + 3:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_response(sock, 3)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert stored(serve.db_path) == 0
    time.sleep(0.3)
    assert len(log_lines(serve, "request not complete")) == 1
    assert not log_lines(serve, "disconnected")  # the timeout's line only, not a second one
    assert "Traceback" not in serve.log()


def test_idle_keep_alive_connection_is_closed(serve: LiveServe) -> None:
    sock = serve.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    assert closed_by_server(sock, KEEP_ALIVE + 3)
    assert time.monotonic() - started < KEEP_ALIVE + 2
    sock.close()


def _low_descriptor_limit() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_connection_cap_keeps_healthz_and_webhooks_answering(tmp_path: Path, home: Path) -> None:
    """400 idle connections against a serve limited to 256 descriptors: without a cap the process
    runs out of descriptors and fails /healthz and webhooks alike; with --max-connections 100 the
    least recently active idle connections are closed and new requests are served."""
    server = LiveServe(make_db(tmp_path / "smsdesk.db", shop_credential()), tmp_path / "serve.log",
                       "--max-connections", "100", "--request-timeout", "30", preexec=_low_descriptor_limit)
    socks: list[socket.socket] = []
    try:
        for _ in range(400):
            socks.append(server.connect())
        time.sleep(0.5)
        health = httpx.get(server.url + "/healthz", timeout=10)
        assert health.status_code == 200
        response = httpx.post(server.url + "/infobip/inbound", json=mo_body(mo_result("STOP", message_id="cap")),
                              auth=AUTH, timeout=10)
        assert response.status_code == 200
        closed = sum(closed_by_server(sock, 0.01) for sock in socks)
        assert closed >= 290, closed  # the oldest went first, to make room
        assert 1 <= len(log_lines(server, "connection cap (100) reached")) <= 3
        # README: serve raises its open-file limit to the cap plus 256 "and says so when it may not"
        assert len(log_lines(server, "open file limit 256 is below --max-connections 100 + 256")) == 1
        assert "Traceback" not in server.log()
    finally:
        for sock in socks:
            sock.close()
        server.stop()


@contextlib.contextmanager
def stalled_connections(tmp_path: Path, count: int, sent: bytes,
                        *serve_args: str) -> Iterator[tuple[LiveServe, list[socket.socket]]]:
    """A serve with `count` connections that each sent `sent` and then nothing more."""
    server = LiveServe(make_db(tmp_path / "smsdesk.db", shop_credential()), tmp_path / "serve.log", *serve_args)
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = server.connect()
            sock.sendall(sent)
            socks.append(sock)
        time.sleep(0.3)
        yield server, socks
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_connections_stalled_in_their_request_head_make_room_at_once(tmp_path: Path, home: Path) -> None:
    """A slowloris sends a request head a few bytes at a time: its request is not in the app
    yet, so at the cap such connections are closed to make room, not waited out for
    --request-timeout (30 s here)."""
    head_begun = b"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\n"  # and never the rest
    with stalled_connections(tmp_path, 30, head_begun, "--max-connections", "20", "--request-timeout", "30") \
            as (server, socks):
        started = time.monotonic()
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        response = httpx.post(server.url + "/infobip/inbound", json=mo_body(mo_result("STOP", message_id="loris")),
                              auth=AUTH, timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - started < 1.0
        assert sum(closed_by_server(sock, 0.01) for sock in socks) >= 10


def test_with_every_connection_in_a_request_a_new_one_is_refused_until_they_time_out(tmp_path: Path,
                                                                                    home: Path) -> None:
    """Requests whose bodies never finish are in the app: they are not closed to make room, a new
    connection is refused (one log line), and once --request-timeout passes they get 408 and
    new connections are served again."""
    body_begun = (f"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH_HEADER}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"results\": [").encode()
    with stalled_connections(tmp_path, 10, body_begun, "--max-connections", "10", "--request-timeout", "2") \
            as (server, socks):
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url + "/healthz", timeout=5)
        assert wait_until(lambda: bool(log_lines(server, "every connection is in a request")), 2)
        assert wait_until(lambda: _healthy(server), 5)
        assert [read_response(sock, 1).split(b"\r\n", 1)[0] for sock in socks] == [b"HTTP/1.1 408 Request Timeout"] * 10
        assert "Traceback" not in server.log()


def _healthy(server: LiveServe) -> bool:
    try:
        return httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    except httpx.TransportError:  # refused: the cap is still full
        return False


def test_client_that_disconnects_mid_body_is_one_log_line(serve: LiveServe) -> None:
    for _ in range(5):
        sock = serve.connect()
        sock.sendall(f"POST /infobip/inbound HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH_HEADER}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"results\": [".encode())
        time.sleep(0.1)
        sock.close()
    assert wait_until(lambda: bool(log_lines(serve, "disconnected before its request body")), 5)
    time.sleep(0.3)
    assert len(log_lines(serve, "disconnected before its request body")) == 1  # five events, one line
    assert "Traceback" not in serve.log()
    assert stored(serve.db_path) == 0


def test_lowercase_basic_scheme_is_accepted(serve: LiveServe) -> None:
    token = AUTH_HEADER.split(" ", 1)[1]
    for scheme in ("basic", "BASIC", "bAsIc"):
        response = httpx.post(serve.url + "/infobip/inbound", json=mo_body(mo_result("HELP")),
                              headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200, (scheme, response.text)


def test_a_flood_of_unparsable_requests_is_one_log_line(serve: LiveServe) -> None:
    for _ in range(20):
        sock = serve.connect()
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")  # e.g. TLS spoken to a plain HTTP port
        assert read_response(sock, 5).startswith(b"HTTP/1.1 400 ")
        sock.close()
    assert httpx.get(serve.url + "/healthz").status_code == 200
    assert len(log_lines(serve, "invalid HTTP request")) == 1
    assert "Invalid HTTP request received." not in serve.log()
