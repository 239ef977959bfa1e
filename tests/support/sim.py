"""Fixtures for tests that talk to the Infobip simulator over real loopback HTTP.

A pytest plugin (tests/conftest.py lists it in ``pytest_plugins``): the fixtures ``sim_state``,
``sim`` and ``receiver`` are available to every test without an import.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smsdesk.infobip.client import InfobipClient
from smsdesk.simulator.http_api import SimulatorState, SimulatorThread

GOOD_KEY = "sim-good-key-0123456789abcdef"
SMS_ONLY_KEY = "sim-sms-only-key-0123456789ab"  # authenticates, but may not read the balance
BAD_KEY = "sim-wrong-key-0000000000000000"


@pytest.fixture(name="sim_state")
def sim_state_fixture() -> SimulatorState:
    # Webhook retries every few milliseconds so retry tests stay fast.
    return SimulatorState(keys={GOOD_KEY}, no_scope_keys={SMS_ONLY_KEY}, webhook_retry_base=0.02,
                          webhook_attempts=3, webhook_timeout=2.0)


@pytest.fixture(name="sim")
def sim_fixture(sim_state: SimulatorState) -> Iterator[SimulatorThread]:
    with SimulatorThread(sim_state) as thread:
        yield thread


def fast_client(base_url: str, key: str = GOOD_KEY, **options: Any) -> InfobipClient:
    """A client whose backoff is milliseconds, so retry tests take no real time."""
    settings: dict[str, Any] = {"max_attempts": 3, "backoff_base": 0.005, "backoff_max": 0.02,
                                "max_retry_seconds": 5.0, "timeout": 5.0}
    settings.update(options)
    return InfobipClient(base_url, key, **settings)


@dataclass
class Receiver:
    """A tiny webhook receiver: records every POST, can be told to fail the next N."""

    fail_next: int = 0
    fail_status: int = 503
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def results(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for p in self.posts if p["path"] == path and p["status"] == 200 for r in p["body"]["results"]]


def _receiver_app(rec: Receiver) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        body = await request.json()
        with rec.lock:
            status = rec.fail_status if rec.fail_next > 0 else 200
            rec.fail_next = max(0, rec.fail_next - 1)
            rec.posts.append({"path": request.url.path, "body": body, "status": status,
                              "authorization": request.headers.get("authorization")})
        return JSONResponse({"ok": status == 200}, status_code=status)

    return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    rec = Receiver()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    rec.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(_receiver_app(rec), log_config=None, log_level="warning",
                                           access_log=False, lifespan="off", http="h11", loop="asyncio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    try:
        yield rec
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
