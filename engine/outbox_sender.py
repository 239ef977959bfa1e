"""The outbox sender: claims due replies, sends them in batches through Infobip, records each fate.

One round (docs/architecture.md, "The outbox"):
1. the writer claims the heads of the reply lines (one per credential and number), re-checking
   consent in the same transaction, and marks them `sending`;
2. the claimed replies of one credential go in requests of up to `MESSAGES_PER_REQUEST`
   messages, a few requests in flight at once;
3. each message's own result is recorded; a result the writer could not record is kept here
   and recorded again later (the reply stays `sending`, so it is never sent again by this
   sender).

A send has three outcomes: accepted, refused, or unknown. A request whose answer did not arrive
or cannot be read (the connection dropped after it was written, a read timeout, a 200 in a shape
Infobip does not document) may have been accepted: it is never tried again as it is. Its
replies become `unknown`, and the sender asks Infobip's message logs (GET /sms/3/logs, by our
messageId) about them while it runs: first `logs_lag` seconds after the answer was lost (how late
Infobip's logs may show a message is not documented), then twice as long after it, and so on,
`logs_looks` times. Those the logs show with one of Infobip's statuses are recorded with it;
only those still missing after the last look are sent again, with the same messageId of ours.
A sender that starts treats what a dead one left in flight the same way.

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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from smsdesk.domain.credential import StoredCredential
from smsdesk.engine.answer_journal import AnswerJournal
from smsdesk.engine.opt_out_notices import OptOutNotices
from smsdesk.engine.sender_pacing import SenderPacing
from smsdesk.infobip.client import (
    SEND_STATUS_GROUPS,
    InfobipClient,
    MessageResult,
    OutboundSms,
    RetryPolicy,
    SendResult,
    log_id_chunks,
)
from smsdesk.infobip.errors import InfobipError
from smsdesk.store.credentials import find_credential_by_id
from smsdesk.store.db import connect_reader
from smsdesk.store.outbox import (
    ALWAYS_ALLOWED_KINDS,
    OutboxRow,
    SendOutcome,
    claim_due,
    in_flight,
    opted_out_numbers,
    record_journaled,
    record_outcomes,
    requeue_unknown,
)
from smsdesk.writer.jobs import Writer, job, run_timed

log = logging.getLogger("smsdesk.outbox")
MAX_BACKOFF_SECONDS = 300.0
# Messages per /sms/3/messages request: 100 keeps a request small and the replies that one failed
# request delays to a round's worth, while a large backlog still needs few requests (bench/send.py
# measures the outbox at Infobip-like latency).
MESSAGES_PER_REQUEST = 100
REQUESTS_IN_FLIGHT = 8
CLAIM_LIMIT = MESSAGES_PER_REQUEST * REQUESTS_IN_FLIGHT
MARK_RETRY_MAX_SECONDS = 30.0
# A reply whose answer was lost is looked up in Infobip's message logs LOGS_LAG_S after that (how
# soon Infobip logs a message is not documented), then 2x, 4x... as long after it, LOGS_LOOKS
# times in all; only what is still missing then is sent again. Defaults of `serve --logs-lag`.
LOGS_LAG_S = 30.0
LOGS_LOOKS = 3
# How long one look waits for Infobip's message logs (nothing is claimed meanwhile); what did not
# answer in time counts as not found by that look.
LOGS_DEADLINE_S = 10.0
_MESSAGE_INDEX = re.compile(r"^messages\[(\d+)\]")
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)
OPTED_OUT_AS_IT_LEFT = "the number opted out before the reply was sent (checked as the request left)"
STOP_AS_IT_LEFT = "a STOP from the number was acknowledged as the request left: its consent is read again"
ASKING_THE_LOGS = "asking Infobip's message logs"
LEFT_IN_FLIGHT = f"the sender stopped while this reply was in flight: {ASKING_THE_LOGS}"


def answer_lost(reason: str) -> str:
    """The `last_error` of a reply whose fate is unknown."""
    return f"answer lost ({reason}): {ASKING_THE_LOGS}"


@dataclass
class _Unknown:
    """A reply whose fate is unknown, and when to ask Infobip's message logs about it next."""

    row_id: int
    credential_id: int
    our_message_id: str
    since: float  # time.monotonic() when its answer was lost (or the sender found it left in flight)
    looks: int = 0
    next_look: float = 0.0


