"""The socket helpers serve, simulate, the demo and the tests share (infobip/net.py)."""

from __future__ import annotations

import pytest
import uvicorn

from smsdesk.infobip.net import http_url, is_loopback, listen_socket, start_server_thread


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("[::]", False), ("10.0.0.1", False), ("example.com", False), ("", False),
])
def test_is_loopback_reads_brackets_the_same_everywhere(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_http_url_brackets_ipv6() -> None:
    assert http_url("::1", 80) == "http://[::1]:80"
    assert http_url("[::1]", 80) == "http://[::1]:80"
    assert http_url("127.0.0.1", 80) == "http://127.0.0.1:80"


def test_a_server_whose_start_up_fails_is_reported_not_waited_for() -> None:
    async def app(scope, receive, send):  # a lifespan that fails: uvicorn exits its thread
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no"})

    sock = listen_socket("127.0.0.1", 0)
    try:
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="critical"))
        with pytest.raises(RuntimeError, match="the probe did not start"):
            start_server_thread(server, "probe", "the probe", timeout=5, sockets=[sock])
    finally:
        sock.close()
