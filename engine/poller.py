"""The poller: for credentials in pull mode, fetch inbound messages and delivery reports and store them.

Infobip's pulls are read-once: GET /sms/1/inbox/reports and GET /sms/3/reports return each message
or report once, and a pull consumes what it returns. Nothing pulled may be dropped, whatever fails
while storing it (the writer process dead or restarting, the database locked or full, a bug that
raises in the job), and a pull whose answer did not arrive cannot be asked again. So:

- a pull is one request, never retried, by the poller or by the client (`pull_answer`): sent
  again, it would fetch the next batch, and the lost one would be lost all the same;
- the answer's body is written to a spool file next to the database (`<db>.pulled/`, 0600 in
  0700) as it came, before anything parses it: every byte written (short writes are continued),
  fsynced, renamed, the directory fsynced. It is removed only once the writer has committed
  what it held;
- a batch that could not be stored stays in memory and is retried with backoff, and nothing more
  is pulled for that credential until all its batches are stored (other credentials go on);
- on the next start, batches left in the spool (serve stopped or killed before storing them)
  are stored before the first pull of their credential.

A pull whose answer was lost (a read timeout, or the connection dropped after the request went
out: Infobip may have consumed the batch) or cannot be read (not JSON, not an object with a
`results` array) is reported where the operator looks: an error line in the log, a row in
`pull_losses` (store/pull_losses.py) that the TUI shows under its tab line, and a `pull` detail
in /healthz. An answer that cannot be read is kept in the spool directory as
`<name>.unreadable` (never loaded again) and, for the inbox, in `unreadable_inbound`. Webhooks
(forward mode) are the at-least-once path: Infobip retries a webhook until it gets a 200.

Why a spool rather than a log line saying how many were lost: a pulled batch may hold a STOP,
and a count in a log does not bring back an opt-out. The spool costs one fsynced file per pull
(each removed once handled). What is still lost: a batch whose HTTP answer arrived but which
could not be written to the spool either (disk full, spool directory unwritable) and was still
unstored when the process stopped; that is logged with its count. Storing a batch twice is
harmless: inbound messages are recognised by messageId, delivery reports by their content.

A pulled inbound result that cannot be read does not hold its batch: the others are stored, and
it is kept raw in unreadable_inbound in the same transaction (engine/mo.py, parse_inbound_batch).
"""

from __future__ import annotations

import asyncio
import contextlib
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

from smsdesk.domain.credential import InboundMode, StoredCredential
from smsdesk.domain.inert import make_inert
from smsdesk.engine.mo import InputProblem, parse_delivery_reports, parse_inbound_batch
from smsdesk.engine.outbox_sender import ClientPool
from smsdesk.infobip.client import INBOX_PATH, REPORTS_PATH, pull_results
from smsdesk.infobip.errors import InfobipConnectionDropped, InfobipError, InfobipTimeout
from smsdesk.store.credentials import list_credentials
from smsdesk.store.db import connect, utcnow
from smsdesk.store.inbound import InboundMessage, inbound_rows, store_inbound
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.store.paths import beside_database, beside_database_name, write_all
from smsdesk.store.pull_losses import PullLoss, latest_pull_loss, record_pull_loss
from smsdesk.store.unreadable import MAX_RAW_CHARS, UnreadableRow
from smsdesk.writer.jobs import Writer, job

log = logging.getLogger("smsdesk.poller")
PULL_LIMIT = 1000
INBOX = "inbox"
REPORTS = "reports"
PATHS = {INBOX: INBOX_PATH, REPORTS: REPORTS_PATH}
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0
UNREADABLE_SUFFIX = ".unreadable"  # an answer that cannot be read, kept for the operator, never loaded


def spool_dir(db_path: Path) -> Path:
    """Where pulled batches wait until they are committed: `smsdesk.db.pulled/` beside the database."""
    return beside_database(db_path, ".pulled")


class UnreadableAnswer(ValueError):
    """A pull's answer that is not JSON, or not an object with a `results` array."""


@dataclass
class PulledBatch:
    """What one pull returned, as Infobip sent it; `path` is its spool file (None: not spooled).

    `raw`: the answer's body as it came (None for a batch spooled by smsdesk 0.3 or before,
    which kept the parsed results); `results` is read from it (`read`)."""

    kind: str  # INBOX or REPORTS
    credential_id: int
    credential: str
    results: list[Any]  # as pulled: objects, unless Infobip sent something else
    path: Path | None = None
    raw: bytes | None = None
    pulled_at: str = ""

    @classmethod
    def answer(cls, kind: str, cred: StoredCredential, raw: bytes) -> PulledBatch:
        return cls(kind, cred.id, cred.name, [], raw=raw, pulled_at=utcnow())

    def read(self) -> None:
        """Parse `raw` into `results`; UnreadableAnswer when it is not Infobip's shape."""
        if self.raw is not None:
            try:
                self.results = pull_results(self.raw)
            except InfobipError as exc:
                raise UnreadableAnswer(exc.text) from None


