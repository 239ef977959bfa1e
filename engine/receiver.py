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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smsdesk.engine.direct_commits import DirectCommits, StoreRun
from smsdesk.engine.health import StorageHealth
from smsdesk.engine.limits import REQUESTS_IN_PROGRESS
from smsdesk.engine.mo import InputProblem, parse_delivery_reports, parse_inbound_repairing
from smsdesk.engine.ratelog import RateLimitedLog
from smsdesk.store.direct_commit import DirectCommitter
from smsdesk.store.errors import storage_trouble
from smsdesk.store.inbound import inbound_rows, store_inbound
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.store.writer import Writer, WriterStopped, job

MAX_BODY_BYTES = 1024 * 1024
log = logging.getLogger("smsdesk.receiver")
# A client that goes away mid-body is an everyday network event: one line, and not one per client
# when many do it at once.
_disconnects = RateLimitedLog(log)


def _storage_failure(exc: BaseException) -> bool:
    """Storage unavailable (retry later: 503), as opposed to a job that failed on its input."""
    return isinstance(exc, WriterStopped) or storage_trouble(exc)


@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str

    def allows(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":  # RFC 7617 / 9110: the scheme name is case-insensitive
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
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


async def _read_json(request: Request, max_bytes: int = MAX_BODY_BYTES) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise InputProblem("", f"body larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise InputProblem("", f"body larger than {max_bytes} bytes")
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
    def __init__(self, writer: Writer, auth: BasicAuth | None, *, max_body_bytes: int = MAX_BODY_BYTES,
                 store_run: StoreRun = store_inbound, direct: DirectCommitter | None = None) -> None:
        self.writer = writer
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.store_run = store_run  # the writer job that stores inbound rows (a module-level function)
        self.storage_health = StorageHealth(writer)
        # Commits webhooks on this loop when few are in progress (engine/direct_commits.py); None: the writer.
        self.direct = DirectCommits(direct, writer, self.storage_health) if direct is not None else None

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> JSONResponse:
            if self.auth is not None and not self.auth.allows(request.headers.get("authorization")):
                return _error(401, "authentication required")
            try:
                return await handler(request)
            except InputProblem as exc:
                status = 413 if "larger than" in exc.message else 400
                return _error(status, exc.message, field=exc.where) if exc.where else _error(status, exc.message)
            except ClientDisconnect:
                if not request.scope.get("smsdesk.timed_out"):  # else gateway.limits logged the timeout
                    _disconnects.event("disconnect", "a client disconnected before its request body was "
                                       "read; nothing stored")
                return _error(400, "client disconnected")  # nobody reads it; ends the request quietly
            except (sqlite3.Error, OSError, WriterStopped) as exc:
                log.warning("storage unavailable: %s", exc.__class__.__name__)
                self.storage_health.note_failure(exc)
                return _error(503, "storage unavailable, retry later")

        return guarded

    async def inbound(self, request: Request) -> JSONResponse:
        messages, repairs = parse_inbound_repairing(await _read_json(request, self.max_body_bytes))
        rows = inbound_rows(messages)
        outcomes = None
        if self.direct is not None:  # committed on this loop, when few requests are in progress
            outcomes = await self.direct.store(self.store_run, request.scope.get(REQUESTS_IN_PROGRESS), rows)
        if outcomes is None:
            try:
                # Webhooks that arrive together are stored by one store_messages call (see submit_items).
                outcomes = await self.writer.run_items(self.store_run, rows)
            except Exception as exc:
                if _storage_failure(exc) or len(rows) < 2:
                    raise
                return await self._store_one_by_one(rows, exc, repairs)
        stored = sum(1 for _, row_id, _, _ in outcomes if row_id is not None)
        answer: dict[str, Any] = {"stored": stored, "duplicates": len(outcomes) - stored}
        if repairs:
            answer["repaired"] = [repair.where for repair in repairs]
        return JSONResponse(answer)

    async def _store_one_by_one(self, rows: list[tuple[str, ...]], first: BaseException,
                                repairs: list[Any]) -> JSONResponse:
        """A batch the writer refused for one of its results: each result alone, so that the
        refusal stays with the result that caused it and its neighbours (a STOP) are stored.

        The refused results are answered 500 (Infobip retries the batch; what was stored is then a
        duplicate, acknowledged) and each is logged on one line with its messageId.
        """
        results = await asyncio.gather(*(self.writer.run_items(self.store_run, [row]) for row in rows),
                                       return_exceptions=True)
        if any(isinstance(result, BaseException) and _storage_failure(result) for result in results):
            raise next(r for r in results if isinstance(r, BaseException) and _storage_failure(r))
        failed = []
        stored = duplicates = 0
        for index, (row, result) in enumerate(zip(rows, results, strict=True)):
            if isinstance(result, BaseException):
                failed.append(f"results[{index}]")
                log.error("results[%d] (messageId %r) could not be stored: %s; its batch-mates were",
                          index, row[0][:80], result.__class__.__name__)
            elif result[0][1] is None:
                duplicates += 1
            else:
                stored += 1
        if not failed:  # refused together, stored apart (a conflict between results): all stored
            return JSONResponse({"stored": stored, "duplicates": duplicates})
        return JSONResponse({"error": "some results could not be stored; the others were", "stored": stored,
                             "duplicates": duplicates, "failed": failed}, status_code=500)

    async def delivery_reports(self, request: Request) -> JSONResponse:
        reports = parse_delivery_reports(await _read_json(request, self.max_body_bytes))
        matched = await asyncio.wrap_future(self.writer.submit(job(apply_delivery_reports, reports)))
        return JSONResponse({"matched": matched, "unknown": len(reports) - matched})

    async def health(self, request: Request) -> JSONResponse:
        problem = await self.storage_health.problem()
        if problem:  # webhooks would get 503 now: say so to the load balancer
            return JSONResponse({"status": problem}, status_code=503)
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
