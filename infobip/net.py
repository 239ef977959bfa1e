"""Listening sockets, the URLs that name them, and running a uvicorn server on a thread: what
serve, simulate, the demo and the tests share."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable

import uvicorn


def listen_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A socket bound and listening on host:port (port 0: any free port). Raises OSError.

    Binding before uvicorn starts means a busy port is one clean error, the real port of
    --port 0 is known before the banner is printed, and connections made right after the banner
    wait in the backlog instead of being refused.
    """
    address = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def http_url(host: str, port: int) -> str:
    address = host.strip("[]")
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1, with or without brackets ([::1])."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def start_server_thread(server: uvicorn.Server, name: str, what: str, timeout: float = 10.0,
                        **run_options: object) -> threading.Thread:
    """Run `server` on a daemon thread and wait until it serves; RuntimeError naming `what` if not.

    uvicorn ends a failed start-up (a lifespan that raised) with sys.exit(3): on a thread that only
    ends the thread, and the wait reports it.
    """
    def run() -> None:
        with contextlib.suppress(SystemExit):
            server.run(**run_options)  # type: ignore[arg-type]

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not wait_until(lambda: server.started or not thread.is_alive(), timeout) or not server.started:
        raise RuntimeError(f"{what} did not start")
    return thread


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