class Spool:
    """One file per pull, written before the answer is read and removed once it is stored."""

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
        """Durably, or not at all (an OSError): a temporary file, every byte written, fsynced,
        renamed, the directory fsynced. The answer's bytes as they came, after one line of JSON
        saying whose they are and how long they are (`<...>-inbox.pull`)."""
        self._prepare()
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._numbers):06d}-{batch.kind}"
        if batch.raw is not None:
            name += ".pull"
            raw = batch.raw
            header = {"kind": batch.kind, "credential_id": batch.credential_id, "credential": batch.credential,
                      "pulled_at": batch.pulled_at or utcnow(), "length": len(raw)}
            content = json.dumps(header, ensure_ascii=False).encode() + b"\n" + raw
        else:  # a batch loaded from an 0.3 spool file that is written again (not done today)
            name += ".json"
            content = json.dumps({"kind": batch.kind, "credential_id": batch.credential_id,
                                  "credential": batch.credential, "pulled_at": batch.pulled_at or utcnow(),
                                  "results": batch.results}, ensure_ascii=False).encode()
        final = self.directory / name
        temporary = self.directory / (name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                write_all(fd, content)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()  # a torn temporary file must not be loaded as a batch
            raise
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

    def set_aside(self, batch: PulledBatch) -> Path | None:
        """Keep an answer that cannot be read for the operator: renamed `<name>.unreadable`, which
        is never loaded again. Returns where it is (None: it was not spooled)."""
        if batch.path is None:
            return None
        kept = batch.path.with_name(batch.path.name + UNREADABLE_SUFFIX)
        try:
            os.rename(batch.path, kept)
            self._sync_directory()
        except OSError as exc:
            log.error("cannot set the unreadable pull answer %s aside (%s); left in place", batch.path, exc)
            return batch.path
        batch.path = None
        return kept

    def load(self) -> list[PulledBatch]:
        """The batches a previous run left unstored, oldest first. A temporary file that reads
        whole (its length as its header says; for 0.3's JSON, JSON that parses) was written
        completely before the stop; a file that cannot be read is left in place."""
        paths = [path for directory in (self.directory, self.earlier) if directory is not None and directory.is_dir()
                 for pattern in ("*.pull", "*.pull.tmp", "*.json", "*.json.tmp") for path in directory.glob(pattern)]
        batches = []
        for path in sorted(paths, key=lambda path: path.name):  # names start with the time they were written
            try:
                batch = _read_spooled(path)
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




def _read_spooled(path: Path) -> PulledBatch:
    content = path.read_bytes()
    if path.name.endswith((".pull", ".pull.tmp")):
        line, separator, raw = content.partition(b"\n")
        header = json.loads(line)
        if not separator or len(raw) != int(header["length"]):
            raise ValueError(f"{len(raw)} bytes of an answer of {header['length']}: written in part")
        batch = PulledBatch(str(header["kind"]), int(header["credential_id"]), str(header["credential"]), [],
                            path, raw, str(header.get("pulled_at", "")))
    else:  # smsdesk 0.3 and before: the parsed results, as JSON
        data = json.loads(content)
        batch = PulledBatch(str(data["kind"]), int(data["credential_id"]), str(data["credential"]),
                            list(data["results"]), path, None, str(data.get("pulled_at", "")))
    if batch.kind not in (INBOX, REPORTS):
        raise ValueError(f"unknown kind {batch.kind!r}")
    return batch


def answer_maybe_lost(exc: InfobipError) -> bool:
    """A pull that failed so may have been consumed at Infobip: the request went out and its
    answer did not come back (a read timeout, a connection dropped after the request was
    written). A refusal (4xx, 5xx) or a connection that never opened (a connect timeout, whose
    error says `outcome_unknown` False) consumed nothing."""
    return (isinstance(exc, InfobipTimeout | InfobipConnectionDropped)
            and getattr(exc, "outcome_unknown", True) is not False)


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
        # Lost pull answers not yet written to pull_losses (the writer was down): tried each round.
        self._losses_unrecorded: list[tuple[tuple[Any, ...], list[UnreadableRow]]] = []
        self.last_loss: PullLoss | None = None  # the newest lost pull answer (for /healthz)
        self.pulled = 0  # inbound messages stored
        self.reports = 0  # delivery reports stored
        self.lost = 0  # pull answers lost or unreadable since start

    @property
    def unsaved(self) -> int:
        """Pulled results (messages and reports) not yet committed."""
        return sum(len(batch.results) for queue in self._unsaved.values() for batch in queue)

    def _reading(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = connect(self.db_path).conn
        return self._reader

    def _pull_credentials(self) -> list[StoredCredential]:
        return [c for c in list_credentials(self._reading()) if c.inbound_mode == InboundMode.PULL]

    def _load_spool(self) -> None:
        try:
            self.last_loss = latest_pull_loss(self._reading())
        except sqlite3.Error as exc:  # /healthz names losses of this run only
            log.warning("cannot read the last lost pull answer (%s)", exc)
        for batch in self.spool.load():
            if not self._accept(batch):
                continue
            log.warning("storing %d pulled %s of %s left unstored by a previous run (%s)",
                        len(batch.results), _noun(batch), batch.credential, batch.path)
            self._unsaved.setdefault(batch.credential_id, deque()).append(batch)

    def _accept(self, batch: PulledBatch) -> bool:
        """Read a spooled answer; False (and reported, the file set aside) when it cannot be read."""
        try:
            batch.read()
        except UnreadableAnswer as exc:
            kept = self.spool.set_aside(batch)
            where = f"kept in {kept}" if kept is not None else "not spooled"
            self._lost(batch.credential_id, batch.credential, batch.kind, batch.pulled_at,
                       f"the answer cannot be read: {exc}; {where}", batch.raw)
            return False
        return True

    async def poll_credential(self, cred: StoredCredential) -> int:
        """Store what waits for this credential, then drain its inbox and its delivery reports.

        Returns how many inbound messages and reports were committed. Stops at the first batch
        that cannot be stored: it is kept, and nothing more is pulled until it is stored. Each
        pull is one request, never sent again: its answer is spooled as it came, then read.
        """
        total = await self._store_waiting(cred.id)
        if cred.id in self._unsaved:
            return total
        client = self.clients.get(cred.base_url, cred.api_key, owner=cred.id)  # a rotated key retires the old
        for kind in (INBOX, REPORTS):
            while True:
                try:
                    raw = await client.pull_answer(PATHS[kind], PULL_LIMIT)
                except InfobipError as exc:
                    if answer_maybe_lost(exc):
                        self._lost(cred.id, cred.name, kind, utcnow(), f"no answer: {exc}")
                        await self._record_losses()
                    raise
                batch = PulledBatch.answer(kind, cred, raw)
                try:
                    await asyncio.to_thread(self.spool.write, batch)  # before anything reads it
                except OSError as exc:  # kept in memory all the same; only a stop would lose it
                    log.error("could not spool a pull answer of %d bytes for %s (%s); keeping it in memory",
                              len(raw), cred.name, exc)
                if not self._accept(batch):
                    await self._record_losses()
                    break
                if not batch.results:
                    await asyncio.to_thread(self.spool.remove, batch)
                    break
                self._unsaved.setdefault(cred.id, deque()).append(batch)
                total += await self._store_waiting(cred.id)
                if cred.id in self._unsaved or len(batch.results) < PULL_LIMIT:
                    break
            if cred.id in self._unsaved:
                break
        return total

    def _lost(self, credential_id: int, credential: str, kind: str, at: str, reason: str,
              raw: bytes | None = None) -> None:
        """A pull whose answer was lost or cannot be read: said in the log, noted for /healthz, and
        queued for pull_losses (with the answer's start in unreadable_inbound, for the inbox)."""
        self.lost += 1
        reason = make_inert(reason)[:500]
        at = at or utcnow()
        self.last_loss = PullLoss(0, at, credential_id, credential, kind, reason)
        log.error("%s. Infobip's pulls are read-once: a pull is never sent again for it. Webhooks (forward "
                  "mode) are the at-least-once path", make_inert(self.last_loss.describe()))
        unreadable: list[UnreadableRow] = []
        if raw is not None and kind == INBOX:
            text = raw[:MAX_RAW_CHARS * 4].decode("utf-8", "replace")[:MAX_RAW_CHARS]
            unreadable.append((at, "pull", reason, text))
        self._losses_unrecorded.append(((at, credential_id, credential, kind, reason), unreadable))

    async def _record_losses(self) -> None:
        while self._losses_unrecorded:
            row, unreadable = self._losses_unrecorded[0]
            try:
                await asyncio.wrap_future(self.writer.submit(job(record_pull_loss, *row, unreadable)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the writer down, the file locked: the next round tries again
                log.warning("a lost pull answer is not recorded yet (%s: %s); trying again next round",
                            type(exc).__name__, exc)
                return
            self._losses_unrecorded.pop(0)

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
        await self._record_losses()
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
        await self.clients.close_retired()  # no pull of a rotated key is in flight any more
        return total

    def health_detail(self) -> str | None:
        """For /healthz: the newest lost pull answer, in one line, while it is worth looking for
        (store/pull_losses.py SHOWN_FOR, as the TUI); None: none."""
        loss = self.last_loss
        if loss is None or not loss.recent():
            return None
        return (f"last pull answer lost at {loss.at} for credential {make_inert(loss.credential)} "
                f"({loss.kind}: {loss.reason})")

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
        for (at, _, credential, kind, reason), _ in self._losses_unrecorded:
            log.error("a lost pull answer (%s for %s at %s: %s) was not recorded in the database", kind,
                      make_inert(credential), at, reason)
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
