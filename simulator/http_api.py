"""A local Infobip simulator: the SMS endpoints smsdesk uses, answered as Infobip documents them.

Used by tests (real HTTP over loopback, no mocks), by ``smsdesk demo`` and ``smsdesk simulate``.
API routes check ``Authorization: App <key>``; control routes under ``/_sim`` have no auth, so
the simulator binds to loopback only unless told otherwise.

    state = SimulatorState(keys={"k"})
    with SimulatorThread(state) as sim:          # free loopback port, background thread
        client = InfobipClient(sim.url, "k")
        sim.state.queue_inbound("41793026727", "447491163443", "STOP")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from smsdesk.infobip.net import http_url, is_loopback, listen_socket, start_server_thread, wait_until
from smsdesk.simulator.state import (
    DEFAULT_PULL,
    DLR_STATUSES,
    MAX_LOG_ID_CHARS,
    MAX_PULL,
    STRANGE_BODIES,
    Fault,
    FaultKind,
    Gate,
    SimulatorState,
    WebhookPost,
    account_key,
    infobip_time,
)
from smsdesk.simulator.validate import validate_send

__all__ = [
    "FaultKind",
    "Gate",
    "SimulatorState",
    "SimulatorThread",
    "build_simulator_server",
    "create_simulator",
]

log = logging.getLogger("smsdesk.simulator")
CONTROL_PREFIX = "/_sim"


# --------------------------------------------------------------------------- error shapes

def _current_error(status: int, code: str, description: str, action: str = "",
                   violations: list[tuple[str, str]] | None = None) -> JSONResponse:
    return JSONResponse({
        "errorCode": code, "description": description, "action": action,
        "violations": [{"property": p, "violation": v} for p, v in violations or []], "resources": [],
    }, status_code=status)


def _legacy_error(status: int, message_id: str, text: str,
                  validation: dict[str, list[str]] | None = None) -> JSONResponse:
    exc: dict[str, Any] = {"messageId": message_id, "text": text}
    if validation:
        exc["validationErrors"] = validation
    return JSONResponse({"requestError": {"serviceException": exc}}, status_code=status)


def _is_current(path: str) -> bool:
    return path.startswith("/sms/3/")


def _error_for(path: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    texts = {
        401: ("E401", "UNAUTHORIZED", "Invalid login details", "Check the API key in the Authorization header."),
        403: ("E403", "FORBIDDEN", "Access forbidden: the API key lacks the scope for this request",
              "Add the needed scope to the API key."),
        429: ("E429", "TOO_MANY_REQUESTS", "Too many requests", "Slow down and retry later."),
    }
    current, legacy, text, action = texts.get(
        status, (f"E{status}", "GENERAL_ERROR", "Something went wrong. Please contact support.", "Retry later."))
    response = _current_error(status, current, text, action) if _is_current(path) else _legacy_error(
        status, legacy, text)
    response.headers.update(headers or {})
    return response


# --------------------------------------------------------------------------- API routes

def _authorised(state: SimulatorState, request: Request) -> str | None:
    return state.key_of(request.headers.get("authorization"))


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_PULL
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= MAX_PULL else None


def _api_routes(state: SimulatorState) -> list[Route]:
    async def send(request: Request) -> Response:
        path = request.url.path
        arrived = infobip_time()  # the messages' sentAt: when the request came, not when it was read
        try:
            raw = await request.body()
        except ClientDisconnect:
            # The sender died mid-request (the crash tests kill `serve`): nothing was accepted.
            return Response(status_code=499)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
            violations = [("", "request body is not valid JSON")]
        else:
            violations = validate_send(body)
        key = _authorised(state, request)
        if key is None:
            state.record("POST", path, 401, body)
            return _error_for(path, 401)
        if violations:
            state.record("POST", path, 400, body)
            return _current_error(400, "E400", "Request cannot be processed.",
                                  "Check the syntax, violations and adjust the request.", violations)
        state.record("POST", path, 200, body)
        return JSONResponse(state.accept_send(body, key, arrived))

    async def balance(request: Request) -> Response:
        path = request.url.path
        key = _authorised(state, request)
        status = 401 if key is None else 403 if key in state.no_scope_keys else 200
        state.record("GET", path, status)
        if status != 200:
            return _error_for(path, status)
        return JSONResponse({"balance": state.balance, "currency": state.currency})

    async def pull(request: Request, take: Callable[[int], dict[str, Any]], bad_limit: Callable[[], Response]
                   ) -> Response:
        """A pull endpoint: authorised, `limit` in range, then what `take(limit)` consumes."""
        path = request.url.path
        if _authorised(state, request) is None:
            state.record("GET", path, 401)
            return _error_for(path, 401)
        limit = _limit(request)
        if limit is None:
            state.record("GET", path, 400)
            return bad_limit()
        state.record("GET", path, 200)
        answer = take(limit)  # consumed, whatever is answered
        garbled = state.take_garbled_pull()
        if garbled is not None:
            return Response(garbled, media_type="text/html" if garbled.startswith(b"<") else "application/json")
        return JSONResponse(answer)

    async def inbox(request: Request) -> Response:
        return await pull(request, state.pull_inbox, lambda: _legacy_error(
            400, "BAD_REQUEST", "Bad request", {"limit": [f"must be between 1 and {MAX_PULL}"]}))

    async def reports(request: Request) -> Response:
        return await pull(request, state.pull_reports, lambda: _current_error(
            400, "E400", "Request cannot be processed.", "Check the syntax, violations and adjust the request.",
            [("limit", f"must be between 1 and {MAX_PULL}")]))

    async def logs(request: Request) -> Response:
        path = request.url.path
        key = _authorised(state, request)
        if key is None or key in state.no_scope_keys:  # a key without the scope to read logs: 403
            status = 401 if key is None else 403
            state.record("GET", path, status)
            return _error_for(path, status)
        limit = _limit(request)
        ids = ",".join(request.query_params.getlist("messageId"))
        if limit is None or len(ids) > MAX_LOG_ID_CHARS:
            state.record("GET", path, 400)
            violation = (("limit", f"must be between 1 and {MAX_PULL}") if limit is None
                         else ("messageId", f"must be at most {MAX_LOG_ID_CHARS} characters"))
            return _current_error(400, "E400", "Request cannot be processed.",
                                  "Check the syntax, violations and adjust the request.", [violation])
        state.record("GET", path, 200)
        return JSONResponse(state.logs({i for i in ids.split(",") if i}, key, limit))

    def forbidden_or_unauthorised(request: Request, scope: str) -> tuple[str | None, Response | None]:
        """The key, or the 401/403 answer (a key without `scope`: 403, as Infobip answers it)."""
        path = request.url.path
        key = _authorised(state, request)
        status = 401 if key is None else 403 if state.lacks(key, scope) else 0
        if status:
            state.record(request.method, path, status)
            return None, _error_for(path, status)
        return key, None

    async def inbound_configs(request: Request) -> Response:
        path = request.url.path
        key, refused = forbidden_or_unauthorised(request, INBOUND_CONFIG_SCOPE)
        if refused is not None or key is None:
            return refused or _error_for(path, 401)
        if request.method == "GET":
            number = request.query_params.get("number") or ""
            channel = request.query_params.get("channel") or ""
            if not channel or not number:
                state.record("GET", path, 400)
                return _legacy_error(400, "BAD_REQUEST", "Bad request", {
                    "channel" if not channel else "number": ["must not be empty"]})
            state.record("GET", path, 200)
            return JSONResponse(state.inbound_config(key, number) if channel == "SMS" else [])
        body = await _json(request)
        problems = _inbound_config_problems(body)
        if problems:
            state.record("POST", path, 400, body)
            return _legacy_error(400, "BAD_REQUEST", "Bad request", problems)
        state.record("POST", path, 200, body)
        return JSONResponse(state.set_inbound_config(key, body["number"], body.get("forwarding"), body.get("keyword")))

    async def blocklists(request: Request) -> Response:
        path = request.url.path
        key, refused = forbidden_or_unauthorised(request, BLOCKLIST_SCOPE)
        if refused is not None or key is None:
            return refused or _error_for(path, 401)
        if request.method == "GET":
            return _blocklist_get(state, request, key)
        body = await _json(request)
        problems = _blocklist_problems(body, deleting=request.method == "DELETE")
        if problems:
            state.record(request.method, path, 400, body)
            return _legacy_error(400, "BAD_REQUEST", "Bad request", problems)
        for item in body["blocklist"]:
            for destination in item["destinations"]:
                if request.method == "POST":
                    state.block(key, item.get("sender", ""), destination["to"], item.get("channel", "SMS"))
                else:
                    state.unblock(key, item.get("sender"), destination["to"], item.get("channel"),
                                  item.get("sourceType"))
                with state.lock:
                    state.blocklist_writes.append((request.method, key, item.get("sender", ""), destination["to"]))
        state.record(request.method, path, 202, body)
        return Response(status_code=202)

    return [
        Route(INBOUND_CONFIG_PATH, inbound_configs, methods=["GET", "POST"]),
        Route(BLOCKLIST_PATH, blocklists, methods=["GET", "POST", "DELETE"]),
        Route("/sms/3/messages", send, methods=["POST"]),
        Route("/sms/3/logs", logs, methods=["GET"]),
        Route("/account/1/balance", balance, methods=["GET"]),
        Route("/sms/1/inbox/reports", inbox, methods=["GET"]),
        Route("/sms/3/reports", reports, methods=["GET"]),
    ]


# --------------------------------------------------------------------------- inbound configuration, Blocklist

INBOUND_CONFIG_PATH = "/resource-management/1/inbound-message-configurations"
BLOCKLIST_PATH = "/platform/1/blocklists"
INBOUND_CONFIG_SCOPE = "numbers:manage"  # Infobip's OpenAPI x-scopes for these endpoints
BLOCKLIST_SCOPE = "blocklist:manage"
BLOCKLIST_CHANNELS = {"SMS", "EMAIL", "VIBER", "RCS", "MMS", "WHATSAPP", "APPLE_MB"}
SOURCE_TYPES = {"CUSTOM", "MO", "URL_OPT_OUT", "CAMPAIGN"}
FORWARDING_TYPES = {"PULL", "HTTP_FORWARD", "SMPP_FORWARD", "MAIL_FORWARD", "NO_ACTION"}


def _inbound_config_problems(body: Any) -> dict[str, list[str]]:
    if not isinstance(body, dict):
        return {"request": ["must be a JSON object"]}
    problems: dict[str, list[str]] = {}
    if body.get("channel") != "SMS":
        problems["channel"] = ["the simulator knows SMS only"]
    if not isinstance(body.get("number"), str) or not body["number"].removeprefix("+").isdigit():
        problems["number"] = ["must be a number"]
    forwarding = body.get("forwarding")
    if forwarding is not None:
        if not isinstance(forwarding, dict) or forwarding.get("type") not in FORWARDING_TYPES:
            problems["forwarding.type"] = [f"must be one of {sorted(FORWARDING_TYPES)}"]
        elif forwarding["type"] == "HTTP_FORWARD" and not (isinstance(forwarding.get("url"), str)
                                                          and forwarding["url"]):
            problems["forwarding.url"] = ["must not be empty"]
        elif forwarding["type"] == "HTTP_FORWARD":
            forwarding.setdefault("format", "MO_JSON_2")
    return problems


def _blocklist_problems(body: Any, *, deleting: bool) -> dict[str, list[str]]:
    items = body.get("blocklist") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return {"blocklist": ["must not be empty"]}
    problems: dict[str, list[str]] = {}
    for i, item in enumerate(items):
        where = f"blocklist[{i}]"
        if not isinstance(item, dict):
            problems[where] = ["must be an object"]
            continue
        destinations = item.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            problems[f"{where}.destinations"] = ["must not be empty"]
        else:
            for j, destination in enumerate(destinations):
                to = destination.get("to") if isinstance(destination, dict) else None
                if not isinstance(to, str) or not 1 <= len(to) <= 255:
                    problems[f"{where}.destinations[{j}].to"] = ["size must be between 1 and 255"]
        if "channel" in item and item["channel"] not in BLOCKLIST_CHANNELS:
            problems[f"{where}.channel"] = ["unsupported channel"]
        if "sender" in item and not (isinstance(item["sender"], str) and 1 <= len(item["sender"]) <= 255):
            problems[f"{where}.sender"] = ["size must be between 1 and 255"]
        if deleting and "sourceType" in item and item["sourceType"] not in SOURCE_TYPES:
            problems[f"{where}.sourceType"] = ["unsupported source type"]
    return problems


def _blocklist_get(state: SimulatorState, request: Request, key: str) -> Response:
    path = request.url.path
    query = request.query_params
    problems: dict[str, list[str]] = {}
    try:
        page = int(query.get("page", "0"))
        if page < 0:
            problems["page"] = ["must be greater than or equal to 0"]
    except ValueError:
        page, problems["page"] = 0, ["must be a number"]
    try:
        size = int(query.get("size", "100"))
        if not 1 <= size <= 1000:
            problems["size"] = ["must be less than or equal to 1000" if size > 1000 else
                                "must be greater than or equal to 1"]
    except ValueError:
        size, problems["size"] = 100, ["must be a number"]
    if "channel" in query and query["channel"] not in BLOCKLIST_CHANNELS:
        problems["channel"] = ["unsupported channel"]
    if "sourceType" in query and query["sourceType"] not in SOURCE_TYPES:
        problems["sourceType"] = ["unsupported source type"]
    for name in ("sender", "destination"):
        if name in query and not 1 <= len(query[name]) <= 255:
            problems[name] = ["size must be between 1 and 255"]
    if problems:
        state.record("GET", path, 400)
        return _legacy_error(400, "BAD_REQUEST", "Bad request", problems)
    filters = {field: query[name] for name, field in (("sender", "sender"), ("destination", "destination"),
                                                     ("channel", "channel"), ("sourceType", "source_type"))
               if name in query}
    records = state.blocked(key, **filters)
    state.record("GET", path, 200)
    account = account_key(key)
    total = len(records)
    return JSONResponse({
        "results": [r.as_json(account) for r in records[page * size:(page + 1) * size]],
        "paging": {"page": page, "size": size, "totalPages": -(-total // size), "totalResults": total},
    })


# --------------------------------------------------------------------------- control routes

def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _control_routes(state: SimulatorState) -> list[Route]:
    async def sent(request: Request) -> Response:
        return JSONResponse(state.snapshot_sent())

    async def requests_(request: Request) -> Response:
        with state.lock:
            rows = [{"method": r.method, "path": r.path, "status": r.status, "fault": r.fault}
                    for r in state.requests]
        return JSONResponse(rows)

    async def inbound(request: Request) -> Response:
        data = await _json(request)
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k]
                                                     for k in ("from", "to", "text")):
                return _bad("each inbound message needs non-empty from, to and text strings")
        queued = [state.queue_inbound(item["from"], item["to"], item["text"], item.get("messageId"),
                                      item.get("receivedAt")) for item in items]
        return JSONResponse({"queued": len(queued), "messageIds": [q["messageId"] for q in queued]})

    async def inbound_raw(request: Request) -> Response:
        """Queue each item of a JSON array as it is: results a pull answers that are not objects."""
        data = await _json(request)
        if not isinstance(data, list):
            return _bad("body must be a JSON array of results, queued as they are")
        for item in data:
            state.queue_raw_inbound(item)
        return JSONResponse({"queued": len(data)})

    async def deliver(request: Request) -> Response:
        data = await _json(request)
        data = data if isinstance(data, dict) else {}
        status = data.get("status", "DELIVERED")
        if isinstance(status, str) and status not in DLR_STATUSES:
            return _bad(f"status must be one of {sorted(DLR_STATUSES)} or a status object")
        ids = data.get("messageIds")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            return _bad("messageIds must be a list of strings")
        return JSONResponse({"reports": state.deliver(ids, status, data.get("error"))})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_faults()
            return JSONResponse({"cleared": True})
        data = await _json(request)
        if not isinstance(data, dict):
            return _bad("body must be a JSON object")
        try:
            fault = state.inject(
                str(data.get("kind")), data.get("count"), duration=data.get("duration"),
                retry_after=data.get("retryAfter"), delay=float(data.get("delay", 1.0)),
                status=int(data.get("status", 500)), process=bool(data.get("process", False)),
                path_prefix=str(data.get("pathPrefix", "")), probability=float(data.get("probability", 1.0)),
            )
        except (TypeError, ValueError):
            return _bad(f"kind must be one of {[k.value for k in FaultKind]}; count/duration/delay numbers")
        return JSONResponse({"kind": fault.kind.value, "remaining": fault.remaining})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    return [
        Route(f"{CONTROL_PREFIX}/sent", sent, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/requests", requests_, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/inbound", inbound, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/inbound-raw", inbound_raw, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/deliver", deliver, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/faults", faults, methods=["POST", "DELETE"]),
        Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
    ]


# --------------------------------------------------------------------------- fault layer

class _FaultLayer:
    """Raw ASGI wrapper that applies injected faults to API requests before Starlette sees them."""

    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        path = scope.get("path", "")
        fault = None
        if scope["type"] == "http" and not path.startswith(CONTROL_PREFIX):
            fault = self.state.take_fault(path)
        if fault is None:
            await self.app(scope, receive, send)
            return None
        return await self._apply(fault, scope, receive, send)

    async def _apply(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> Any:
        path, method = scope["path"], scope["method"]
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)

        async def handled_then_held() -> None:
            """Take the request at once (what it sends is accepted and recorded on arrival, when
            the sender's request left); then wait for the fault's gate, or its delay."""
            await self.app(scope, receive, hold)
            if fault.gate is not None:
                await fault.gate.wait()
            elif fault.kind is FaultKind.SLOW:
                await asyncio.sleep(fault.delay)

        if fault.kind is FaultKind.SLOW:
            if fault.process:
                # Infobip takes the request at once and answers late, or when the test says.
                await handled_then_held()
                for message in held:
                    await send(message)
                return None
            await asyncio.sleep(fault.delay)
            await self.app(scope, receive, send)
            return None
        if fault.kind is FaultKind.STRANGE:
            # Infobip (or a proxy before it) took the request and answers 200 in a shape Infobip
            # never sends: whether the messages were accepted cannot be read from it.
            await handled_then_held()
            with self.state.lock:
                body = STRANGE_BODIES[self.state.strange_answers % len(STRANGE_BODIES)]
                self.state.strange_answers += 1
            content_type = b"text/html" if body.startswith(b"<") else b"application/json"
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
            await send({"type": "http.response.body", "body": body})
            return None
        if fault.kind is FaultKind.DROP:
            if fault.process:
                # The request takes effect but its answer is lost: what makes a retried send a
                # possible duplicate at Infobip. The connection closes once the gate is released.
                await handled_then_held()
            else:
                self.state.record(method, path, 0, fault="drop")
            # uvicorn closes the transport without writing anything when an ASGI callable returns
            # a value other than None: the client sees "Server disconnected without sending a
            # response" (httpx.RemoteProtocolError), i.e. a dropped connection.
            return _DROP_NOTE
        status = 429 if fault.kind is FaultKind.THROTTLE else fault.status
        headers = {}
        if fault.kind is FaultKind.THROTTLE and fault.retry_after is not None:
            headers["Retry-After"] = _header_seconds(fault.retry_after)
        self.state.record(method, path, status, fault=fault.kind.value)
        await _error_for(path, status, headers)(scope, receive, send)
        return None


def _header_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------- webhook pump

async def _post_batch(state: SimulatorState, http: httpx.AsyncClient, kind: str, url: str,
                      results: list[dict[str, Any]]) -> None:
    auth = httpx.BasicAuth(*state.forward_auth) if state.forward_auth else None
    body: dict[str, Any] = {"results": results}
    if kind == "inbound":
        body.update(messageCount=len(results), pendingMessageCount=0)
    for attempt in range(1, max(1, state.webhook_attempts) + 1):
        status = 0
        try:
            response = await http.post(url, json=body, auth=auth)
            status = response.status_code
        except httpx.HTTPError as exc:
            log.info("%s webhook to %s failed: %s", kind, url, type(exc).__name__)
        ok = status == 200  # Infobip documents that it expects 200
        state.note_post(WebhookPost(kind, url, len(results), attempt, status, ok))
        if ok:
            return
        if attempt < state.webhook_attempts:
            # Infobip retries after 1 min + 1 min * n * n; the base is configurable here.
            n = attempt - 1
            await asyncio.sleep(state.webhook_retry_base * (1 + n * n))
    log.warning("%s webhook to %s given up after %d attempts", kind, url, state.webhook_attempts)
    state.give_up(kind, url, results)


@contextlib.asynccontextmanager
async def _pump(state: SimulatorState) -> AsyncIterator[None]:
    wake = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=state.webhook_timeout) as http:
        async def run() -> None:
            while True:
                await wake.wait()
                wake.clear()
                for kind, url, results in state.take_outgoing():
                    task = asyncio.create_task(_post_batch(state, http, kind, url, results))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

        runner = asyncio.create_task(run())
        state.attach(asyncio.get_running_loop(), wake)
        wake.set()  # anything queued before start-up
        try:
            yield
        finally:
            state.detach()
            runner.cancel()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(runner, *tasks, return_exceptions=True)


# --------------------------------------------------------------------------- app and servers

_DROP_NOTE = "simulated dropped connection"


class _QuietDrops(logging.Filter):
    """uvicorn logs an error for each deliberate drop; only those records are filtered out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and _DROP_NOTE in record.args)


