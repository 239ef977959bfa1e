"""The outbox sender: claims due replies, sends them in batches through Infobip, records each fate.

One round (docs/architecture.md, "The outbox"):
1. the writer claims the heads of the reply lines (one per credential and number), re-checking
   consent in the same transaction, and marks them `sending`;
2. the claimed replies of one credential go in requests of up to `MESSAGES_PER_REQUEST`
   messages, a few requests in flight at once;
3. each message's own result is recorded; a result the writer could not record is kept here
   and recorded again later (the reply stays `sending`, so it is never sent again by this
   sender).

Between 1 and 2 a STOP can commit (the claim checked consent before it): just before each
request leaves, its replies' consent is read again, once, and those an opt-out now forbids are
dropped from the request and recorded `cancelled` (`_last_look`). A request retried after a
transient error is a request leaving too: the sender makes each attempt itself (the client's
retry policy, one attempt per call), with a last look before each.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from smsdesk.engine.answer_journal import AnswerJournal
from smsdesk.infobip.client import InfobipClient, MessageResult, OutboundSms, RetryPolicy, SendResult, log_id_chunks
from smsdesk.infobip.errors import InfobipError
from smsdesk.store.credentials import find_credential_by_id_conn
from smsdesk.store.db import connect_reader
from smsdesk.store.models import StoredCredential
from smsdesk.store.outbox import (
    ALWAYS_ALLOWED_KINDS,
    OutboxRow,
    SendOutcome,
    claim_due,
    opted_out_numbers,
    record_outcomes,
    requeue_abandoned,
)
from smsdesk.store.writer import Writer, job

log = logging.getLogger("smsdesk.outbox")
MAX_BACKOFF_SECONDS = 300.0
# Messages per /sms/3/messages request: 100 keeps a request small and the replies that one failed
# request delays to a round's worth, while a large backlog still needs few requests (bench/send.py
# measures the outbox at Infobip-like latency).
MESSAGES_PER_REQUEST = 100
REQUESTS_IN_FLIGHT = 8
CLAIM_LIMIT = MESSAGES_PER_REQUEST * REQUESTS_IN_FLIGHT
MARK_RETRY_MAX_SECONDS = 30.0
# How long a sender's start waits for Infobip's message logs before it sends again what it could
# not look up: nothing is sent meanwhile.
LOGS_DEADLINE_S = 10.0
_MESSAGE_INDEX = re.compile(r"^messages\[(\d+)\]")
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)
OPTED_OUT_AS_IT_LEFT = "the number opted out before the reply was sent (checked as the request left)"


def retry_delay(attempts: int, base: float = 2.0) -> float:
    """Exponential backoff with full jitter, capped: a failing Infobip is not hammered."""
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, base * 2 ** min(attempts, 16)))


class ClientPool:
    """One pooled HTTP client per (base URL, key): connections are reused across sends."""

    def __init__(self, **client_options: object) -> None:
        self._clients: dict[tuple[str, str], InfobipClient] = {}
        self._options = client_options

    def get(self, base_url: str, api_key: str) -> InfobipClient:
        key = (base_url, api_key)
        if key not in self._clients:
            self._clients[key] = InfobipClient(base_url, api_key, **self._options)  # type: ignore[arg-type]
        return self._clients[key]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


class OutboxSender:
    def __init__(self, db_path: Path, writer: Writer, *, delivery_url: str | None = None,
                 interval: float = 0.5, messages_per_request: int = MESSAGES_PER_REQUEST,
                 requests_in_flight: int = REQUESTS_IN_FLIGHT,
                 client_options: dict[str, object] | None = None) -> None:
        self.db_path = db_path
        self.writer = writer
        self.delivery_url = delivery_url
        self.interval = interval
        self.messages_per_request = messages_per_request
        self.claim_limit = messages_per_request * requests_in_flight
        # Few in-request retries: the outbox reschedules failed rows itself, with longer backoff.
        self.clients = ClientPool(**({"max_attempts": 2, "max_retry_seconds": 5.0} | (client_options or {})))
        self._in_flight = asyncio.Semaphore(requests_in_flight)
        self._reader: sqlite3.Connection | None = None
        # The last looks of requests in flight together share the reader, one at a time.
        self._reader_lock = threading.Lock()
        # Outcomes Infobip gave but the writer could not record yet, with when to try again.
        self._unrecorded: list[tuple] = []
        self._record_retry_at = 0.0
        self._record_failures = 0
        self._requeued = False
        self.journal = AnswerJournal(db_path)
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.cancelled = 0  # dropped as the request left: the number had opted out since the claim
        self.requests = 0

    # ----------------------------------------------------------------- the loop

    async def run(self) -> None:
        while True:
            try:
                count = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the writer down, the database locked: try again next round
                log.warning("outbox round failed: %s", exc)
                count = 0
            if count < self.claim_limit:
                await asyncio.sleep(self.interval)

    async def run_once(self) -> int:
        if not self._requeued:
            # Answers a dead sender journaled but never recorded: record them first, so that
            # only replies whose answer never came are sent again.
            if journaled := self.journal.read():
                await self._write(record_outcomes, journaled)
                log.info("recorded %d reply outcomes from the answer journal", len(journaled))
            self.journal.clear()
            # Only this sender may send from the database (serve holds the sender lock), so
            # whatever is `sending` now was left by a sender that died with it in flight. Those
            # that Infobip's logs have were accepted: recorded, not sent again.
            await self._reconcile_in_flight()
            abandoned = await self._write(requeue_abandoned)
            if abandoned:
                log.warning("%d replies were in flight when the last sender stopped; sending them again "
                            "with the same messageId", abandoned)
            self._requeued = True
        if self._unrecorded and not await self._record_pending():
            return 0  # the writer is not recording: claiming more would only grow the pile
        claimed = [OutboxRow._make(row) for row in await self._write(claim_due, self.claim_limit, time.time())]
        if not claimed:
            return 0
        credentials = await asyncio.to_thread(self._credentials, {row.credential_id for row in claimed})
        await asyncio.gather(*(self._send_batch(credentials.get(cred_id), batch)
                               for cred_id, batch in self._batches(claimed)))
        if not self._unrecorded:
            self.journal.clear()  # every answer of the round is in the database
        return len(claimed)

    async def _reconcile_in_flight(self) -> None:
        """Replies a dead sender left `sending`: ask Infobip's message logs (GET /sms/3/logs, by
        our messageId) which of them it accepted, and record those as sent.

        A kill between Infobip accepting a request and the journal write leaves the fate of the
        whole request (up to MESSAGES_PER_REQUEST replies) unknown. What the logs do not show
        (not there yet, unreadable, or not answered within LOGS_DEADLINE_S: nothing is sent
        meanwhile, opt-out confirmations included) is sent again with the same messageId, as
        before: at-least-once, with far fewer repeats. The lookups of every credential and
        chunk run at once, one attempt each; what arrived in time is kept."""
        in_flight, credentials = await asyncio.to_thread(self._left_in_flight)
        by_credential: dict[int, dict[str, int]] = {}
        for row_id, credential_id, our_message_id in in_flight:
            by_credential.setdefault(credential_id, {})[our_message_id] = row_id
        lookups: dict[asyncio.Task[dict[str, MessageResult]], int] = {}
        for credential_id, rows in by_credential.items():
            cred = credentials.get(credential_id)
            if cred is None:
                continue  # deleted: requeued, then cancelled by the claim (store/outbox.py)
            client = self.clients.get(cred.base_url, cred.api_key)
            for chunk in log_id_chunks(list(rows)):
                task = asyncio.ensure_future(client.message_logs(chunk, policy=RetryPolicy(max_attempts=1)))
                lookups[task] = credential_id
        if not lookups:  # every such credential deleted since (asyncio.wait refuses an empty set)
            return
        try:
            done, pending = await asyncio.wait(lookups, timeout=LOGS_DEADLINE_S)
        finally:  # also when the sender itself is cancelled (serve stopping) meanwhile
            unfinished = [task for task in lookups if not task.done()]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)  # their connections closed first
        outcomes: list[SendOutcome] = []
        failures: list[str] = []
        for task in done:
            if task.exception() is not None:  # anything at all: those replies are sent again
                failures.append(str(task.exception()) or type(task.exception()).__name__)
                continue
            rows = by_credential[lookups[task]]
            outcomes += [_accepted_or_rejected(rows[our_message_id], found)
                         for our_message_id, found in task.result().items()]
        if failures or pending:
            log.warning("Infobip's message logs did not answer for some replies in flight (%s); they are sent "
                        "again", "; ".join(failures[:3]) or f"no answer within {LOGS_DEADLINE_S:.0f} s")
        if outcomes:
            await self._write(record_outcomes, [tuple(outcome) for outcome in outcomes])
            log.info("%d replies in flight when the last sender stopped are in Infobip's logs: recorded, "
                     "not sent again", len(outcomes))

    def _left_in_flight(self) -> tuple[list[tuple[int, int, str]], dict[int, StoredCredential]]:
        """The replies left `sending` (id, credential id, our messageId), and their credentials."""
        rows = self._reading().execute(
            "SELECT id, credential_id, our_message_id FROM outbox WHERE status = 'sending' ORDER BY id").fetchall()
        return rows, self._credentials({credential_id for _, credential_id, _ in rows})

    def _reading(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = connect_reader(self.db_path)
        return self._reader

    def _batches(self, rows: Sequence[OutboxRow]) -> list[tuple[int, list[OutboxRow]]]:
        by_credential: dict[int, list[OutboxRow]] = {}
        for row in rows:  # claimed in id order, which each batch keeps
            by_credential.setdefault(row.credential_id, []).append(row)
        size = self.messages_per_request
        return [(cred_id, group[i:i + size]) for cred_id, group in by_credential.items()
                for i in range(0, len(group), size)]

    def _credentials(self, ids: set[int]) -> dict[int, StoredCredential]:
        found = (find_credential_by_id_conn(self._reading(), cred_id) for cred_id in ids)
        return {cred.id: cred for cred in found if cred is not None}

    # ----------------------------------------------------------------- sending

    async def _send_batch(self, cred: StoredCredential | None, rows: list[OutboxRow]) -> None:
        if cred is None:  # deleted between the claim and now: never send with another account
            await self._record([SendOutcome(row.id, "failed", error="the credential was deleted while the "
                                            "reply was being sent") for row in rows])
            return
        outcomes: list[SendOutcome] = []
        sendable: list[tuple[OutboxRow, OutboundSms]] = []
        for row in rows:
            try:
                sendable.append((row, self._sms(row)))
            except ValueError as exc:  # e.g. the person texted from an alphanumeric id: not answerable
                outcomes.append(SendOutcome(row.id, "failed", error=f"cannot send: {exc}"))
        if sendable:
            client = self.clients.get(cred.base_url, cred.api_key)
            async with self._in_flight:
                outcomes += await self._send_with_split(client, sendable)
        for outcome in outcomes:
            if outcome.status == "queued":
                self.retried += 1
            elif outcome.status == "failed":
                self.failed += 1
            elif outcome.status == "cancelled":
                self.cancelled += 1
            else:
                self.sent += 1
        await self._record(outcomes)

    def _sms(self, row: OutboxRow) -> OutboundSms:
        return OutboundSms(
            sender=row.sender, to=row.to_number, text=row.text, validity_period_hours=row.validity_period_hours,
            callback_data=row.callback_data, principal_entity_id=row.principal_entity_id,
            content_template_id=row.content_template_id, delivery_url=self.delivery_url,
            message_id=row.our_message_id,
        )

    async def _send_with_split(self, client: InfobipClient, batch: list[tuple[OutboxRow, OutboundSms]],
                               attempt: int = 1, started: float | None = None) -> list[SendOutcome]:
        """Send one request, less what an opt-out forbids now; a 400 fails only the messages it
        names, or is narrowed by halving; a transient error is retried as the client's policy
        says (each smaller or later request takes its own last look). `attempt` and `started`
        (time.monotonic()) count this request's tries so far, as the client's own retries do."""
        batch, dropped = await self._last_look(batch)
        if not batch:
            return dropped
        return dropped + await self._send_request(client, batch, attempt,
                                                  time.monotonic() if started is None else started)

    async def _last_look(self, batch: list[tuple[OutboxRow, OutboundSms]]
                         ) -> tuple[list[tuple[OutboxRow, OutboundSms]], list[SendOutcome]]:
        """The replies of `batch` that may still leave, and `cancelled` outcomes for the others.

        The claim checked consent in its transaction, but a STOP that commits after it (while the
        claim's answer travels back, or this request waited for a free slot or an earlier
        request to the same Infobip) would otherwise be overtaken by the reply it forbids. One
        read, by consent's key, of the numbers whose replies an opt-out forbids (the confirmation
        and HELP answers are not looked up), in the credential's sandbox as it is now; on a
        thread, never on serve's event loop."""
        checked = [row for row, _ in batch if row.kind not in ALWAYS_ALLOWED_KINDS]
        if not checked:
            return batch, []
        opted_out = await asyncio.to_thread(self._opted_out, checked[0].credential_id, checked[0].sandbox,
                                            sorted({row.to_number for row in checked}))
        if not opted_out:
            return batch, []
        keep = [(row, sms) for row, sms in batch
                if row.kind in ALWAYS_ALLOWED_KINDS or row.to_number not in opted_out]
        dropped = [SendOutcome(row.id, "cancelled", error=OPTED_OUT_AS_IT_LEFT) for row, _ in batch
                   if row.kind not in ALWAYS_ALLOWED_KINDS and row.to_number in opted_out]
        log.info("%d replies dropped as their request left: the numbers opted out since the claim", len(dropped))
        return keep, dropped

    def _opted_out(self, credential_id: int, sandbox: str, numbers: list[str]) -> set[str]:
        with self._reader_lock:
            return opted_out_numbers(self._reading(), credential_id, sandbox, numbers)

    async def _send_request(self, client: InfobipClient, batch: list[tuple[OutboxRow, OutboundSms]],
                            attempt: int, started: float) -> list[SendOutcome]:
        self.requests += 1
        try:
            result = await client.send([sms for _, sms in batch], policy=_ONE_ATTEMPT)
        except InfobipError as exc:
            if exc.retryable and (delay := _retry_in(client.retry, exc, attempt, started)) is not None:
                log.info("POST /sms/3/messages failed (%s); retry %d in %.2fs", exc, attempt, delay)
                await asyncio.sleep(delay)
                return await self._send_with_split(client, batch, attempt + 1, started)
            if exc.retryable:
                return [SendOutcome(row.id, "queued", error=str(exc),
                                    next_attempt_at=time.time() + retry_delay(row.attempts)) for row, _ in batch]
            if exc.status != 400 or len(batch) == 1:
                return [SendOutcome(row.id, "failed", error=str(exc)) for row, _ in batch]
            named = _named_messages(exc, len(batch))
            if named:
                failed = [SendOutcome(row.id, "failed", error=str(exc)) for i, (row, _) in enumerate(batch)
                          if i in named]
                rest = [item for i, item in enumerate(batch) if i not in named]
                return failed + (await self._send_with_split(client, rest) if rest else [])
            half = len(batch) // 2
            return (await self._send_with_split(client, batch[:half])
                    + await self._send_with_split(client, batch[half:]))
        return _outcomes_of(result, [row for row, _ in batch])

    # ----------------------------------------------------------------- recording

    async def _record(self, outcomes: list[SendOutcome]) -> None:
        if not outcomes:
            return
        rows = [tuple(outcome) for outcome in outcomes]
        if any(outcome.status in ("sent", "rejected") for outcome in outcomes):
            await asyncio.to_thread(self.journal.append, rows)  # before the database: see answer_journal
        try:
            await self._write(record_outcomes, rows)
        except Exception as exc:
            # Infobip has answered: keep the answer and record it later, never send again for it.
            self._unrecorded.extend(rows)
            self._schedule_record_retry(exc)

    async def _record_pending(self) -> bool:
        if time.monotonic() < self._record_retry_at:
            return False
        pending, self._unrecorded = self._unrecorded, []
        try:
            await self._write(record_outcomes, pending)
        except Exception as exc:
            self._unrecorded = pending + self._unrecorded
            self._schedule_record_retry(exc)
            return False
        log.info("recorded %d reply outcomes that had waited for the database", len(pending))
        self._record_failures = 0
        return True

    def _schedule_record_retry(self, exc: Exception) -> None:
        self._record_failures += 1
        delay = min(MARK_RETRY_MAX_SECONDS, 0.25 * 2 ** min(self._record_failures, 8))
        self._record_retry_at = time.monotonic() + delay
        log.warning("could not record %d reply outcomes (%s); retrying in %.1f s, nothing is sent again",
                    len(self._unrecorded), exc, delay)

    async def _write(self, func, *args):  # type: ignore[no-untyped-def]
        return await asyncio.wrap_future(self.writer.submit(job(func, *args)))

    @property
    def unrecorded(self) -> int:
        return len(self._unrecorded)

    async def aclose(self) -> None:
        if self._unrecorded:
            # One last try: what stays unrecorded is sent again by the next sender (at-least-once).
            self._record_retry_at = 0.0
            await self._record_pending()
        await self.clients.aclose()
        if self._reader is not None:
            self._reader.close()


