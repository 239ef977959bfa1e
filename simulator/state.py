"""State of the local Infobip simulator: keys, sent messages, queues, faults.

Mutated from the simulator's event loop (HTTP handlers) and from other threads (tests, the demo
feeding inbound traffic), so every mutation holds one lock; work that must run on the
simulator's loop (posting webhooks) is handed over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Status objects as Infobip documents them. DELIVERED_TO_HANDSET and PENDING_ACCEPTED are the
# documented examples; the other final states use the documented group ids with the status names
# of Infobip's status-code table. Pass a full status dict to deliver() for anything else.
PENDING_ACCEPTED = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                    "description": "Message sent to next instance"}
DLR_STATUSES: dict[str, dict[str, Any]] = {
    "DELIVERED": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                  "description": "Message delivered to handset"},
    "UNDELIVERABLE": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 9, "name": "UNDELIVERABLE_NOT_DELIVERED",
                      "description": "Message sent not delivered"},
    "EXPIRED": {"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED",
                "description": "Message expired"},
    "REJECTED": {"groupId": 5, "groupName": "REJECTED", "id": 6, "name": "REJECTED_NETWORK",
                 "description": "Network is forbidden"},
}
NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
            "permanent": False}
MAX_PULL = 1000
DEFAULT_PULL = 50
MAX_LOG_ID_CHARS = 2048  # GET /sms/3/logs: comma-separated messageIds, at most this long


class FaultKind(StrEnum):
    THROTTLE = "429"
    SERVER_ERROR = "500"
    SLOW = "slow"
    DROP = "drop"  # close the connection without any response
    STRANGE = "strange"  # handle the request, then answer 200 with a body Infobip never sends


# Bodies of the STRANGE fault, in turn: 200s that are not Infobip's shape.
STRANGE_BODIES: tuple[bytes, ...] = (
    b'{"bulkId": "b", "messages": "accepted"}',
    b"<html><body>502 Bad Gateway</body></html>",
    b'{"results": []}',
    b'[{"messageId": "x"}]',
    b"",
)


class Gate:
    """Holds a fault's answer until the test releases it: the request is handled (the messages
    accepted and recorded) on arrival, `arrived` is set, and the answer waits for `release()`.
    A test waits for the state it needs, never for time."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._open = threading.Event()

    def release(self) -> None:
        self._open.set()

    @property
    def released(self) -> bool:
        return self._open.is_set()

    async def wait(self) -> None:
        self.arrived.set()
        while not self._open.is_set():
            await asyncio.sleep(0.005)


@dataclass
class Fault:
    kind: FaultKind
    remaining: int | None = 1  # None: until `until`
    until: float | None = None  # time.monotonic() deadline for duration faults
    retry_after: float | None = None  # 429 only; None sends no Retry-After header
    delay: float = 1.0  # slow only
    status: int = 500  # server error only
    # drop: handle the request first, then drop (a lost response); slow: handle it first, then
    # answer `delay` late (the messages are accepted, and recorded, on arrival)
    process: bool = False
    path_prefix: str = ""  # apply only to API paths starting with this
    gate: Gate | None = None  # slow, drop, strange: handle the request, hold the answer until released
    probability: float = 1.0  # the share of the requests it could apply to that it applies to (a mix)
    fired: int = 0  # requests it applied to

    def alive(self, now: float) -> bool:
        return (self.until is None or now < self.until) and (self.remaining is None or self.remaining > 0)

    def applies(self, path: str, now: float) -> bool:
        return self.alive(now) and path.startswith(self.path_prefix)


@dataclass
class SentMessage:
    bulk_id: str
    message_id: str
    to: str
    sender: str
    text: str
    callback_data: str | None
    delivery_url: str | None
    options: dict[str, Any] | None
    sent_at: str
    key: str = ""  # the API key the send was authorised with: which account it went out on
    reported: bool = False
    accepted_at: float = field(default_factory=time.monotonic)  # when it was accepted (the logs' lag)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int  # 0: dropped without an answer
    body: Any = None
    fault: str = ""


@dataclass
class WebhookPost:
    """One delivery attempt of a webhook batch (inbound forward or delivery reports)."""

    kind: str  # "inbound" | "dlr"
    url: str
    count: int
    attempt: int
    status: int  # 0: connection failed
    ok: bool


