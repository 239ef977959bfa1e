"""serve's Blocklist task: pushes the queued blocks and unblocks (store/blocklist_queue.py) to
Infobip's Blocklist, one at a time, apart from everything else serve does.

The consent change and its push were committed together before anything here runs, so a
Blocklist that fails, hangs or refuses delays no webhook, consent change or reply: this task
only falls behind. Each push is marked `sending` (committed) before its request leaves; a serve
killed meanwhile leaves it `sending`, which the next start turns into `unknown`. An `unknown`
push (its answer lost, or serve stopped) is never sent again blindly: the Blocklist is read first
(GET with the destination and the sender), and only a block that is not there (an unblock that
is) is sent again. Failures are retried with backoff, without end, except a 400 (refused for good,
shown in `smsdesk consent blocklist-queue`); a key without the scope gets one log line per push
and the push waits.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

from smsdesk.domain.credential import StoredCredential
from smsdesk.domain.inert import make_inert
from smsdesk.engine.outbox_sender import ClientPool
from smsdesk.infobip.client import BLOCKLIST_SCOPE, InfobipClient, RetryPolicy, missing_scope
from smsdesk.infobip.errors import InfobipError
from smsdesk.store.blocklist_queue import BLOCK, QueuedPush, due, mark_done, mark_refused, mark_retry, mark_sending
from smsdesk.store.blocklist_queue import reset_in_flight as _reset_in_flight
from smsdesk.store.credentials import list_credentials
from smsdesk.store.db import connect, utcnow
from smsdesk.writer.jobs import Writer, job

log = logging.getLogger("smsdesk.blocklist")
ONE_TRY = RetryPolicy(max_attempts=1)  # the queue retries, with its own backoff


def _reset(conn: sqlite3.Connection) -> int:
    return _reset_in_flight(conn, utcnow())


class BlocklistSync:
    def __init__(self, db_path: Path, writer: Writer, *, interval: float = 1.0, backoff_base: float = 1.0,
                 backoff_max: float = 600.0, client_options: dict[str, object] | None = None) -> None:
        self.db_path = db_path
        self.writer = writer
        self.interval = interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clients = ClientPool(**(client_options or {"timeout": 15.0, "max_attempts": 1}))
        self._reader: sqlite3.Connection | None = None
        self.pushed = 0

    def _reading(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = connect(self.db_path).conn
        return self._reader

    def _due(self) -> tuple[list[QueuedPush], dict[int, StoredCredential]]:
        conn = self._reading()
        pushes = due(conn, time.time())
        # The credentials (each validated: costly with many) only when something is due.
        return pushes, ({c.id: c for c in list_credentials(conn)} if pushes else {})

    async def _write(self, func: object, *args: object) -> object:
        return await asyncio.wrap_future(self.writer.submit(job(func, *args)))  # type: ignore[arg-type]

    async def run(self) -> None:
        while True:
            try:
                await self._write(_reset)
                break
            except Exception as exc:  # the writer restarting, the file locked: try again
                log.warning("the Blocklist queue cannot start yet: %s", exc)
                await asyncio.sleep(1.0)
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a round that failed (the writer restarting): the next one retries
                log.warning("Blocklist round failed: %s", make_inert(str(exc)))
            await asyncio.sleep(self.interval)

    async def run_once(self) -> int:
        """Push what is due; how many pushes were settled (done or refused)."""
        pushes, creds = await asyncio.to_thread(self._due)
        settled = 0
        for push in pushes:
            cred = creds.get(push.credential_id)
            if cred is None or not cred.blocklist_sync.pushes:
                await self._write(mark_refused, push.id, "the credential was deleted or its blocklist_sync is off",
                                  utcnow())
                settled += 1
                continue
            if not await self._write(mark_sending, push.id, utcnow()):
                continue  # superseded meanwhile
            settled += await self._push(self.clients.get(cred.base_url, cred.api_key, owner=cred.id), push)
        await self.clients.close_retired()
        return settled

    async def _push(self, client: InfobipClient, push: QueuedPush) -> int:
        blocking = push.action == BLOCK
        try:
            if push.status == "unknown":
                # What the lost answer did is read back, never guessed.
                entries, _pages = await client.blocklist_page(sender=push.sender, destination=push.number, size=1,
                                                              policy=ONE_TRY)
                if bool(entries) == blocking:
                    await self._write(mark_done, push.id, utcnow(), "found on the Blocklist after a lost answer")
                    self.pushed += 1
                    return 1
            if blocking:
                await client.block(push.sender, push.number, policy=ONE_TRY)
            else:
                await client.unblock(push.sender, push.number, policy=ONE_TRY)
        except InfobipError as exc:
            return await self._failed(push, exc)
        await self._write(mark_done, push.id, utcnow(), "")
        self.pushed += 1
        return 1

    async def _failed(self, push: QueuedPush, exc: InfobipError) -> int:
        scope = missing_scope(exc, BLOCKLIST_SCOPE, "change the Blocklist")
        reason = make_inert(scope or str(exc))
        if exc.status == 400:
            log.warning("Blocklist %s of %s refused: %s", push.action, push.number, reason)
            await self._write(mark_refused, push.id, reason, utcnow())
            return 1
        attempts = push.attempts + 1
        delay = min(self.backoff_max, self.backoff_base * 2 ** min(attempts - 1, 20))
        log.warning("Blocklist %s of %s not done (%s); again in %.0f s", push.action, push.number, reason, delay)
        # A lost answer (or an unknown one before it) is read back before anything is sent again.
        unknown = exc.outcome_unknown or push.status == "unknown"
        await self._write(mark_retry, push.id, reason, time.time() + delay, utcnow(), unknown)
        return 0

    async def aclose(self) -> None:
        await self.clients.aclose()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