_quiet_drops = _QuietDrops()


def create_simulator(state: SimulatorState) -> ASGIApp:
    logging.getLogger("uvicorn.error").addFilter(_quiet_drops)  # adding the same filter twice is a no-op
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _pump(state):
            yield

    app = Starlette(routes=_api_routes(state) + _control_routes(state), lifespan=lifespan)
    app.state.simulator = state
    return _FaultLayer(app, state)


def build_simulator_server(state: SimulatorState, host: str = "127.0.0.1", port: int = 9090, *,
                           log_level: str = "warning", log_config: dict[str, Any] | None = None,
                           allow_public: bool = False) -> uvicorn.Server:
    """A uvicorn server for the simulator; ``server.run()`` blocks. Loopback only by default."""
    if not allow_public and not is_loopback(host):
        raise ValueError(f"the simulator has unauthenticated control routes; refusing to bind {host}")
    config = uvicorn.Config(create_simulator(state), host=host, port=port, log_level=log_level,
                            log_config=log_config, access_log=False, lifespan="on", http="h11",
                            loop="asyncio", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


class SimulatorThread:
    """Run the simulator on a free loopback port in a background thread (tests, demo mode)."""

    def __init__(self, state: SimulatorState | None = None, *, keys: Iterable[str] = ("test-key",),
                 host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.state = state if state is not None else SimulatorState(keys=set(keys))
        self.host = host
        # Bound here, before the thread starts: the port is known up front without a race.
        self._sock = listen_socket(host, port)
        self.port: int = self._sock.getsockname()[1]
        self.server = build_simulator_server(self.state, host, self.port, log_level=log_level)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        self._thread = start_server_thread(self.server, f"infobip-sim:{self.port}", "the Infobip simulator",
                                           timeout, sockets=[self._sock])
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
        """Poll ``predicate`` (e.g. "the receiver got 3 reports") until true or timeout."""
        return wait_until(predicate, timeout, interval)