def infobip_time(moment: datetime | None = None) -> str:
    """Infobip's timestamp form: 2019-11-09T16:00:00.000+0000."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


_ids = itertools.count(1)


def numeric_id() -> str:
    # Infobip ids are long digit strings; a counter keeps them unique within a run.
    return f"{secrets.randbelow(10**9):09d}{next(_ids):010d}"


@dataclass
class BlockRecord:
    """One Blocklist record of an account (the API key), with Infobip's field names in `as_json`."""

    destination: str
    sender: str
    channel: str
    source_type: str
    created_date: str

    def as_json(self, account: str) -> dict[str, Any]:
        return {"sender": self.sender, "destination": self.destination, "sourceType": self.source_type,
                "channel": self.channel, "accountKey": account, "createdDate": self.created_date}


def account_key(key: str) -> str:
    """An account key for an API key: stable, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:32].upper()


@dataclass
class SimulatorState:
    keys: set[str] = field(default_factory=set)
    no_scope_keys: set[str] = field(default_factory=set)  # authenticate, but 403 on the balance and logs
    balance: float = 47.79
    currency: str = "EUR"
    forward_url: str | None = None  # inbound goes here (MO_JSON_2) instead of the pull queue
    forward_auth: tuple[str, str] | None = None  # HTTP Basic for forward and DLR posts
    dlr_url: str | None = None  # default delivery-report URL when a message names none
    dlr_batch: int = 100
    webhook_attempts: int = 4
    webhook_retry_base: float = 1.0  # Infobip retries after base + base*n*n (1 min there)
    webhook_timeout: float = 5.0
    record_bodies: bool = True

    def __post_init__(self) -> None:
        self.keys = set(self.keys) | set(self.no_scope_keys)
        self.lock = threading.RLock()
        self.sent: list[SentMessage] = []
        self.logs_answer: dict[str, Any] | None = None  # GET /sms/3/logs answers this when set
        # How long after it was accepted a message shows in GET /sms/3/logs (Infobip's logging
        # lag, undocumented; 0: at once).
        self.logs_lag: float = 0.0
        self.logs_found: set[str] = set()  # messageIds GET /sms/3/logs has answered with an entry
        self.strange_answers = 0  # STRANGE faults answered (which body: the next in turn)
        self._rng = random.Random()  # faults with a probability: one draw per API request
        self.requests: list[RequestRecord] = []
        self.webhook_posts: list[WebhookPost] = []
        self.webhook_failed: list[dict[str, Any]] = []  # batches given up on
        self.received_inbound: list[dict[str, Any]] = []  # every MO ever queued
        self._inbox: deque[dict[str, Any]] = deque()
        self._reports: deque[dict[str, Any]] = deque()
        self._garbled_pulls: deque[bytes] = deque()  # answers of the next pulls, instead of their results
        self._outgoing: deque[tuple[str, str, list[dict[str, Any]]]] = deque()  # (kind, url, results)
        self._faults: list[Fault] = []
        # Inbound configurations per account (API key) and number: configurationKey, keyword, forwarding.
        self.inbound_configs: dict[tuple[str, str], dict[str, Any]] = {}
        self.blocklists: dict[str, list[BlockRecord]] = {}  # per account (API key)
        self.blocklist_writes: list[tuple[str, str, str, str]] = []  # (method, key, sender, destination) taken
        # Scopes a key lacks (403 on the endpoints that need them), e.g. {"k": {"blocklist:manage"}}.
        self.missing_scopes: dict[str, set[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # ----------------------------------------------------------------- auth

    def key_of(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("App "):
            return None
        key = authorization[4:].strip()
        return key if key in self.keys else None

    def lacks(self, key: str, scope: str) -> bool:
        with self.lock:
            return scope in self.missing_scopes.get(key, set())

    def remove_scope(self, key: str, scope: str) -> None:
        """Make `key` lack `scope`: the endpoints that need it answer 403, as Infobip does."""
        with self.lock:
            self.missing_scopes.setdefault(key, set()).add(scope)

    # ----------------------------------------------------------------- inbound configuration

    def set_inbound_config(self, key: str, number: str, forwarding: dict[str, Any] | None,
                           keyword: str | None = None) -> dict[str, Any]:
        """Create or update the (number, keyword) configuration of account `key` (POST semantics)."""
        number = number.removeprefix("+")
        with self.lock:
            found = self.inbound_configs.get((key, number))
            config = dict(found) if found else {"configurationKey": secrets.token_hex(16).upper(), "channel": "SMS",
                                                "keyword": keyword}
            if forwarding is not None:
                config["forwarding"] = dict(forwarding)
            self.inbound_configs[(key, number)] = config
            return dict(config)

    def inbound_config(self, key: str, number: str) -> list[dict[str, Any]]:
        with self.lock:
            found = self.inbound_configs.get((key, number.removeprefix("+")))
            return [dict(found)] if found else []

    # ----------------------------------------------------------------- the Blocklist

    def block(self, key: str, sender: str, destination: str, channel: str = "SMS",
              source_type: str = "CUSTOM", created_date: str | None = None) -> bool:
        """Add a record unless the same (sender, destination, channel) is there (Infobip leaves out
        duplicates); True when added."""
        with self.lock:
            records = self.blocklists.setdefault(key, [])
            if any(r.sender == sender and r.destination == destination and r.channel == channel for r in records):
                return False
            records.append(BlockRecord(destination, sender, channel, source_type, created_date or infobip_time()))
            return True

    def unblock(self, key: str, sender: str | None, destination: str, channel: str | None,
                source_type: str | None) -> int:
        """Delete the records matching every property given; how many."""
        with self.lock:
            records = self.blocklists.get(key, [])
            keep = [r for r in records if not (
                r.destination == destination and (sender is None or r.sender == sender)
                and (channel is None or r.channel == channel)
                and (source_type is None or r.source_type == source_type))]
            self.blocklists[key] = keep
            return len(records) - len(keep)

    def blocked(self, key: str, **filters: str) -> list[BlockRecord]:
        """The account's records matching the filters (sender, destination, channel, source_type)."""
        with self.lock:
            return [r for r in self.blocklists.get(key, [])
                    if all(getattr(r, name) == value for name, value in filters.items())]

    # ----------------------------------------------------------------- faults

    def inject(self, kind: FaultKind | str, count: int | None = None, *, duration: float | None = None,
               retry_after: float | None = None, delay: float = 1.0, status: int = 500,
               process: bool = False, path_prefix: str = "", gate: Gate | None = None,
               probability: float = 1.0) -> Fault:
        """Make the next ``count`` API requests (default 1), or all for ``duration`` seconds, fail this way.

        `gate`: the request is handled and its answer held until the test releases the gate (slow:
        then answered; drop: then dropped; strange: then answered strangely). `probability`: the
        fault applies to that share of the requests (drawn per request), for a mix of faults;
        with neither count nor duration it lasts until cleared."""
        kind = FaultKind(kind)
        until = time.monotonic() + duration if duration is not None else None
        unbounded = duration is not None or probability < 1.0
        remaining = count if count is not None else (None if unbounded else 1)
        fault = Fault(kind, remaining, until, retry_after, delay, status, process or gate is not None, path_prefix,
                      gate, probability)
        with self.lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        now = time.monotonic()
        with self.lock:
            self._faults = [f for f in self._faults if f.alive(now)]
            draw, share = self._rng.random(), 0.0  # faults with a probability: one draw per request
            for fault in self._faults:
                if fault.applies(path, now):
                    if fault.probability < 1.0:
                        share += fault.probability  # its slice of [0, 1) after the slices before it
                        if not share - fault.probability <= draw < share:
                            continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    fault.fired += 1
                    return fault
        return None

    # ----------------------------------------------------------------- recording

    def record(self, method: str, path: str, status: int, body: Any = None, fault: str = "") -> None:
        with self.lock:
            self.requests.append(RequestRecord(method, path, status, body if self.record_bodies else None, fault))

    def count_requests(self, path: str | None = None, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests
                       if (path is None or r.path == path) and (method is None or r.method == method))

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests if r.path == path and r.body is not None]

    # ----------------------------------------------------------------- sending

    def accept_send(self, body: dict[str, Any], key: str = "", sent_at: str | None = None) -> dict[str, Any]:
        """Record a validated send and build Infobip's 200 answer; `sent_at`: when the request
        arrived (now by default)."""
        bulk_id = numeric_id()
        answer: list[dict[str, Any]] = []
        now = sent_at or infobip_time()
        with self.lock:
            for message in body["messages"]:
                webhooks = message.get("webhooks") or {}
                for dest in message["destinations"]:
                    message_id = dest.get("messageId") or numeric_id()
                    self.sent.append(SentMessage(
                        bulk_id=bulk_id, message_id=message_id, to=dest["to"], sender=message["sender"],
                        text=message["content"]["text"], callback_data=webhooks.get("callbackData"),
                        delivery_url=(webhooks.get("delivery") or {}).get("url"),
                        options=message.get("options"), sent_at=now, key=key,
                    ))
                    answer.append({"messageId": message_id, "status": dict(PENDING_ACCEPTED),
                                   "destination": dest["to"], "details": {"messageCount": 1}})
        return {"bulkId": bulk_id, "messages": answer}

    # ----------------------------------------------------------------- inbound

    def queue_inbound(self, from_: str, to: str, text: str, message_id: str | None = None,
                      received_at: datetime | str | None = None, **extra: Any) -> dict[str, Any]:
        """Queue a mobile-originated SMS: forwarded if ``forward_url`` is set, else kept for pulls."""
        when = received_at if isinstance(received_at, str) else infobip_time(received_at)
        result: dict[str, Any] = {
            "messageId": message_id or numeric_id(), "from": from_.removeprefix("+"), "to": to.removeprefix("+"),
            "text": text, "cleanText": text, "keyword": "", "receivedAt": when, "smsCount": 1,
            "price": {"pricePerMessage": 0, "currency": self.currency}, "callbackData": "",
        }
        result.update(extra)
        with self.lock:
            self.received_inbound.append(result)
            forward_url = self._forwarding_of(result["to"])
            if forward_url:
                self._outgoing.append(("inbound", forward_url, [result]))
            else:
                self._inbox.append(result)
        self.wake()
        return result

    def _forwarding_of(self, number: str) -> str | None:
        """Where a number's inbound goes: its inbound configuration's HTTP_FORWARD URL (None for
        PULL), else `forward_url` (None: kept for pulls). Called with the lock held."""
        for (_key, configured), config in self.inbound_configs.items():
            if configured == number and isinstance(config.get("forwarding"), dict):
                forwarding = config["forwarding"]
                if forwarding.get("type") == "HTTP_FORWARD" and forwarding.get("url"):
                    return str(forwarding["url"])
                if forwarding.get("type") == "PULL":
                    return None
        return self.forward_url

    def pull_inbox(self, limit: int) -> dict[str, Any]:
        with self.lock:
            results = [self._inbox.popleft() for _ in range(min(limit, len(self._inbox)))]
            pending = len(self._inbox)
        return {"results": results, "messageCount": len(results), "pendingMessageCount": pending}

    def queue_raw_inbound(self, value: Any) -> None:
        """Queue a result as it is, whatever it is (a number, a list, an object Infobip would
        never send): the next pull answers it among the others, as a result that is not an object."""
        with self.lock:
            self.received_inbound.append({"raw": value})
            self._inbox.append(value)

    def garble_pull_answers(self, count: int = 1, body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> None:
        """The next `count` pulls (inbox or reports) consume what they return and answer 200 with
        `body` instead (by default a proxy's HTML page: not JSON, so what they held cannot be read)."""
        with self.lock:
            self._garbled_pulls.extend([body] * count)

    def take_garbled_pull(self) -> bytes | None:
        with self.lock:
            return self._garbled_pulls.popleft() if self._garbled_pulls else None

    def lose_pull_answers(self, count: int = 1, path: str = "/sms/1/inbox/reports") -> Fault:
        """The next `count` pulls of `path` consume what they return, and their answer is lost: the
        connection closes without a response (Infobip's pulls are read-once, so what it held is
        gone). The same as `inject("drop", count, process=True, path_prefix=path)`."""
        return self.inject(FaultKind.DROP, count, process=True, path_prefix=path)

    @property
    def inbox_size(self) -> int:
        with self.lock:
            return len(self._inbox)

    # ----------------------------------------------------------------- delivery reports

    def deliver(self, message_ids: list[str] | None = None, status: str | dict[str, Any] = "DELIVERED",
                error: dict[str, Any] | None = None) -> int:
        """Produce delivery reports for sent messages not yet reported (or the ones named).

        Reports go to each message's webhooks.delivery.url, else to ``dlr_url``, in batches of
        ``dlr_batch``; with neither they wait for GET /sms/3/reports. Returns how many.
        """
        status_obj = dict(DLR_STATUSES[status]) if isinstance(status, str) else dict(status)
        error_obj = dict(error or NO_ERROR)
        wanted = set(message_ids) if message_ids is not None else None
        done = infobip_time()
        by_url: dict[str | None, list[dict[str, Any]]] = {}
        with self.lock:
            for sent in self.sent:
                if sent.reported or (wanted is not None and sent.message_id not in wanted):
                    continue
                sent.reported = True
                report = {
                    "bulkId": sent.bulk_id, "messageId": sent.message_id, "to": sent.to, "sender": sent.sender,
                    "sentAt": sent.sent_at, "doneAt": done, "messageCount": 1,
                    "price": {"pricePerMessage": 0.01, "currency": self.currency},
                    "status": status_obj, "error": error_obj,
                }
                if sent.callback_data is not None:
                    report["callbackData"] = sent.callback_data
                by_url.setdefault(sent.delivery_url or self.dlr_url, []).append(report)
            count = 0
            for url, reports in by_url.items():
                count += len(reports)
                if url is None:
                    self._reports.extend(reports)
                    continue
                for start in range(0, len(reports), self.dlr_batch):
                    self._outgoing.append(("dlr", url, reports[start:start + self.dlr_batch]))
        self.wake()
        return count

    def logs(self, message_ids: set[str], key: str, limit: int) -> dict[str, Any]:
        """GET /sms/3/logs: the messages this account sent with these messageIds, newest first.
        Infobip keeps logs 48 hours; the simulator keeps everything it was sent. A test may set
        `logs_answer` to make it answer that body instead (an Infobip that misbehaves)."""
        with self.lock:
            if self.logs_answer is not None:
                return self.logs_answer
            shown_before = time.monotonic() - self.logs_lag
            found = [m for m in reversed(self.sent) if m.message_id in message_ids and m.key == key
                     and m.accepted_at <= shown_before][:limit]
            self.logs_found.update(m.message_id for m in found)
            return {"results": [{
                "sender": m.sender, "destination": m.to, "bulkId": m.bulk_id, "messageId": m.message_id,
                "sentAt": m.sent_at, "messageCount": 1, "status": dict(PENDING_ACCEPTED),
                "content": {"text": m.text}} for m in found]}

    def pull_reports(self, limit: int) -> dict[str, Any]:
        with self.lock:
            return {"results": [self._reports.popleft() for _ in range(min(limit, len(self._reports)))]}

    # ----------------------------------------------------------------- webhook pump hand-over

    def attach(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        with self.lock:
            self._loop, self._wake = loop, wake

    def detach(self) -> None:
        with self.lock:
            self._loop = self._wake = None

    def wake(self) -> None:
        with self.lock:
            loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def take_outgoing(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        with self.lock:
            batches = self._merge(list(self._outgoing))
            self._outgoing.clear()
        return batches

    def _merge(self, items: list[tuple[str, str, list[dict[str, Any]]]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
        # Inbound messages queued together go out in one MO_JSON_2 batch, as Infobip batches them.
        merged: list[tuple[str, str, list[dict[str, Any]]]] = []
        for kind, url, results in items:
            last = merged[-1] if merged else None
            if last and last[0] == kind == "inbound" and last[1] == url and len(last[2]) < self.dlr_batch:
                last[2].extend(results)
            else:
                merged.append((kind, url, list(results)))
        return merged

    def note_post(self, post: WebhookPost) -> None:
        with self.lock:
            self.webhook_posts.append(post)

    def give_up(self, kind: str, url: str, results: list[dict[str, Any]]) -> None:
        with self.lock:
            self.webhook_failed.append({"kind": kind, "url": url, "results": results})

    # ----------------------------------------------------------------- inspection

    def snapshot_sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [s.as_dict() for s in self.sent]

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.requests.clear()
            self.webhook_posts.clear()
            self.webhook_failed.clear()
            self.received_inbound.clear()
            self.logs_found.clear()
            self._inbox.clear()
            self._reports.clear()
            self._garbled_pulls.clear()
            self._outgoing.clear()
            self._faults.clear()
            self.inbound_configs.clear()
            self.blocklists.clear()
            self.blocklist_writes.clear()