def retry_delay(attempts: int, base: float = 2.0) -> float:
    """Exponential backoff with full jitter, capped: a failing Infobip is not hammered."""
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, base * 2 ** min(attempts, 16)))


class ClientPool:
    """One pooled HTTP client per (base URL, key): connections are reused across sends.

    A client whose credential (`owner`) moved to another key or base URL is retired: no longer
    handed out, and closed by `close_retired()`, which its user calls when none of its requests
    is in flight (the sender: at the end of each round), or by `aclose()`."""

    def __init__(self, **client_options: object) -> None:
        self._clients: dict[tuple[str, str], InfobipClient] = {}
        self._owners: dict[object, tuple[str, str]] = {}
        self._retired: list[InfobipClient] = []
        self._options = client_options

    def get(self, base_url: str, api_key: str, owner: object = None) -> InfobipClient:
        key = (base_url, api_key)
        if owner is not None:
            before = self._owners.get(owner)
            self._owners[owner] = key
            if before is not None and before != key and before not in self._owners.values():
                self._retired.append(self._clients.pop(before))
        if key not in self._clients:
            self._clients[key] = InfobipClient(base_url, api_key, **self._options)  # type: ignore[arg-type]
        return self._clients[key]

    def open_clients(self) -> list[InfobipClient]:
        """The clients handed out and not closed yet (retired ones included)."""
        return [*self._clients.values(), *self._retired]

    async def close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for client in retired:
            await client.aclose()

    async def aclose(self) -> None:
        await self.close_retired()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._owners.clear()


