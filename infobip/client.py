"""Async Infobip HTTP client: send SMS, read the balance, verify a key, pull inbound and reports, read message logs,
read and set a number's inbound configuration, read and change the Blocklist.

One pooled ``httpx.AsyncClient`` per ``InfobipClient`` (so per base URL and key); close it with
``aclose()`` or use the client as an async context manager. The API key travels only in the
``Authorization`` header: it is never logged, never in an exception and never in ``repr``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from smsdesk.infobip.errors import (
    InfobipBadResponse,
    InfobipConfigError,
    InfobipConnectionDropped,
    InfobipError,
    InfobipTimeout,
    InfobipTlsError,
    InfobipUnreachable,
    parse_error_body,
)

if TYPE_CHECKING:
    from smsdesk.domain.credential import Credential

log = logging.getLogger("smsdesk.infobip")

SEND_PATH = "/sms/3/messages"
BALANCE_PATH = "/account/1/balance"
INBOX_PATH = "/sms/1/inbox/reports"
REPORTS_PATH = "/sms/3/reports"
LOGS_PATH = "/sms/3/logs"
INBOUND_CONFIG_PATH = "/resource-management/1/inbound-message-configurations"
BLOCKLIST_PATH = "/platform/1/blocklists"
MAX_BLOCKLIST_PAGE = 1000  # Infobip's OpenAPI: size 1 to 1000, default 100
# The scopes Infobip's OpenAPI names (x-scopes) for these endpoints: a key without one gets 403.
INBOUND_CONFIG_SCOPE = "numbers:manage"
BLOCKLIST_SCOPE = "blocklist:manage"
MAX_PULL = 1000
MAX_LOG_ID_CHARS = 2048  # Infobip: messageId takes comma-separated values, at most 2048 characters
MAX_MESSAGE_ID = 200
# Infobip's status groups: what a send answer may say of a message, and what a message logs
# entry may say (the logs document no ACCEPTED). An answer or entry without one of them says
# nothing about the message: its fate stays unknown.
SEND_STATUS_GROUPS = frozenset({"ACCEPTED", "PENDING", "UNDELIVERABLE", "DELIVERED", "EXPIRED", "REJECTED"})
LOG_STATUS_GROUPS = frozenset({"PENDING", "UNDELIVERABLE", "DELIVERED", "EXPIRED", "REJECTED"})

Sleep = Callable[[float], Awaitable[object]]


# --------------------------------------------------------------------------- outbound model

@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One SMS to one destination, with the credential's sending options."""

    sender: str
    to: str
    text: str
    validity_period_hours: int | None = None
    callback_data: str = ""
    principal_entity_id: str = ""
    content_template_id: str = ""
    delivery_url: str | None = None
    message_id: str | None = None  # ours: a retried send carries the same id

    def __post_init__(self) -> None:
        if not self.sender:
            raise ValueError("sender is required")
        if not _digits_or_plus(self.to):
            raise ValueError("to must be an international number")
        if self.message_id is not None and not 1 <= len(self.message_id) <= MAX_MESSAGE_ID:
            raise ValueError(f"message_id must be 1 to {MAX_MESSAGE_ID} characters")
        if self.validity_period_hours is not None and not 1 <= self.validity_period_hours <= 48:
            raise ValueError("validity_period_hours must be 1 to 48")
        if len(self.callback_data) > 4000:
            raise ValueError("callback_data must be at most 4000 characters")
        if self.content_template_id and not self.principal_entity_id:
            raise ValueError("content_template_id needs principal_entity_id")

    @classmethod
    def from_credential(cls, cred: Credential, to: str, text: str, message_id: str | None,
                        delivery_url: str | None = None) -> OutboundSms:
        return cls(
            sender=cred.reply_sender, to=to, text=text, validity_period_hours=cred.validity_period_hours,
            callback_data=cred.callback_data, principal_entity_id=cred.principal_entity_id,
            content_template_id=cred.content_template_id, delivery_url=delivery_url, message_id=message_id,
        )

    def to_payload(self) -> dict[str, Any]:
        """The ``messages[]`` item of POST /sms/3/messages; empty optional parts are left out."""
        destination: dict[str, Any] = {"to": _wire_number(self.to)}
        if self.message_id:
            destination["messageId"] = self.message_id
        message: dict[str, Any] = {
            "sender": _wire_number(self.sender),
            "destinations": [destination],
            "content": {"text": self.text},
        }
        options: dict[str, Any] = {}
        if self.validity_period_hours is not None:
            options["validityPeriod"] = {"amount": self.validity_period_hours, "timeUnit": "HOURS"}
        if self.principal_entity_id:
            dlt = {"principalEntityId": self.principal_entity_id}
            if self.content_template_id:
                dlt["contentTemplateId"] = self.content_template_id
            options["regional"] = {"indiaDlt": dlt}
        if options:
            message["options"] = options
        webhooks: dict[str, Any] = {}
        if self.callback_data:
            webhooks["callbackData"] = self.callback_data
        if self.delivery_url:
            webhooks["delivery"] = {"url": self.delivery_url}
        if webhooks:
            message["webhooks"] = webhooks
        return message


