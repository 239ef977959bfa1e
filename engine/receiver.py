"""The webhook receiver: Infobip posts inbound messages and delivery reports here.

A 200 means the data is committed to disk; anything Infobip should retry gets a 503; bad
input gets a 4xx JSON error naming the problem and changes nothing (but an inbound body that
is valid JSON yet no batch is kept in unreadable_inbound for the operator). Inbound results that
cannot be read are kept there too, committed with their readable neighbours, which are stored
and answered 200 as usual (engine/mo.py). Every 4xx is logged: one line per route and status
at most every few seconds, naming the path, the status and the reason, made inert.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from smsdesk.domain.inert import make_inert
from smsdesk.engine.healthz import HealthDetail, StorageHealth, health_answer
from smsdesk.engine.limits import REQUESTS_IN_PROGRESS
from smsdesk.engine.mo import InboundBatch, InputProblem, parse_delivery_reports, parse_inbound_batch
from smsdesk.engine.opt_out_notices import OptOutNotices
from smsdesk.engine.ratelog import RateLimitedLog
from smsdesk.engine.sender_pacing import SenderPacing
from smsdesk.store.db import utcnow
from smsdesk.store.errors import classify
from smsdesk.store.inbound import inbound_rows, store_inbound
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.store.unreadable import insert_unreadable, raw_json
from smsdesk.writer.direct_commits import DirectCommits, DirectCommitter, StoreRun
from smsdesk.writer.jobs import Writer, WriterStopped, job

MAX_BODY_BYTES = 1024 * 1024
log = logging.getLogger("smsdesk.receiver")
# A client that goes away mid-body is an everyday network event: one line, and not one per client
# when many do it at once.
_disconnects = RateLimitedLog(log)
# Every 4xx answered, and every body with unreadable results: one line per kind and interval.
_refusals = RateLimitedLog(log)
_unreadable = RateLimitedLog(log)


def log_refusal(route: str, path: str, status: int, reason: str) -> None:
    """One line for a 4xx: `route` is the kind it is counted under (a fixed set: a client's own
    paths must not grow the rate limiter's table), `path` is shown. No header, no body, no query
    string: only the path and our own reason, made inert and bounded."""
    _refusals.event(f"{route} {status}", make_inert(f"{path[:200]}: answered {status}: {reason[:300]}"))


def _storage_failure(exc: BaseException) -> bool:
    """Storage unavailable (retry later: 503), as opposed to a job that failed on its input."""
    return classify(exc) is not None


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
                 store_run: StoreRun = store_inbound, direct: DirectCommitter | None = None,
                 opt_outs: OptOutNotices | None = None, pacing: SenderPacing | None = None) -> None:
        self.writer = writer
        # Each inbound-message webhook noted: while they arrive, the outbox sender keeps to its share of the writer.
        self.pacing = pacing
        # Opt-outs stored, noted before their 200 goes out: the sender's last word (engine/opt_out_notices.py).
        self.opt_outs = opt_outs or OptOutNotices()
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.store_run = store_run  # the writer job that stores inbound rows (a module-level function)
        self.storage_health = StorageHealth(writer)
        # What /healthz adds besides the storage verdict, e.g. the poller's last lost pull answer.
        self.health_details: list[HealthDetail] = []
        # Commits webhooks on this loop when few are in progress (writer/direct_commits.py); None: the writer.
        self.direct = DirectCommits(direct, writer, self.storage_health) if direct is not None else None

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> JSONResponse:
            route = request.url.path  # one of ours: the router matched it
            if self.auth is not None and not self.auth.allows(request.headers.get("authorization")):
                log_refusal(route, route, 401, "authentication required (the Authorization header is not logged)")
                return _error(401, "authentication required")
            try:
                return await handler(request)
            except InputProblem as exc:
                status = 413 if "larger than" in exc.message else 400
                log_refusal(route, route, status, str(exc))
                return _error(status, exc.message, field=exc.where) if exc.where else _error(status, exc.message)
            except ClientDisconnect:
                if not request.scope.get("smsdesk.timed_out"):  # else engine/limits.py logged the timeout
                    _disconnects.event("disconnect", "a client disconnected before its request body was "
                                       "read; nothing stored")
                return _error(400, "client disconnected")  # nobody reads it; ends the request quietly
            except (sqlite3.Error, OSError, WriterStopped) as exc:
                log.warning("storage unavailable: %s", exc.__class__.__name__)
                self.storage_health.note_failure(exc)
                return _error(503, "storage unavailable, retry later")

        return guarded

    async def inbound(self, request: Request) -> JSONResponse:
        if self.pacing is not None:
            self.pacing.note_inbound()
        payload = await _read_json(request, self.max_body_bytes)
        try:
            batch = parse_inbound_batch(payload)
        except InputProblem as problem:  # no batch at all: nothing to store, but kept for the operator
            await self._keep_unreadable_body(payload, problem)
            raise
        rows = inbound_rows(batch.messages)
        unreadable = batch.unreadable_rows() if batch.unreadable else []
        run = self.store_run
        if unreadable:  # rare: kept in the transaction of their neighbours, through the writer
            run = functools.partial(self.store_run, unreadable=unreadable)
            self._log_unreadable(batch)
        outcomes = None
        if self.direct is not None and not unreadable:  # committed on this loop, when few are in progress
            outcomes = await self.direct.store(run, request.scope.get(REQUESTS_IN_PROGRESS), rows)
        if outcomes is None:
            try:
                # Webhooks that arrive together are stored by one store_messages call (see submit_items).
                outcomes = await self.writer.run_items(run, rows)
            except Exception as exc:
                if _storage_failure(exc) or (len(rows) < 2 and not unreadable):
                    raise
                return await self._store_one_by_one(rows, exc, batch, unreadable)
        await self._note_opt_outs(rows, outcomes)
        stored = sum(1 for _, row_id, _, _ in outcomes if row_id is not None)
        return JSONResponse(_answer(batch, stored, len(outcomes) - stored))

    async def _note_opt_outs(self, rows: list[tuple[str, ...]], outcomes: list[Any]) -> None:
        """The numbers of the opt-outs just stored (outcomes come in the order of their rows), noted
        for the sender; and, before the 200, a reply to one of them already in flight is waited for
        (engine/opt_out_notices.py), so nothing it forbids reaches Infobip after the 200."""
        numbers = [row[1] for row, outcome in zip(rows, outcomes, strict=False)
                   if outcome[2] == "opt-out" and outcome[1] is not None]
        if numbers:
            self.opt_outs.note(numbers)
            await self.opt_outs.wait_departed(numbers)

    async def _keep_unreadable_body(self, payload: Any, problem: InputProblem) -> None:
        """A body that is valid JSON but no batch: one row in unreadable_inbound, then the 400.
        Not kept (storage trouble): logged, and the 400 all the same (a retry reads no better)."""
        row = (utcnow(), "forward", str(problem), raw_json(payload))
        try:
            await asyncio.wrap_future(self.writer.submit(job(insert_unreadable, [row])))
        except Exception as exc:
            log.warning("an unreadable inbound body could not be kept in unreadable_inbound (%s)",
                        exc.__class__.__name__)

    @staticmethod
    def _log_unreadable(batch: InboundBatch) -> None:
        first = batch.unreadable[0]
        _unreadable.event("unreadable", make_inert(
            f"/infobip/inbound: {len(batch.unreadable)} result(s) could not be read, kept in unreadable_inbound "
            f"(`smsdesk inbound unreadable`), the others stored; first: {first.reason[:300]}"))

    async def _store_one_by_one(self, rows: list[tuple[str, ...]], first: BaseException, batch: InboundBatch,
                                unreadable: list[Any]) -> JSONResponse:
        """A batch the writer refused for one of its results: each result alone, so that the
        refusal stays with the result that caused it and its neighbours (a STOP) are stored.
        The unreadable results of the body are kept by one more job of their own.

        The refused results are answered 500 (Infobip retries the batch; what was stored is then a
        duplicate, acknowledged) and each is logged on one line with its messageId.
        """
        calls = [self.writer.run_items(self.store_run, [row]) for row in rows]
        if unreadable:
            calls.append(self.writer.run_items(functools.partial(self.store_run, unreadable=unreadable), []))
        results = await asyncio.gather(*calls, return_exceptions=True)
        if any(isinstance(result, BaseException) and _storage_failure(result) for result in results):
            raise next(r for r in results if isinstance(r, BaseException) and _storage_failure(r))
        failed = []
        stored = duplicates = 0
        for k, (row, result) in enumerate(zip(rows, results, strict=False)):
            index = batch.position(k)
            if isinstance(result, BaseException):
                failed.append(f"results[{index}]")
                log.error("results[%d] (messageId %r) could not be stored: %s; its batch-mates were",
                          index, row[0][:80], result.__class__.__name__)
            elif result[0][1] is None:
                duplicates += 1
            else:
                stored += 1
                await self._note_opt_outs([row], result)
        if unreadable and isinstance(results[-1], BaseException):
            failed.append("unreadable")
            log.error("the unreadable results of a batch could not be kept: %s", results[-1].__class__.__name__)
        answer = _answer(batch, stored, duplicates)
        if not failed:  # refused together, stored apart (a conflict between results): all stored
            return JSONResponse(answer)
        return JSONResponse({"error": "some results could not be stored; the others were", **answer,
                             "failed": failed}, status_code=500)

    async def delivery_reports(self, request: Request) -> JSONResponse:
        reports = parse_delivery_reports(await _read_json(request, self.max_body_bytes))
        matched = await asyncio.wrap_future(self.writer.submit(job(apply_delivery_reports, reports)))
        return JSONResponse({"matched": matched, "unknown": len(reports) - matched})

    async def health(self, request: Request) -> JSONResponse:
        problem = await self.storage_health.problem()
        body, status = health_answer(problem, self.health_details)
        return JSONResponse(body, status_code=status)

    def app(self, lifespan: Any = None) -> Starlette:
        return Starlette(
            routes=[
                Route("/infobip/inbound", self._guard(self.inbound), methods=["POST"]),
                Route("/infobip/delivery-reports", self._guard(self.delivery_reports), methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
            ],
            exception_handlers={HTTPException: _http_exception},
            lifespan=lifespan,
        )


def _answer(batch: InboundBatch, stored: int, duplicates: int) -> dict[str, Any]:
    answer: dict[str, Any] = {"stored": stored, "duplicates": duplicates}
    if batch.repairs:
        answer["repaired"] = [repair.where for repair in batch.repairs]
    if batch.unreadable:
        not_stored = [u.where for u in batch.unreadable if not u.stored_as]
        timed_by_arrival = [u.where for u in batch.unreadable if u.stored_as]
        if not_stored:  # kept in unreadable_inbound only
            answer["unreadable"] = not_stored
        if timed_by_arrival:  # stored with their arrival time (and kept in unreadable_inbound too)
            answer["arrival_time"] = timed_by_arrival
    return answer


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (404 for a path we do not serve, 405 for a method): logged like ours."""
    assert isinstance(exc, HTTPException)
    if 400 <= exc.status_code < 500:
        # Counted under the status alone: any path can be asked for.
        log_refusal("(other)", request.url.path, exc.status_code, exc.detail)
    if exc.status_code in {204, 304}:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