class OutboxSender:
    def __init__(self, db_path: Path, writer: Writer, *, delivery_url: str | None = None,
                 interval: float = 0.5, messages_per_request: int = MESSAGES_PER_REQUEST,
                 requests_in_flight: int = REQUESTS_IN_FLIGHT,
                 client_options: dict[str, object] | None = None,
                 logs_lag: float = LOGS_LAG_S, logs_looks: int = LOGS_LOOKS,
                 opt_outs: OptOutNotices | None = None, pacing: SenderPacing | None = None) -> None:
        self.db_path = db_path
        # Its share of the writer while webhooks arrive (engine/sender_pacing.py): inbound first.
        self.pacing = pacing or SenderPacing()
        # The STOPs serve acknowledged, noted on the loop before their 200 (engine/opt_out_notices.py).
        self.opt_outs = opt_outs or OptOutNotices()
        self.writer = writer
        self.delivery_url = delivery_url
        self.interval = interval
        self.messages_per_request = messages_per_request
        self.claim_limit = messages_per_request * requests_in_flight
        self._last_limit = self.claim_limit  # what the last claim asked for (smaller while webhooks arrive)
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
        self._started = False
        self.journal = AnswerJournal(db_path)
        self.logs_lag = logs_lag
        self.logs_looks = max(1, logs_looks)
        self._unknown: dict[int, _Unknown] = {}  # by row id
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.cancelled = 0  # dropped as the request left: the number had opted out since the claim
        self.requests = 0
        self.unknown = 0  # replies whose answer was lost or unreadable (or left in flight by a dead sender)
        self.found_in_logs = 0  # of those, found in Infobip's message logs: recorded, not sent again
        self.sent_again = 0  # of those, still missing after the last look: sent again, same messageId

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
            if count < self._last_limit:  # the backlog is claimed: wait for more
                await asyncio.sleep(self.interval)

    async def run_once(self) -> int:
        if not self._started:
            await self._start()
        if self._unrecorded and not await self._record_pending():
            return 0  # the writer is not recording: claiming more would only grow the pile
        try:
            await self._look_up_unknown()
            await self.pacing.wait_turn()
            limit = self._last_limit = self.pacing.claim_size(self.claim_limit, self.messages_per_request)
            claimed = [OutboxRow._make(row) for row in await self._write(claim_due, limit, time.time())]
            if claimed:
                credentials = await asyncio.to_thread(self._credentials, {row.credential_id for row in claimed})
                await asyncio.gather(*(self._send_batch(credentials.get(cred_id), batch)
                                       for cred_id, batch in self._batches(claimed)))
        finally:
            await self.clients.close_retired()  # no request of this round is in flight any more
        if not self._unrecorded:
            self.journal.clear()  # every answer of the round is in the database
        return len(claimed)

    async def _start(self) -> None:
        """Take over from a sender that may have died with replies in flight.

        Only this sender may send from the database (serve holds the sender lock), so whatever
        is `sending` or `unknown` now was left by one that died with it in flight. The answers
        it journaled are recorded first; the rest become `unknown`, asked about in Infobip's
        message logs like any lost answer, from `logs_lag` after they were claimed."""
        if journaled := self.journal.read():
            recorded, foreign = await self._write(record_journaled, journaled)
            log.info("recorded %d reply outcomes from the answer journal", recorded)
            if foreign:
                log.warning("%d answer journal entries match no reply of this database (id and messageId): "
                            "not recorded", foreign)
        self.journal.clear()
        left = await self._write(in_flight, LEFT_IN_FLIGHT)
        now, wall = time.monotonic(), time.time()
        for row_id, credential_id, our_message_id, updated_at in left:
            self._expect(row_id, credential_id, our_message_id, now - max(0.0, wall - _timestamp(updated_at, wall)))
        if left:
            log.warning("%d replies were in flight when the last sender stopped; asking Infobip's message logs "
                        "about them before any is sent again", len(left))
        self._started = True

    def _expect(self, row_id: int, credential_id: int, our_message_id: str, since: float) -> None:
        """Ask the logs about this reply `logs_lag` after `since`."""
        self.unknown += 1
        self._unknown[row_id] = _Unknown(row_id, credential_id, our_message_id, since,
                                         next_look=since + self.logs_lag)

    async def _look_up_unknown(self) -> None:
        """The looks that are due: ask Infobip's message logs (GET /sms/3/logs, by our messageId)
        about replies whose answer was lost, record those it has, and put back to the queue
        those still missing after their last look (sent again with the same messageId).

        Every credential and chunk is asked at once, one attempt each, for at most
        LOGS_DEADLINE_S; a lookup that fails or does not answer in time is a look that found
        nothing. A reply whose credential was deleted since is put back too: the claim cancels it."""
        now = time.monotonic()
        due = [item for item in self._unknown.values() if item.next_look <= now]
        if not due:
            return
        credentials = await asyncio.to_thread(self._credentials, {item.credential_id for item in due})
        lookups: dict[asyncio.Task[dict[str, MessageResult]], dict[str, _Unknown]] = {}
        missing: list[_Unknown] = []
        by_credential: dict[int, dict[str, _Unknown]] = {}
        for item in due:
            by_credential.setdefault(item.credential_id, {})[item.our_message_id] = item
        for credential_id, items in by_credential.items():
            cred = credentials.get(credential_id)
            if cred is None:
                missing += [replace_looks(item, self.logs_looks) for item in items.values()]
                continue
            client = self.clients.get(cred.base_url, cred.api_key, owner=credential_id)
            for chunk in log_id_chunks(list(items)):
                task = asyncio.ensure_future(client.message_logs(chunk, policy=RetryPolicy(max_attempts=1)))
                lookups[task] = {our_id: items[our_id] for our_id in chunk}
        done: set[asyncio.Task[dict[str, MessageResult]]] = set()
        if lookups:
            try:
                done, _ = await asyncio.wait(lookups, timeout=LOGS_DEADLINE_S)
            finally:  # also when the sender itself is cancelled (serve stopping) meanwhile
                unfinished = [task for task in lookups if not task.done()]
                for task in unfinished:
                    task.cancel()
                await asyncio.gather(*unfinished, return_exceptions=True)  # their connections closed first
        found: list[tuple[_Unknown, MessageResult]] = []
        failures: list[str] = []
        for task, items in lookups.items():
            if task not in done or task.exception() is not None:
                failures.append(f"no answer within {LOGS_DEADLINE_S:.0f} s" if task not in done
                                else str(task.exception()) or type(task.exception()).__name__)
                missing += items.values()
                continue
            result = task.result()
            for our_id, item in items.items():
                if our_id in result:
                    found.append((item, result[our_id]))
                else:
                    missing.append(item)
        if failures:
            log.warning("Infobip's message logs could not be read for replies whose answer was lost (%s)",
                        "; ".join(failures[:3]))
        if found:
            for item, _ in found:
                del self._unknown[item.row_id]
            self.found_in_logs += len(found)
            self.sent += len(found)
            log.info("%d replies whose answer was lost are in Infobip's message logs: recorded, not sent again",
                     len(found))
            await self._record([_accepted_or_rejected(item.row_id, message) for item, message in found],
                               {item.row_id: item.our_message_id for item, _ in found})
        again: list[_Unknown] = []
        for item in missing:
            item.looks += 1
            if item.looks >= self.logs_looks:
                again.append(item)
            else:
                item.next_look = item.since + self.logs_lag * 2 ** item.looks
        if again:
            reason = (f"not in Infobip's message logs after {self.logs_looks} looks over "
                      f"{self.logs_lag * 2 ** (self.logs_looks - 1):.0f} s: sent again with the same messageId")
            try:
                requeued = await self._write(requeue_unknown, [(item.row_id, reason) for item in again])
            except Exception as exc:  # the writer down: asked again at the next round, then put back
                log.warning("could not put back %d replies whose fate stayed unknown (%s)", len(again), exc)
                return
            for item in again:
                del self._unknown[item.row_id]
            self.sent_again += requeued
            log.warning("%d replies whose answer was lost are not in Infobip's message logs after %d looks: "
                        "sending them again with the same messageId", requeued, self.logs_looks)

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
        found = (find_credential_by_id(self._reading(), cred_id) for cred_id in ids)
        return {cred.id: cred for cred in found if cred is not None}

    # ----------------------------------------------------------------- sending

    async def _send_batch(self, cred: StoredCredential | None, rows: list[OutboxRow]) -> None:
        our_ids = {row.id: row.our_message_id for row in rows}
        if cred is None:  # deleted between the claim and now: never send with another account
            await self._record([SendOutcome(row.id, "failed", error="the credential was deleted while the "
                                            "reply was being sent") for row in rows], our_ids)
            return
        outcomes: list[SendOutcome] = []
        sendable: list[tuple[OutboxRow, OutboundSms]] = []
        for row in rows:
            try:
                sendable.append((row, self._sms(row)))
            except ValueError as exc:  # e.g. the person texted from an alphanumeric id: not answerable
                outcomes.append(SendOutcome(row.id, "failed", error=f"cannot send: {exc}"))
        if sendable:
            client = self.clients.get(cred.base_url, cred.api_key, owner=cred.id)
            async with self._in_flight:
                outcomes += await self._send_with_split(client, sendable)
        lost = time.monotonic()
        for outcome in outcomes:
            if outcome.status == "queued":
                self.retried += 1
            elif outcome.status == "failed":
                self.failed += 1
            elif outcome.status == "cancelled":
                self.cancelled += 1
            elif outcome.status == "unknown":
                self._expect(outcome.row_id, cred.id, our_ids[outcome.row_id], lost)
            else:
                self.sent += 1
        await self._record(outcomes, our_ids)

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
        noted = self.opt_outs.sequence  # before the read: every STOP acknowledged after it is in the notes
        batch, dropped = await self._last_look(batch)
        batch, held = self._last_word(batch, noted)
        if not batch:
            return dropped + held
        # In flight from here until Infobip answers: a STOP for one of these numbers waits for it.
        leaving = self.opt_outs.depart(row.to_number for row, _ in batch if row.kind not in ALWAYS_ALLOWED_KINDS)
        try:
            sent = await self._send_request(client, batch, attempt, time.monotonic() if started is None else started)
        finally:
            self.opt_outs.arrived(leaving)
        return dropped + held + sent

    def _last_word(self, batch: list[tuple[OutboxRow, OutboundSms]], noted: int
                   ) -> tuple[list[tuple[OutboxRow, OutboundSms]], list[SendOutcome]]:
        """On the loop, with nothing awaited before the request is handed to the client: replies
        to numbers whose STOP serve acknowledged since the last look's read are held back (queued
        again: the next claim reads their consent in its transaction and cancels them)."""
        since = self.opt_outs.since(noted)
        if since is not None and not since:
            return batch, []
        held_back = [(row, sms) for row, sms in batch
                     if row.kind not in ALWAYS_ALLOWED_KINDS and (since is None or row.to_number in since)]
        if not held_back:
            return batch, []
        held_ids = {row.id for row, _ in held_back}
        log.info("%d replies held back as their request left: a STOP for their number was just acknowledged",
                 len(held_back))
        return ([(row, sms) for row, sms in batch if row.id not in held_ids],
                [SendOutcome(row.id, "queued", error=STOP_AS_IT_LEFT, next_attempt_at=time.time())
                 for row, _ in held_back])

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
            if exc.outcome_unknown:  # it may have been accepted: never sent again as it is
                log.warning("POST /sms/3/messages: %s; asking Infobip's message logs about its %d replies in %.0f s",
                            exc, len(batch), self.logs_lag)
                return [SendOutcome(row.id, "unknown", error=answer_lost(str(exc))) for row, _ in batch]
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
        except Exception as exc:  # anything else (a bug, a library's surprise): the request may have left
            log.exception("POST /sms/3/messages failed unexpectedly; asking Infobip's message logs about its replies")
            return [SendOutcome(row.id, "unknown", error=answer_lost(type(exc).__name__)) for row, _ in batch]
        return _outcomes_of(result, [row for row, _ in batch])

    # ----------------------------------------------------------------- recording

    async def _record(self, outcomes: list[SendOutcome], our_ids: dict[int, str]) -> None:
        if not outcomes:
            return
        rows = [tuple(outcome) for outcome in outcomes]
        answered = [(our_ids[outcome.row_id], *outcome) for outcome in outcomes
                    if outcome.status in ("sent", "rejected")]
        if answered:
            await asyncio.to_thread(self.journal.append, answered)  # before the database: see answer_journal
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
        # Timed in the writer: under load a job waits behind webhooks, and that wait is theirs.
        seconds, result = await asyncio.wrap_future(self.writer.submit(job(run_timed, func, *args)))
        self.pacing.note_write(seconds)
        return result

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
    """Each message's own result, found by our messageId (Infobip echoes it), else by position
    when the answer has one result per message. A message the answer says nothing about, or
    nothing Infobip documents (no status group of its own), is unknown: asked about in the logs."""
    by_id = {message.message_id: message for message in result.messages}
    by_position = len(result.messages) == len(rows)
    outcomes = []
    for i, row in enumerate(rows):
        message = by_id.get(row.our_message_id) or (result.messages[i] if by_position else None)
        if message is None or message.status_group.upper() not in SEND_STATUS_GROUPS:
            outcomes.append(SendOutcome(row.id, "unknown", error=answer_lost(
                "the answer says nothing of this message" if message is None else
                f"the answer gives this message no status ({message.status_group or 'none'})")))
            continue
        outcomes.append(_accepted_or_rejected(row.id, message))
    return outcomes


def _timestamp(text: str, default: float) -> float:
    """Seconds since the epoch of a stored `utcnow()` text, or `default`."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return default


def replace_looks(item: _Unknown, looks: int) -> _Unknown:
    """`item` with its looks used up but one: the next look that finds nothing puts it back."""
    item.looks = max(item.looks, looks - 1)
    return item


def _accepted_or_rejected(row_id: int, message: MessageResult) -> SendOutcome:
    """What Infobip's answer (or its log) says of one message: rejected, or sent."""
    if message.status_group.upper() == "REJECTED":
        return SendOutcome(row_id, "rejected", message.message_id, message.status_name, message.status_description)
    return SendOutcome(row_id, "sent", message.message_id, message.status_name, "")
