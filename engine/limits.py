"""HTTP limits of `serve`, enforced where the bytes arrive (uvicorn's httptools protocol).

uvicorn with httptools has no limit on a request head (httptools buffers a header value of any
size: a 300 MB header line was read in full), times out nothing until a first response (a client
that connects and sends nothing, or a byte a second, holds its connection for ever) and, past
the file descriptor limit, fails every connection alike, /healthz included. So, per connection:

- head (request line and headers) larger than `max_header_bytes`: 431 and closed;
- a request not complete (head and body) within `request_timeout` of its first byte, or of the
  connection when it is the first: 408 and closed;
- idle between requests longer than `keep_alive_timeout`: closed (uvicorn's own timer);
- more than `max_connections` open: the connections that have no request in the app, least
  recently active first, are closed to make room; a new connection is refused only when every
  one is in the middle of a request. A load balancer's new connection to /healthz therefore gets
  in while idle or slow clients hold the rest.

Each event is logged on one line (rate-limited per kind: a flood is one line per interval with
a count). The body limit is the receiver's (413), checked as the body arrives.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from smsdesk.engine.ratelog import RateLimitedLog

MAX_HEADER_BYTES = 32 * 1024
REQUEST_TIMEOUT_S = 20.0
KEEP_ALIVE_TIMEOUT_S = 5
MAX_CONNECTIONS = 1000
# The scope key under which a request finds the server's requests in progress (a set of tasks).
REQUESTS_IN_PROGRESS = "smsdesk.requests_in_progress"
log = logging.getLogger("smsdesk.http")


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = MAX_HEADER_BYTES
    request_timeout: float = REQUEST_TIMEOUT_S
    keep_alive_timeout: int = KEEP_ALIVE_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS


_events = RateLimitedLog(log)
# Per server: its connections, least recently active first (who to close when over the cap).
_recent: weakref.WeakKeyDictionary[Any, OrderedDict[GuardedHttpToolsProtocol, None]] = weakref.WeakKeyDictionary()


def _response(status: int, reason: str) -> bytes:
    body = reason.encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (`limits` is set by `protocol_with`)."""

    limits: HttpLimits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request head: its bytes count against max_header_bytes
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far: "\r\n\r\n" may straddle two reads
        self._request_timer: asyncio.TimerHandle | None = None
        self._closed_by_us = False

    # --- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        recent = _recent.setdefault(self.server_state, OrderedDict())
        recent[self] = None
        self._start_request_timer()
        if len(self.connections) > self.limits.max_connections:
            self._make_room(recent)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_timer()
        recent = _recent.get(self.server_state)
        if recent is not None:
            recent.pop(self, None)
        super().connection_lost(exc)

    def _idle(self) -> bool:
        """No request of this connection is in the app: closing it loses nothing."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _make_room(self, recent: OrderedDict[GuardedHttpToolsProtocol, None]) -> None:
        # Connections closed a moment ago stay in the set until the loop reports them lost.
        excess = sum(1 for c in self.connections if not c.transport.is_closing()) - self.limits.max_connections
        if excess <= 0:
            return
        victims = []
        for other in recent:  # least recently active first; the newest (this one) last
            if len(victims) >= excess:
                break
            if other is not self and other._idle() and not other.transport.is_closing():
                victims.append(other)
        for other in victims:
            other._close_quietly()
        if len(victims) < excess:  # every other connection is busy in a request: refuse this one
            _events.event("cap-refused", f"connection cap ({self.limits.max_connections}) reached and every "
                          "connection is in a request: a new connection was refused")
            self._close_quietly()
        else:
            _events.event("cap", f"connection cap ({self.limits.max_connections}) reached: closed "
                          f"{len(victims)} idle connection(s), least recently active first")

    def _close_quietly(self) -> None:
        self._closed_by_us = True
        self._cancel_request_timer()
        self.transport.close()

    # --- request head and timeout ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        recent = _recent.get(self.server_state)
        if recent is not None and self in recent:
            recent.move_to_end(self)
        if self._in_head:
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            head_part = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._head_bytes += head_part
            self._tail = seen[-3:]
            if self._head_bytes > self.limits.max_header_bytes:
                _events.event("header", f"request head over {self.limits.max_header_bytes} bytes: answered 431 "
                              "and closed")
                self._reject(431, "Request Header Fields Too Large")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # uvicorn's set of request tasks in progress, server-wide: the receiver commits webhooks
        # itself only when few are in progress (writer/direct_commits.py).
        self.scope[REQUESTS_IN_PROGRESS] = self.tasks  # type: ignore[literal-required]
        if self._request_timer is None:  # the first request's timer runs from the connection
            self._start_request_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_request_timer()  # complete: how long the app takes is the writer's business
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    def _start_request_timer(self) -> None:
        self._cancel_request_timer()
        self._request_timer = self.loop.call_later(self.limits.request_timeout, self._request_timed_out)

    def _cancel_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        _events.event("timeout", f"request not complete within {self.limits.request_timeout:g} s: answered 408 "
                      "and closed")
        if self.cycle is not None and not self.cycle.response_complete and self.scope is not None:
            self.scope["smsdesk.timed_out"] = True  # type: ignore[typeddict-unknown-key]  # the app: no 2nd line
        self._reject(408, "Request Timeout")

    def _reject(self, status: int, reason: str) -> None:
        """Answer `status` (unless a response has begun) and close; the app, if it runs, sees a disconnect."""
        cycle = self.cycle
        started = cycle is not None and cycle.response_started and not cycle.response_complete
        if not started:
            self.transport.write(_response(status, reason))
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self._close_quietly()


class _OncePerInterval(logging.Filter):
    """uvicorn logs every unparsable request on a line of its own: a client can send thousands."""

    def __init__(self) -> None:
        super().__init__()
        self._log = RateLimitedLog(log)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Invalid HTTP request received.":
            return True
        self._log.event("invalid", "invalid HTTP request: answered 400 and closed")
        return False


_invalid_filter = _OncePerInterval()


def protocol_with(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` setting, bound to these limits."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if _invalid_filter not in uvicorn_log.filters:
        uvicorn_log.addFilter(_invalid_filter)
    return type("SmsdeskHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
