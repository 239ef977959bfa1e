"""The poller: for credentials in pull mode, fetch inbound messages and delivery reports and store them.

A pull consumes what it returns at Infobip: nothing pulled may be dropped, whatever fails while
storing it (the writer process dead or restarting, the database locked or full, a bug that
raises in the job). So:

- every pulled batch is first written to a spool file next to the database (`<db>.pulled/`,
  0600 in 0700, fsynced), and removed only once the writer has committed it;
- a batch that could not be stored stays in memory and is retried with backoff, and nothing more
  is pulled for that credential until all its batches are stored (other credentials go on);
- on the next start, batches left in the spool (serve stopped or killed before storing them)
  are stored before the first pull of their credential.

Why a spool rather than a log line saying how many were lost: a pulled batch may hold a STOP,
and a count in a log does not bring back an opt-out. The spool costs one fsynced file per
non-empty pull (at most every few seconds per credential). What is still lost: a batch whose
HTTP answer arrived but which could not be written to the spool either (disk full, spool
directory unwritable) and was still unstored when the process stopped; that is logged with
its count. Storing a batch twice is harmless: inbound messages are recognised by messageId,
delivery reports by their content.

A pulled inbound result that cannot be read does not hold its batch: the others are stored, and
it is kept raw in unreadable_inbound in the same transaction (engine/mo.py, parse_inbound_batch).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import os
import sqlite3
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsdesk.engine.mo import InputProblem, parse_delivery_reports, parse_inbound_batch
from smsdesk.engine.outbox_sender import ClientPool
from smsdesk.store.credentials import list_credentials_conn
from smsdesk.store.db import connect, utcnow
from smsdesk.store.inbound import InboundMessage, inbound_rows, store_inbound
from smsdesk.store.models import InboundMode, StoredCredential
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.store.paths import beside_database, beside_database_name
from smsdesk.store.text import make_inert
from smsdesk.store.unreadable import UnreadableRow
from smsdesk.store.writer import Writer, job

log = logging.getLogger("smsdesk.poller")
PULL_LIMIT = 1000
INBOX = "inbox"
REPORTS = "reports"
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0


def spool_dir(db_path: Path) -> Path:
    """Where pulled batches wait until they are committed: `smsdesk.db.pulled/` beside the database."""
    return beside_database(db_path, ".pulled")


@dataclass
class PulledBatch:
    """What one pull returned, raw, as Infobip sent it; `path` is its spool file (None: not spooled)."""

    kind: str  # INBOX or REPORTS
    credential_id: int
    credential: str
    results: list[Any]  # as pulled: objects, unless Infobip sent something else
    path: Path | None = None


class Spool:
    """One file per pulled batch, written before it is stored and removed after."""

    def __init__(self, directory: Path, earlier: Path | None = None) -> None:
        self.directory = directory
        self.earlier = earlier  # where smsdesk 0.2 spooled (`beside_database_name`): loaded too, never written
        self._numbers = itertools.count()

    def _prepare(self) -> None:
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.directory.stat().st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    def write(self, batch: PulledBatch) -> None:
        """Durably, or not at all (an OSError): a temporary file, fsynced, renamed, directory fsynced."""
        self._prepare()
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._numbers):06d}-{batch.kind}.json"
        final = self.directory / name
        temporary = self.directory / (name + ".tmp")
        body = json.dumps({"kind": batch.kind, "credential_id": batch.credential_id, "credential": batch.credential,
                           "pulled_at": utcnow(), "results": batch.results}, ensure_ascii=False).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, final)
        self._sync_directory()
        batch.path = final

    def remove(self, batch: PulledBatch) -> None:
        if batch.path is not None:
            try:
                batch.path.unlink()
            except FileNotFoundError:
                pass  # stored by another process's start-up
            except OSError as exc:  # e.g. 0.2's spool, not ours to delete: loaded again next start, a duplicate
                log.warning("cannot remove the stored pulled batch %s (%s)", batch.path, exc)
            batch.path = None

    def load(self) -> list[PulledBatch]:
        """The batches a previous run left unstored, oldest first. A temporary file that reads
        whole was written completely before the stop; an unreadable file is left in place."""
        paths = [path for directory in (self.directory, self.earlier) if directory is not None and directory.is_dir()
                 for path in directory.glob("*.json*")]
        batches = []
        for path in sorted(paths, key=lambda path: path.name):  # names start with the time they were written
            try:
                data = json.loads(path.read_bytes())
                batch = PulledBatch(str(data["kind"]), int(data["credential_id"]), str(data["credential"]),
                                    list(data["results"]), path)
                if batch.kind not in (INBOX, REPORTS):
                    raise ValueError(f"unknown kind {batch.kind!r}")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("cannot read the pulled batch %s (%s); left in place", path, exc)
                continue
            batches.append(batch)
        return batches

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class InboxPoller:
    def __init__(self, db_path: Path, writer: Writer, *, interval: float = 5.0,
                 client_options: dict[str, object] | None = None) -> None:
        self.db_path = db_path
        self.writer = writer
        self.interval = interval
        self.clients = ClientPool(**(client_options or {}))
        self.spool = Spool(spool_dir(db_path), beside_database_name(db_path, ".pulled"))
        self._reader: sqlite3.Connection | None = None
        # Per credential id, the batches pulled and not yet committed, in pull order.
        self._unsaved: dict[int, deque[PulledBatch]] = {}
        self._retry_at: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self._spool_loaded = False
        self.pulled = 0  # inbound messages stored
        self.reports = 0  # delivery reports stored

    @property
    def unsaved(self) -> int:
        """Pulled results (messages and reports) not yet committed."""
        return sum(len(batch.results) for queue in self._unsaved.values() for batch in queue)

    def _pull_credentials(self) -> list[StoredCredential]:
        if self._reader is None:
            self._reader = connect(self.db_path).conn
        return [c for c in list_credentials_conn(self._reader) if c.inbound_mode == InboundMode.PULL]

    def _load_spool(self) -> None:
        for batch in self.spool.load():
            log.warning("storing %d pulled %s of %s left unstored by a previous run (%s)",
                        len(batch.results), _noun(batch), batch.credential, batch.path)
            self._unsaved.setdefault(batch.credential_id, deque()).append(batch)

    async def poll_credential(self, cred: StoredCredential) -> int:
        """Store what waits for this credential, then drain its inbox and its delivery reports.

        Returns how many inbound messages and reports were committed. Stops at the first batch
        that cannot be stored: it is kept, and nothing more is pulled until it is stored.
        """
        total = await self._store_waiting(cred.id)
        if cred.id in self._unsaved:
            return total
        client = self.clients.get(cred.base_url, cred.api_key)
        for kind, pull in ((INBOX, client.pull_inbound), (REPORTS, client.pull_reports)):
            while True:
                results = await pull(limit=PULL_LIMIT)
                if not results:
                    break
                batch = PulledBatch(kind, cred.id, cred.name, results)
                try:
                    await asyncio.to_thread(self.spool.write, batch)
                except OSError as exc:  # kept in memory all the same; only a stop would lose it
                    log.error("could not spool %d pulled %s of %s (%s); keeping them in memory",
                              len(results), _noun(batch), cred.name, exc)
                self._unsaved.setdefault(cred.id, deque()).append(batch)
                total += await self._store_waiting(cred.id)
                if cred.id in self._unsaved or len(results) < PULL_LIMIT:
                    break
            if cred.id in self._unsaved:
                break
        return total

    async def _store_waiting(self, key: int) -> int:
        """Store this credential's waiting batches in order, unless it is backing off; on the
        first failure keep that batch and the rest, and back off."""
        queue = self._unsaved.get(key)
        if not queue or time.monotonic() < self._retry_at.get(key, 0.0):
            return 0
        stored = 0
        while queue:
            batch = queue[0]
            try:
                stored += await self._store(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: the batch waits, however unexpected the cause
                delay = self._delay.get(key, FIRST_RETRY_S)
                self._retry_at[key] = time.monotonic() + delay
                self._delay[key] = min(delay * 2, MAX_RETRY_S)
                log.error("storing %d pulled %s of %s failed (%s: %s); kept, retrying in %.1f s",
                          len(batch.results), _noun(batch), batch.credential, type(exc).__name__, exc, delay)
                return stored
            queue.popleft()
            await asyncio.to_thread(self.spool.remove, batch)
        del self._unsaved[key]
        self._retry_at.pop(key, None)
        self._delay.pop(key, None)
        return stored

    async def _store(self, batch: PulledBatch) -> int:
        if batch.kind == INBOX:
            messages, unreadable = _parse_inbox(batch)
            # Unreadable results are kept in the transaction that stores their neighbours.
            run = functools.partial(store_inbound, unreadable=unreadable) if unreadable else store_inbound
            await self.writer.run_items(run, inbound_rows(messages))
            self.pulled += len(messages)
            return len(messages)
        reports = _parse_reports(batch)
        await asyncio.wrap_future(self.writer.submit(job(apply_delivery_reports, reports)))
        self.reports += len(reports)
        return len(reports)

    async def run_once(self) -> int:
        if not self._spool_loaded:
            await asyncio.to_thread(self._load_spool)
            self._spool_loaded = True
        creds = await asyncio.to_thread(self._pull_credentials)
        total = 0
        for cred in creds:
            try:
                total += await self.poll_credential(cred)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one credential's outage must not stop the others
                log.warning("pulling for %s failed: %s", cred.name, exc)
        # Batches of credentials no longer pulled (deleted, or switched to forward) still go in.
        pulled_ids = {cred.id for cred in creds}
        for key in [key for key in self._unsaved if key not in pulled_ids]:
            total += await self._store_waiting(key)
        return total

    def _next_wait(self) -> float:
        if not self._retry_at:
            return self.interval
        soonest = min(self._retry_at.values()) - time.monotonic()
        return max(0.05, min(self.interval, soonest))

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._next_wait())

    async def aclose(self) -> None:
        for queue in self._unsaved.values():
            for batch in queue:
                if batch.path is not None:
                    log.error("%d pulled %s of %s not stored yet; kept in %s, stored at the next start",
                              len(batch.results), _noun(batch), batch.credential, batch.path)
                else:
                    log.error("%d pulled %s of %s LOST: not stored and not spooled", len(batch.results),
                              _noun(batch), batch.credential)
        await self.clients.aclose()
        if self._reader is not None:
            self._reader.close()


def _noun(batch: PulledBatch) -> str:
    return "message(s)" if batch.kind == INBOX else "delivery report(s)"


def _parse_inbox(batch: PulledBatch) -> tuple[list[InboundMessage], list[UnreadableRow]]:
    """The messages of a pulled batch that can be read, and rows for those that cannot (already
    consumed at Infobip: each is kept raw in unreadable_inbound, and named in one log line)."""
    parsed = parse_inbound_batch({"results": batch.results}, source="pull")
    if not parsed.unreadable:
        return parsed.messages, []
    log.error("pulled batch for %s: %d result(s) could not be read, kept in unreadable_inbound "
              "(`smsdesk inbound unreadable`), the others stored; first: %s", make_inert(batch.credential),
              len(parsed.unreadable), make_inert(parsed.unreadable[0].reason[:300]))
    return parsed.messages, parsed.unreadable_rows()


def _parse_reports(batch: PulledBatch) -> list[tuple[str, str, str, str]]:
    try:
        return parse_delivery_reports({"results": batch.results})
    except InputProblem as exc:
        log.error("pulled reports for %s have a malformed one (%s); storing what parses", batch.credential, exc)
    reports = []
    for result in batch.results:
        try:
            reports.extend(parse_delivery_reports({"results": [result]}))
        except InputProblem as bad:
            log.error("dropping malformed pulled delivery report for %s: %s", batch.credential, bad)
    return reports
