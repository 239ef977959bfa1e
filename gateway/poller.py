"""The inbox poller: for credentials in pull mode, fetch inbound messages and store them.

A pull consumes messages at Infobip, so each batch is committed before the next is asked for;
a crash between the two loses nothing that was acknowledged by a commit, and a message pulled
twice (overlapping pollers) is ignored by its messageId.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from gateway.delivery import ClientPool
from gateway.mo import InputProblem, parse_inbound
from store.credentials import list_credentials_conn
from store.db import connect
from store.inbound import InboundMessage, inbound_rows, store_inbound
from store.models import InboundMode, StoredCredential
from store.writer import Writer, WriterStopped

log = logging.getLogger("smsdesk.poller")
PULL_LIMIT = 1000


class InboxPoller:
    def __init__(self, db_path: Path, writer: Writer, *, interval: float = 5.0,
                 client_options: dict[str, object] | None = None) -> None:
        self.db_path = db_path
        self.writer = writer
        self.interval = interval
        self.clients = ClientPool(**(client_options or {}))
        self._reader: sqlite3.Connection | None = None
        self.pulled = 0

    def _pull_credentials(self) -> list[StoredCredential]:
        if self._reader is None:
            self._reader = connect(self.db_path).conn
        return [c for c in list_credentials_conn(self._reader) if c.inbound_mode == InboundMode.PULL]

    async def poll_credential(self, cred: StoredCredential) -> int:
        """Drain one credential's inbox: keep pulling while full batches come back."""
        client = self.clients.get(cred.base_url, cred.api_key)
        total = 0
        while True:
            results = await client.pull_inbound(limit=PULL_LIMIT)
            if not results:
                return total
            try:
                messages = parse_inbound({"results": results}, source="pull")
            except InputProblem as exc:
                # Already consumed at Infobip: never drop it silently.
                log.error("pulled batch for %s has a malformed message (%s); storing what parses", cred.name, exc)
                messages = []
                for result in results:
                    try:
                        messages.extend(parse_inbound({"results": [result]}, source="pull"))
                    except InputProblem as bad:
                        log.error("dropping malformed pulled message for %s: %s", cred.name, bad)
            await self._store(cred, messages)
            total += len(messages)
            self.pulled += len(messages)
            if len(results) < PULL_LIMIT:
                return total

    async def _store(self, cred: StoredCredential, messages: list[InboundMessage]) -> None:
        """Store a pulled batch, however long the writer is down: Infobip has already handed these
        messages over and will not send them again. Storing twice is harmless (messageIds)."""
        delay = 0.5
        while True:
            try:
                await asyncio.wrap_future(self.writer.submit_items(store_inbound, inbound_rows(messages)))
                return
            except (WriterStopped, sqlite3.Error, OSError) as exc:
                log.error("storing %d pulled message(s) of %s failed (%s); retrying in %.1f s",
                          len(messages), cred.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def run_once(self) -> int:
        creds = await asyncio.to_thread(self._pull_credentials)
        total = 0
        for cred in creds:
            try:
                total += await self.poll_credential(cred)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one credential's outage must not stop the others
                log.warning("pulling inbox of %s failed: %s", cred.name, exc)
        return total

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        await self.clients.aclose()
        if self._reader is not None:
            self._reader.close()
