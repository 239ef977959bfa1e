"""The webhook receiver: Infobip posts inbound messages and delivery reports here.

A 200 means the data is committed to disk; anything Infobip should retry gets a 503; bad
input gets a 4xx JSON error naming the problem and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smsdesk.engine.mo import InputProblem, parse_delivery_reports, parse_inbound
from smsdesk.store.inbound import inbound_rows, store_inbound
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.store.writer import Writer, WriterStopped, job

MAX_BODY_BYTES = 1024 * 1024
log = logging.getLogger("smsdesk.receiver")


@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str

    def allows(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        # Compare both parts, always, in constant time: no early exit that leaks which was wrong.
        user_ok = secrets.compare_digest(user, self.user.encode())
        password_ok = secrets.compare_digest(password, self.password.encode())
        return bool(sep) and user_ok and password_ok

    def __repr__(self) -> str:  # never let the password reach a log line
        return f"BasicAuth(user={self.user!r}, password='***')"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="smsdesk"'} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise InputProblem("", f"body larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise InputProblem("", f"body larger than {MAX_BODY_BYTES} bytes")
    if not body:
        raise InputProblem("", "empty body: expected JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputProblem("", f"body is not valid JSON ({exc.__class__.__name__})") from None
    except ValueError:  # an integer beyond Python's 4300-digit conversion limit
        raise InputProblem("", "body has a number too long to read") from None
    except RecursionError:  # arrays nested thousands deep: valid JSON, but no Infobip body
        raise InputProblem("", "body is nested too deeply") from None


Handler = Callable[[Request], Awaitable[JSONResponse]]


class Receiver:
    def __init__(self, writer: Writer, auth: BasicAuth | None) -> None:
        self.writer = writer
        self.auth = auth

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> JSONResponse:
            if self.auth is not None and not self.auth.allows(request.headers.get("authorization")):
                return _error(401, "authentication required")
            try:
                return await handler(request)
            except InputProblem as exc:
                status = 413 if "larger than" in exc.message else 400
                return _error(status, exc.message, field=exc.where) if exc.where else _error(status, exc.message)
            except (sqlite3.Error, OSError, WriterStopped) as exc:
                log.warning("storage unavailable: %s", exc.__class__.__name__)
                return _error(503, "storage unavailable, retry later")

        return guarded

    async def inbound(self, request: Request) -> JSONResponse:
        messages = parse_inbound(await _read_json(request))
        # Webhooks that arrive together are stored by one store_messages call (see submit_items).
        outcomes = await asyncio.wrap_future(self.writer.submit_items(store_inbound, inbound_rows(messages)))
        stored = sum(1 for _, row_id, _, _ in outcomes if row_id is not None)
        return JSONResponse({"stored": stored, "duplicates": len(outcomes) - stored})

    async def delivery_reports(self, request: Request) -> JSONResponse:
        reports = parse_delivery_reports(await _read_json(request))
        matched = await asyncio.wrap_future(self.writer.submit(job(apply_delivery_reports, reports)))
        return JSONResponse({"matched": matched, "unknown": len(reports) - matched})

    async def health(self, request: Request) -> JSONResponse:
        if not self.writer.alive:  # webhooks would get 503 now: say so to the load balancer
            return JSONResponse({"status": "writer down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    def app(self, lifespan: Any = None) -> Starlette:
        return Starlette(
            routes=[
                Route("/infobip/inbound", self._guard(self.inbound), methods=["POST"]),
                Route("/infobip/delivery-reports", self._guard(self.delivery_reports), methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
            ],
            lifespan=lifespan,
        )
