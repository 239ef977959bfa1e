"""The outbox sender: sends queued replies through Infobip and records each row's fate.

Rows are read on a worker thread (own read connection) and every mark goes through the group
commit writer. A reply is marked only after Infobip answered; after a crash the row is still
queued and is sent again with the same messageId of ours, which lets a duplicate be recognised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from gateway.client import InfobipClient, OutboundSms
from gateway.errors import InfobipError
from store.credentials import find_credential_by_id_conn
from store.db import connect
from store.models import StoredCredential
from store.outbox import OutboxRow, due_replies, mark_failed, mark_retry, mark_sent
from store.writer import Writer, job

log = logging.getLogger("smsdesk.outbox")
MAX_BACKOFF_SECONDS = 300.0


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
                 interval: float = 0.5, batch: int = 100, concurrency: int = 16,
                 client_options: dict[str, object] | None = None) -> None:
        self.db_path = db_path
        self.writer = writer
        self.delivery_url = delivery_url
        self.interval = interval
        self.batch = batch
        # Few in-request retries: the outbox reschedules failed rows itself, with longer backoff.
        self.clients = ClientPool(**({"max_attempts": 2, "max_retry_seconds": 5.0} | (client_options or {})))
        self._limit = asyncio.Semaphore(concurrency)
        self._reader: sqlite3.Connection | None = None
        self.sent = 0
        self.failed = 0
        self.retried = 0

    def _due(self) -> list[tuple[OutboxRow, StoredCredential | None]]:
        if self._reader is None:
            self._reader = connect(self.db_path).conn
        rows = due_replies(self._reader, self.batch)
        return [(row, find_credential_by_id_conn(self._reader, row.credential_id)) for row in rows]

    async def run_once(self) -> int:
        due = await asyncio.to_thread(self._due)
        if due:
            await asyncio.gather(*(self._send(row, cred) for row, cred in due))
        return len(due)

    async def run(self) -> None:
        while True:
            try:
                count = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep sending whatever one bad round did
                log.exception("outbox round failed")
                count = 0
            if count < self.batch:
                await asyncio.sleep(self.interval)

    async def _send(self, row: OutboxRow, cred: StoredCredential | None) -> None:
        if cred is None:
            await self._mark(mark_failed, row.id, "credential deleted before the reply was sent")
            return
        try:
            sms = OutboundSms(
                sender=row.sender, to=row.to_number, text=row.text, validity_period_hours=row.validity_period_hours,
                callback_data=row.callback_data, principal_entity_id=row.principal_entity_id,
                content_template_id=row.content_template_id, delivery_url=self.delivery_url,
                message_id=row.our_message_id,
            )
        except ValueError as exc:  # e.g. the person texted from an alphanumeric id: not answerable
            self.failed += 1
            await self._mark(mark_failed, row.id, f"cannot send: {exc}")
            return
        client = self.clients.get(cred.base_url, cred.api_key)
        async with self._limit:
            try:
                result = await client.send([sms])
            except InfobipError as exc:
                if exc.retryable:
                    self.retried += 1
                    await self._mark(mark_retry, row.id, str(exc), time.time() + retry_delay(row.attempts))
                else:
                    self.failed += 1
                    await self._mark(mark_failed, row.id, str(exc))
                return
        first = result.messages[0] if result.messages else None
        self.sent += 1
        await self._mark(mark_sent, row.id, first.message_id if first else row.our_message_id,
                         first.status_name if first else "")

    async def _mark(self, func: Callable[..., None], *args: object) -> None:
        await asyncio.wrap_future(self.writer.submit(job(func, *args)))

    async def aclose(self) -> None:
        await self.clients.aclose()
        if self._reader is not None:
            self._reader.close()