def _retry_in(policy: RetryPolicy, exc: InfobipError, attempt: int, started: float) -> float | None:
    """Seconds before trying a request again after transient error `exc` on its `attempt`-th
    try, or None when `policy` allows no more: what the client's own retry loop decides."""
    if attempt >= policy.max_attempts:
        return None
    delay = exc.retry_after if exc.retry_after is not None else policy.backoff(attempt, random.random)
    return None if delay > policy.max_retry_seconds - (time.monotonic() - started) else delay


def _named_messages(exc: InfobipError, count: int) -> set[int]:
    """Indexes of the messages a 400's violations name (`messages[3].destinations[0].to`)."""
    named = set()
    for prop, _ in exc.violations:
        match = _MESSAGE_INDEX.match(prop or "")
        if match and int(match.group(1)) < count:
            named.add(int(match.group(1)))
    return named


def _outcomes_of(result: SendResult, rows: list[OutboxRow]) -> list[SendOutcome]:
    """Each message's own result, found by our messageId (Infobip echoes it), else by position."""
    by_id = {message.message_id: message for message in result.messages}
    outcomes = []
    for i, row in enumerate(rows):
        message = by_id.get(row.our_message_id) or (result.messages[i] if i < len(result.messages) else None)
        if message is None:
            outcomes.append(SendOutcome(row.id, "sent", row.our_message_id, "", ""))
            continue
        outcomes.append(_accepted_or_rejected(row.id, message))
    return outcomes


def _accepted_or_rejected(row_id: int, message: MessageResult) -> SendOutcome:
    """What Infobip's answer (or its log) says of one message: rejected, or sent."""
    if message.status_group.upper() == "REJECTED":
        return SendOutcome(row_id, "rejected", message.message_id, message.status_name, message.status_description)
    return SendOutcome(row_id, "sent", message.message_id, message.status_name, "")
