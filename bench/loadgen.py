"""A lean HTTP/1.1 keep-alive load generator for the ingest bench.

httpx spends milliseconds of client CPU per request with a large pool (see bench/send.py), so
on a 2-core machine it would measure itself, not the server. This sends pre-built requests
over raw asyncio streams and reads status line, headers and Content-Length body: all a POST to
the receiver needs, and cheap enough to leave the server the other core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def blast(host: str, port: int, requests: Sequence[bytes], connections: int) -> tuple[float, int]:
    """Send every request over `connections` keep-alive connections; returns (seconds, non-200 count)."""
    queue = list(reversed(requests))
    failures = 0

    async def connection() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                writer.write(queue.pop())
                if await _read_response(reader) != 200:
                    failures += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - started, failures