def _digits_or_plus(value: str) -> bool:
    digits = value.removeprefix("+")
    return 1 <= len(digits) <= 64 and digits.isdigit()


def _wire_number(value: str) -> str:
    # Infobip's examples use international digits without '+'; alphanumeric senders pass as-is.
    return value[1:] if value.startswith("+") and value[1:].isdigit() else value


# --------------------------------------------------------------------------- results

@dataclass(frozen=True, slots=True)
class MessageResult:
    message_id: str
    destination: str
    status_group_id: int | None
    status_group: str
    status_id: int | None
    status_name: str
    status_description: str
    message_count: int | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    bulk_id: str | None
    messages: list[MessageResult]


@dataclass(frozen=True, slots=True)
class Balance:
    balance: float
    currency: str


class VerifyOutcome(StrEnum):
    OK = "ok"
    BAD_KEY = "bad_key"
    NO_SCOPE = "no_scope"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    outcome: VerifyOutcome
    message: str  # one line for a user
    balance: Balance | None = None
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is VerifyOutcome.OK

    @property
    def key_valid(self) -> bool:
        """A 403 on the balance still proves the key authenticates."""
        return self.outcome in (VerifyOutcome.OK, VerifyOutcome.NO_SCOPE)


@dataclass(frozen=True, slots=True)
class InboundConfiguration:
    """One inbound configuration of a number (Infobip's MoConfigurationResponse): its forwarding
    action's `type` (HTTP_FORWARD, PULL, ...), `url` and `format` ('' when absent)."""

    configuration_key: str
    keyword: str
    forwarding_type: str
    url: str
    format: str


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One Blocklist record (Infobip's BlocklistResponse)."""

    destination: str
    sender: str
    source_type: str
    channel: str
    created_date: str


# --------------------------------------------------------------------------- retry policy

@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    max_retry_seconds: float = 30.0  # total budget from the first attempt; no retry starts after it
    backoff_base: float = 0.5
    backoff_max: float = 10.0

    def backoff(self, retry_number: int, rand: Callable[[], float]) -> float:
        # Full jitter: many senders hitting one throttled account spread out instead of in waves.
        return rand() * min(self.backoff_max, self.backoff_base * 2 ** (retry_number - 1))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


# --------------------------------------------------------------------------- the client

class InfobipClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float | httpx.Timeout = 15.0,
                 connect_timeout: float = 5.0, max_attempts: int = 4, max_retry_seconds: float = 30.0,
                 backoff_base: float = 0.5, backoff_max: float = 10.0, max_connections: int = 10,
                 sleep: Sleep | None = None, rand: Callable[[], float] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        parts = urlsplit(base_url if "://" in base_url else "https://" + base_url)
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.hostname or parts.netloc
        self.__api_key = api_key
        if isinstance(timeout, httpx.Timeout):
            self.timeout = timeout
        else:
            self.timeout = httpx.Timeout(connect=min(connect_timeout, timeout), read=timeout, write=timeout,
                                         pool=timeout)
        self.retry = RetryPolicy(max(1, max_attempts), max_retry_seconds, backoff_base, backoff_max)
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rand = rand or random.random
        self._transport = transport
        # A small pool: httpcore scans every pooled connection on each request state change, so a
        # large pool costs client CPU; sending more messages per request scales better.
        self._limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"InfobipClient(base_url={self.base_url!r}, api_key=<hidden>)"

    # Created lazily so a client can be built outside a running loop (e.g. in a pool).
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, limits=self._limits, transport=self._transport,
                headers={"Authorization": f"App {self.__api_key}", "Accept": "application/json",
                         "User-Agent": "smsdesk"},
                follow_redirects=False,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def closed(self) -> bool:
        """No connection pool open (never used, or closed)."""
        return self._http is None or self._http.is_closed

    async def __aenter__(self) -> InfobipClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- API calls

    async def send(self, messages: Sequence[OutboundSms], *, policy: RetryPolicy | None = None) -> SendResult:
        """POST /sms/3/messages with one message object per SMS.

        Retried (as `policy` says, the client's by default) only after an answer that refused
        it (429, 5xx) or a failure before anything was written (connection refused, connect
        timeout). A send whose answer was lost or cannot be read (connection dropped after the
        request was written, read timeout, a 200 in a shape Infobip does not document) may have
        been accepted: it raises an error with `outcome_unknown` at once, never tried again
        here. Each destination carries our messageId, so Infobip's message logs can tell.
        The outbox sender makes one attempt per call and retries itself, looking at consent
        again before each attempt.
        """
        if not messages:
            raise ValueError("send needs at least one message")
        body = {"messages": [m.to_payload() for m in messages]}
        data = await self._request("POST", SEND_PATH, policy=policy, json=body)
        try:
            items = data["messages"]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise TypeError("messages is not a list of objects")
            results = [_message_result(item) for item in items]
            return SendResult(bulk_id=_opt_str(data.get("bulkId")), messages=results)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InfobipBadResponse(200, "", "send answer in a shape Infobip does not document "
                                     f"({type(exc).__name__})") from exc

    async def balance(self) -> Balance:
        return await self._balance(self.retry)

    async def _balance(self, policy: RetryPolicy) -> Balance:
        data = await self._request("GET", BALANCE_PATH, policy=policy)
        try:
            return Balance(balance=float(data["balance"]), currency=str(data["currency"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InfobipBadResponse(200, "", "balance response has no balance/currency") from exc

    async def verify(self, *, retry: bool = False) -> VerifyResult:
        """Check the key with the side-effect-free balance call (never the inbox: it consumes)."""
        try:
            # One attempt by default: a person is waiting for the answer.
            bal = await self._balance(self.retry if retry else RetryPolicy(max_attempts=1))
        except InfobipError as exc:
            return verify_result_for(exc, self.host)
        return VerifyResult(VerifyOutcome.OK, f"key works: balance {bal.balance:.2f} {bal.currency}", bal, 200)

    async def pull_inbound(self, limit: int = MAX_PULL) -> list[Any]:
        """GET /sms/1/inbox/reports: the raw ``results``. Pulled messages are consumed at Infobip."""
        return pull_results(await self.pull_answer(INBOX_PATH, limit))

    async def pull_reports(self, limit: int = MAX_PULL) -> list[Any]:
        """GET /sms/3/reports: delivery reports not pushed to a webhook; also consumed."""
        return pull_results(await self.pull_answer(REPORTS_PATH, limit))

    async def pull_answer(self, path: str, limit: int = MAX_PULL) -> bytes:
        """One GET of a read-once pull (INBOX_PATH or REPORTS_PATH): the answer's body, unparsed.

        Infobip returns each message or report once: a pull consumes it, and a pull sent again
        after a lost answer fetches the next batch, not the lost one. So this is never retried,
        here or by the retry policy: one attempt, whatever fails. The body comes back as bytes so
        that the caller can keep it durably before anything reads it (`pull_results` does).
        """
        if path not in (INBOX_PATH, REPORTS_PATH):
            raise ValueError(f"not a pull path: {path}")
        if not 1 <= limit <= MAX_PULL:
            raise ValueError(f"limit must be 1 to {MAX_PULL}")
        body: bytes = await self._attempt("GET", path, raw=True, params={"limit": limit})
        return body

    async def message_logs(self, message_ids: Sequence[str], *,
                           policy: RetryPolicy | None = None) -> dict[str, MessageResult]:
        """GET /sms/3/logs for these messageIds of ours (one request: their comma-joined length
        within Infobip's 2048 characters, see `log_id_chunks`): those Infobip has, with status.

        Logs cover the last 48 hours. Read-only (unlike the pulls, nothing is consumed). An entry
        counts only with one of Infobip's statuses (`LOG_STATUS_GROUPS`): one without, or one
        that cannot be read, says nothing, and its id is left out (still unknown). Entries for ids
        not asked about are ignored; of several entries for one id (a message sent again), an
        accepted one wins over a rejection.
        """
        joined = ",".join(message_ids)
        if not joined or len(joined) > MAX_LOG_ID_CHARS:
            raise ValueError(f"1 to {MAX_LOG_ID_CHARS} characters of messageIds per request")
        data = await self._request("GET", LOGS_PATH, policy=policy, params={"messageId": joined, "limit": MAX_PULL})
        results = data.get("results") if isinstance(data, dict) else None
        if results is None:
            return {}
        if not isinstance(results, list):
            raise InfobipBadResponse(200, "", "logs results is not a list")
        asked = set(message_ids)
        found: dict[str, MessageResult] = {}
        for item in results:
            if not isinstance(item, dict) or item.get("messageId") not in asked:
                continue
            try:
                result = _message_result(item)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # cannot be read: says nothing of the message
            if result.status_group.upper() not in LOG_STATUS_GROUPS:
                continue  # no status of Infobip's: not proof that it has the message
            earlier = found.get(result.message_id)
            if earlier is None or earlier.status_group.upper() == "REJECTED":
                found[result.message_id] = result
        return found

    # ----------------------------------------------------------------- inbound configuration

    async def inbound_configurations(self, number: str, *,
                                     policy: RetryPolicy | None = None) -> list[InboundConfiguration]:
        """GET the SMS inbound configurations of `number` (every keyword's; read-only)."""
        data = await self._request("GET", INBOUND_CONFIG_PATH, policy=policy,
                                   params={"channel": "SMS", "number": _wire_number(number)})
        # Infobip's OpenAPI documents a JSON array; a {"results": [...]} wrapper is accepted too.
        items = data.get("results") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InfobipBadResponse(200, "", "inbound configurations answer is not a list")
        return [_inbound_configuration(item) for item in items if isinstance(item, dict)]

    async def set_forwarding(self, number: str, url: str, *, fmt: str = "MO_JSON_2",
                             policy: RetryPolicy | None = None) -> InboundConfiguration:
        """POST (create or update) the keyword-less SMS configuration of `number` to forward to `url`.
        Setting the same forwarding twice changes nothing, so a lost answer may be sent again."""
        body = {"channel": "SMS", "number": _wire_number(number),
                "forwarding": {"type": "HTTP_FORWARD", "url": url, "format": fmt}}
        data = await self._request("POST", INBOUND_CONFIG_PATH, policy=policy, json=body)
        if not isinstance(data, dict):
            raise InfobipBadResponse(200, "", "inbound configuration answer is not an object")
        return _inbound_configuration(data)

    async def set_pull(self, number: str, *, policy: RetryPolicy | None = None) -> InboundConfiguration:
        """POST the keyword-less SMS configuration of `number` to keep its messages for pulls."""
        body = {"channel": "SMS", "number": _wire_number(number), "forwarding": {"type": "PULL"}}
        data = await self._request("POST", INBOUND_CONFIG_PATH, policy=policy, json=body)
        if not isinstance(data, dict):
            raise InfobipBadResponse(200, "", "inbound configuration answer is not an object")
        return _inbound_configuration(data)

    # ----------------------------------------------------------------- the Blocklist

    async def blocklist_page(self, *, sender: str = "", destination: str = "", page: int = 0,
                             size: int = MAX_BLOCKLIST_PAGE,
                             policy: RetryPolicy | None = None) -> tuple[list[BlockEntry], int]:
        """One page of the SMS Blocklist with these filters: its entries and the number of pages."""
        if not 1 <= size <= MAX_BLOCKLIST_PAGE or page < 0:
            raise ValueError(f"page from 0, size 1 to {MAX_BLOCKLIST_PAGE}")
        params: dict[str, Any] = {"channel": "SMS", "page": page, "size": size}
        if sender:
            params["sender"] = _wire_number(sender)
        if destination:
            params["destination"] = _wire_number(destination)
        data = await self._request("GET", BLOCKLIST_PATH, policy=policy, params=params)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise InfobipBadResponse(200, "", "blocklist answer has no results array")
        paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
        pages = paging.get("totalPages")
        entries = [_block_entry(item) for item in results if isinstance(item, dict) and item.get("destination")]
        return entries, pages if isinstance(pages, int) and pages >= 0 else page + 1

    async def blocklist(self, *, sender: str = "", destination: str = "",
                        policy: RetryPolicy | None = None) -> list[BlockEntry]:
        """Every page of the SMS Blocklist with these filters."""
        found: list[BlockEntry] = []
        page, pages = 0, 1
        while page < pages:
            entries, pages = await self.blocklist_page(sender=sender, destination=destination, page=page,
                                                       policy=policy)
            found.extend(entries)
            page += 1
        return found

    async def block(self, sender: str, destination: str, *, policy: RetryPolicy | None = None) -> None:
        """POST one SMS block of `destination` for `sender` (Infobip answers 202 and creates it
        asynchronously, leaving out duplicates: sending it again is harmless)."""
        await self._request("POST", BLOCKLIST_PATH, policy=policy, raw=True, json={"blocklist": [
            {"sender": _wire_number(sender), "channel": "SMS", "destinations": [{"to": _wire_number(destination)}]}]})

    async def unblock(self, sender: str, destination: str, *, policy: RetryPolicy | None = None) -> None:
        """DELETE the SMS blocks of `destination` for `sender`, whatever their source type (an
        opt-in here is the person's newer wish). 202, asynchronous."""
        await self._request("DELETE", BLOCKLIST_PATH, policy=policy, raw=True, json={"blocklist": [
            {"sender": _wire_number(sender), "channel": "SMS", "destinations": [{"to": _wire_number(destination)}]}]})

    # ----------------------------------------------------------------- transport and retries

    async def _request(self, method: str, path: str, *, policy: RetryPolicy | None = None, **kwargs: Any) -> Any:
        policy = policy or self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(method, path, **kwargs)
            except InfobipError as exc:
                if not exc.retryable or attempt >= policy.max_attempts:
                    raise
                if method == "POST" and exc.outcome_unknown:
                    raise  # it may have taken effect: sent again, it could take effect twice
                delay = exc.retry_after if exc.retry_after is not None else policy.backoff(attempt, self._rand)
                remaining = policy.max_retry_seconds - (time.monotonic() - started)
                if delay > remaining:
                    raise
                log.info("%s %s failed (%s); retry %d in %.2fs", method, path, exc, attempt, delay)
                await self._sleep(delay)

    async def _attempt(self, method: str, path: str, *, raw: bool = False, **kwargs: Any) -> Any:
        try:
            response = await self._client().request(method, path, **kwargs)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # nothing was written
            raise InfobipTimeout(f"no connection in time ({type(exc).__name__})", sent=False) from exc
        except httpx.TimeoutException as exc:
            raise InfobipTimeout(f"no answer in time ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            if _is_tls_failure(exc):
                raise InfobipTlsError(f"TLS handshake failed: {_tls_reason(exc)}") from exc
            raise InfobipUnreachable(_reason(exc)) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise InfobipConnectionDropped(f"connection dropped: {_reason(exc)}") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise InfobipConfigError(f"invalid base URL: {exc}") from exc
        except httpx.TransportError as exc:
            raise InfobipUnreachable(_reason(exc)) from exc
        except httpx.HTTPError as exc:  # the answer came but cannot be read (e.g. its encoding)
            raise InfobipConnectionDropped(f"answer cannot be read: {_reason(exc)}") from exc
        log.debug("%s %s -> %d", method, path, response.status_code)
        if response.status_code >= 400:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise parse_error_body(response.status_code, response.content, retry_after=retry_after)
        if raw:
            return response.content
        try:
            return response.json()
        except ValueError as exc:
            raise InfobipBadResponse(response.status_code, "", f"{path} answered with non-JSON content") from exc


def pull_results(body: bytes) -> list[Any]:
    """The ``results`` array of a pull's answer, as it came, whatever its items (they are
    consumed at Infobip: one that is not an object must not lose its neighbours; the poller keeps
    it as unreadable). InfobipBadResponse when the answer is not JSON or not Infobip's shape (an
    object with a ``results`` array): what it held cannot be read."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InfobipBadResponse(200, "", f"the pull answer is not JSON ({type(exc).__name__})") from exc
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        shape = "has no results array" if isinstance(data, dict) else f"is a JSON {type(data).__name__}, not an object"
        raise InfobipBadResponse(200, "", f"the pull answer {shape}")
    return results


def _message_result(item: dict[str, Any]) -> MessageResult:
    status = item.get("status") or {}
    details = item.get("details") or {}
    return MessageResult(
        message_id=str(item["messageId"]),
        destination=str(item.get("destination") or item.get("to") or ""),
        status_group_id=status.get("groupId"),
        status_group=str(status.get("groupName") or ""),
        status_id=status.get("id"),
        status_name=str(status.get("name") or ""),
        status_description=str(status.get("description") or ""),
        message_count=details.get("messageCount") if isinstance(details, dict) else None,
    )


def log_id_chunks(ids: Sequence[str], max_chars: int = MAX_LOG_ID_CHARS) -> list[list[str]]:
    """`ids` in runs whose comma-joined length stays within `max_chars`: one logs request each."""
    chunks: list[list[str]] = []
    length = max_chars + 1
    for message_id in ids:
        if not 1 <= len(message_id) <= max_chars:
            raise ValueError(f"a messageId must be 1 to {max_chars} characters")
        if length + 1 + len(message_id) > max_chars:
            chunks.append([])
            length = -1
        chunks[-1].append(message_id)
        length += 1 + len(message_id)
    return chunks


def _inbound_configuration(item: dict[str, Any]) -> InboundConfiguration:
    forwarding = item.get("forwarding") if isinstance(item.get("forwarding"), dict) else {}
    return InboundConfiguration(
        configuration_key=str(item.get("configurationKey") or ""), keyword=str(item.get("keyword") or ""),
        forwarding_type=str(forwarding.get("type") or ""), url=str(forwarding.get("url") or ""),
        format=str(forwarding.get("format") or ""))


def _block_entry(item: dict[str, Any]) -> BlockEntry:
    return BlockEntry(destination=str(item.get("destination") or ""), sender=str(item.get("sender") or ""),
                      source_type=str(item.get("sourceType") or ""), channel=str(item.get("channel") or ""),
                      created_date=str(item.get("createdDate") or ""))


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_tls_failure(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLError) for e in _causes(exc)) or "SSL" in str(exc)


def _tls_reason(exc: BaseException) -> str:
    for e in _causes(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return e.verify_message or "certificate verification failed"
        if isinstance(e, ssl.SSLError):
            return e.reason or str(e)
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
    text = str(exc).strip()
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host name not found"
    if "Connection refused" in text or "All connection attempts failed" in text:
        return "connection refused"
    return text or type(exc).__name__


def verify_result_for(exc: InfobipError, host: str) -> VerifyResult:
    """Turn a failed balance call into a user-facing verification outcome."""
    if isinstance(exc, InfobipTlsError):
        return VerifyResult(VerifyOutcome.TLS, f"secure connection to {host} failed ({exc.text})")
    if isinstance(exc, InfobipTimeout):
        return VerifyResult(VerifyOutcome.TIMEOUT, f"{host} did not answer in time; try again later")
    if isinstance(exc, InfobipUnreachable | InfobipConnectionDropped | InfobipConfigError):
        return VerifyResult(VerifyOutcome.UNREACHABLE, f"cannot reach {host} ({exc.text}): check the base URL")
    if exc.status == 401:
        return VerifyResult(VerifyOutcome.BAD_KEY, "the API key was rejected (401): check the key", status=401)
    if exc.status == 403:
        return VerifyResult(VerifyOutcome.NO_SCOPE,
                            "key valid, balance not readable (403: the key lacks the account scope)", status=403)
    return VerifyResult(VerifyOutcome.HTTP_ERROR, f"Infobip answered with an error: {exc}", status=exc.status)


def missing_scope(exc: InfobipError, scope: str, needed_to: str) -> str | None:
    """The one line for a 403 (Infobip's answer to a key without the scope); None for anything else."""
    if exc.status != 403:
        return None
    return f"the API key lacks the scope {scope} needed to {needed_to}"
