"""Listening sockets and the URLs that name them, for serve, simulate and the test simulator."""

from __future__ import annotations

import socket


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
