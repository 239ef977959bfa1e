"""`smsdesk serve`: receiver, inbox poller and outbox sender in one process.

One writer owns the writes, so webhook requests, pulled batches, sent-marks and delivery
reports share commits and do not contend for the SQLite write lock among themselves. The writer
runs in a child process (writer/parent.py starts it, writer/child.py is what runs there), where
it does not share this process's GIL. The one exception: while the writer has nothing in hand,
webhooks that arrive few at a time are committed on this process's loop, on a connection that
never waits for the lock (writer/direct_commits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette

from smsdesk.engine.blocklist_sync import BlocklistSync
from smsdesk.engine.limits import HttpLimits, protocol_with
from smsdesk.engine.opt_out_notices import OptOutNotices
from smsdesk.engine.outbox_sender import LOGS_LAG_S, OutboxSender
from smsdesk.engine.poller import InboxPoller
from smsdesk.engine.receiver import MAX_BODY_BYTES, BasicAuth, Receiver
from smsdesk.engine.retention_sweep import SWEEP_EVERY_S, run_sweeps
from smsdesk.engine.sender_pacing import SENDER_SHARE, SenderPacing
from smsdesk.infobip.net import is_loopback, start_server_thread
from smsdesk.store.expiry import expire_pending
from smsdesk.store.heartbeat import HEARTBEAT_SECONDS, record_heartbeat
from smsdesk.store.message_search import INDEX_BATCH, index_new_messages
from smsdesk.store.retention import optimize
from smsdesk.store.serve_locks import SenderLock, ServedName
from smsdesk.writer.direct_commits import DirectCommitter
from smsdesk.writer.fencing import FencedWriter
from smsdesk.writer.jobs import job
from smsdesk.writer.parent import ProcessWriter
from smsdesk.writer.thread_writer import GroupCommitWriter

T = TypeVar("T")
log = logging.getLogger("smsdesk.serve")


class ServeConfigError(ValueError):
    pass


@dataclass
class ServeConfig:
    db_path: Path
    host: str = "127.0.0.1"
    port: int = 8080
    auth: BasicAuth | None = None
    insecure_no_auth: bool = False
    poll_interval: float = 5.0
    outbox_interval: float = 0.5
    logs_lag: float = LOGS_LAG_S  # a lost answer's replies are looked up in Infobip's logs this long after
    delivery_url: str | None = None  # public URL Infobip should post delivery reports to
    run_poller: bool = True
    run_outbox: bool = True
    writer_log: Path | None = None  # the writer process's log file; None: serve's stderr
    limits: HttpLimits = field(default_factory=HttpLimits)  # head size, timeouts, connection cap
    max_body_bytes: int = MAX_BODY_BYTES
    heartbeat_interval: float = HEARTBEAT_SECONDS  # how often serve records it is alive (receiver_heartbeat)
    expiry_interval: float = 300.0  # how often pending double opt-ins past their time are expired
    # Webhooks that arrive few at a time (up to 4 in progress, of up to 10 results) are committed
    # by serve itself, in groups, not by the writer process (writer/direct_commits.py); off
    # (--writer-only): every webhook goes to the writer.
    direct_commits: bool = True
    # The writer on a thread of serve instead of a child process (--writer-in-process): for
    # bench/ingest.py's A/B of what the child process buys.
    writer_in_process: bool = False
    # Retention (--retention-days): message texts, replies and delivery reports older than this are
    # purged at start and every `retention_interval` (engine/retention_sweep.py); None keeps everything.
    retention_days: int | None = None
    retention_interval: float = SWEEP_EVERY_S
    search_index_interval: float = 1.0  # how often new messages are added to the log's search index
    # The outbox sender's share of the writer while webhooks arrive (engine/sender_pacing.py).
    sender_share: float = SENDER_SHARE
    extra: dict[str, object] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse weak set-ups: webhooks without auth only on loopback and only when asked for."""
        if self.auth is not None:
            if not self.auth.user or len(self.auth.password) < 12:
                raise ServeConfigError(
                    "SMSDESK_WEBHOOK_PASSWORD must be at least 12 characters and SMSDESK_WEBHOOK_USER non-empty")
            return
        if not self.insecure_no_auth:
            raise ServeConfigError(
                "set SMSDESK_WEBHOOK_USER and SMSDESK_WEBHOOK_PASSWORD (HTTP Basic auth for the webhooks), "
                "or pass --insecure-no-auth on a loopback address for local testing")
        if not is_loopback(self.host):
            raise ServeConfigError(f"--insecure-no-auth is refused on {self.host}: bind to 127.0.0.1 or use auth")


class Service:
    """The running parts of `serve`, built around one writer."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.writer: ProcessWriter | GroupCommitWriter = (
            GroupCommitWriter(config.db_path) if config.writer_in_process
            else ProcessWriter(config.db_path, log_path=config.writer_log))
        self.direct = DirectCommitter(config.db_path) if config.direct_commits else None
        opt_outs = OptOutNotices()  # the receiver notes each stored STOP before its 200; the sender reads them
        pacing = SenderPacing(config.sender_share)  # the receiver notes each webhook; the sender yields to them
        self.receiver = Receiver(self.writer, config.auth, max_body_bytes=config.max_body_bytes, direct=self.direct,
                                 opt_outs=opt_outs, pacing=pacing)
        # The sender writes through its generation's fence (writer/fencing.py): once a later sender
        # took over, nothing it does is written.
        self.sender_writer = FencedWriter(self.writer)
        self.sender = OutboxSender(config.db_path, self.sender_writer, delivery_url=config.delivery_url,
                                   interval=config.outbox_interval, logs_lag=config.logs_lag, opt_outs=opt_outs,
                                   pacing=pacing)
        self.poller = InboxPoller(config.db_path, self.writer, interval=config.poll_interval)
        # Blocklist pushes (engine/blocklist_sync.py): apart from the sender, so a failing Blocklist delays no reply.
        self.blocklist = BlocklistSync(config.db_path, self.writer)
        if config.run_poller:  # /healthz names the last pull answer that was lost
            self.receiver.health_details.append(("pull", self.poller.health_detail))
        self.sender_lock = SenderLock(config.db_path)
        self.served_name = ServedName(config.db_path)

    def take_sender_lock(self) -> None:
        """Hold the name the database is served by (a second name of a served file is refused),
        and become the database's one sender; or raise SenderLockHeld (store/serve_locks.py)."""
        self.served_name.acquire()
        if self.config.run_outbox:
            self.sender_lock.acquire()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            self.take_sender_lock()
        except BaseException:
            self.served_name.release()
            raise
        if isinstance(self.writer, ProcessWriter):
            self.writer.start(asyncio.get_running_loop())
        else:
            self.writer.start()
        # Serve only once the writer has the database: a path it cannot open or migrate stops
        # serve here, with the reason, instead of answering 503 forever.
        try:
            await asyncio.to_thread(self.writer.wait_ready)
            if self.direct is not None:
                await asyncio.to_thread(self.direct.open)  # after the writer migrated the file
        except BaseException:
            self.writer.stop(1.0)  # its supervisor would otherwise restart it in a serve that is not running
            if self.direct is not None:
                self.direct.close()
            raise
        tasks = [asyncio.create_task(self._heartbeat(), name="heartbeat"),
                 asyncio.create_task(self._index_search(), name="search-index"),
                 asyncio.create_task(self._expire_pending(), name="double-opt-in-expiry"),
                 asyncio.create_task(self._optimize(), name="optimize")]
        if self.config.retention_days is not None:
            tasks.append(asyncio.create_task(
                run_sweeps(self.writer, self.config.retention_days, self.config.retention_interval), name="retention"))
        if self.config.run_outbox:
            tasks.append(asyncio.create_task(self._send(), name="outbox"))
            tasks.append(asyncio.create_task(self.blocklist.run(), name="blocklist"))
        if self.config.run_poller:
            tasks.append(asyncio.create_task(self.poller.run(), name="poller"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            try:
                await self.sender.aclose()
                await self.poller.aclose()
                await self.blocklist.aclose()
                self.writer.stop()
            finally:  # whatever failed above, the direct connection and the sender lock are let go
                if self.direct is not None:
                    self.direct.close()
                self.sender_lock.release()
                self.served_name.release()

    async def _send(self) -> None:
        """Take the next sender generation, then run the sender until serve stops, or until a
        later sender fences this one out (writer/fencing.py): then it sends nothing more."""
        while True:
            try:
                generation = await asyncio.wrap_future(self.sender_writer.begin(os.getpid()))
                break
            except Exception as exc:  # the writer restarting, the file locked: try again
                log.warning("the outbox sender cannot take its generation yet: %s", exc)
                await asyncio.sleep(1.0)
        log.info("outbox sender started (generation %d)", generation)
        loop = asyncio.get_running_loop()
        fenced = asyncio.Event()
        self.sender_writer.on_fenced = lambda: loop.call_soon_threadsafe(fenced.set)
        rounds = asyncio.create_task(self.sender.run(), name="outbox-rounds")
        stop = asyncio.create_task(fenced.wait(), name="outbox-fence")
        try:
            await asyncio.wait({rounds, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (rounds, stop):
                task.cancel()
            await asyncio.gather(rounds, stop, return_exceptions=True)
        if fenced.is_set():
            log.error("another sender took over this database's outbox (sender generation %d is no longer the "
                      "current one): this serve sends nothing more", generation)

    async def _write(self, failed: str, func: Callable[..., T], *args: Any) -> T | None:
        """`func` as a writer job; on failure (the writer restarting, the file locked) a warning
        that starts with `failed`, and None: the next round of the caller tries again."""
        try:
            return await asyncio.wrap_future(self.writer.submit(job(func, *args)))
        except Exception as exc:
            log.warning("%s: %s", failed, exc)
            return None

    async def _heartbeat(self) -> None:
        """Record, through the writer, that serve is alive and can write: at start, then every
        `heartbeat_interval` (one row; the TUI's empty log says whether a receiver is running)."""
        pid = os.getpid()
        while True:
            await self._write("heartbeat not recorded", record_heartbeat, pid)
            await asyncio.sleep(self.config.heartbeat_interval)

    async def _index_search(self) -> None:
        """Keep the log's trigram index current (store/message_search.py): every second, the
        messages stored since, in batches (one FTS5 segment each instead of one per webhook)."""
        while True:
            added = await self._write("search index not updated", index_new_messages)
            if (added or 0) < INDEX_BATCH:
                await asyncio.sleep(self.config.search_index_interval)

    async def _optimize(self) -> None:
        """Fresh planner statistics once at start, where they are stale (after a sweep too)."""
        await self._write("PRAGMA optimize not run", optimize)

    async def _expire_pending(self) -> None:
        """Pending double opt-ins that were never confirmed stop being pending even if the number
        never texts again (store/expiry.py); at start, then every `expiry_interval`."""
        while True:
            if expired := await self._write("double opt-in expiry not run", expire_pending):
                log.info("%d pending double opt-ins expired", expired)
            await asyncio.sleep(self.config.expiry_interval)

    def app(self) -> Starlette:
        return self.receiver.app(lifespan=self.lifespan)


def build_server(config: ServeConfig) -> uvicorn.Server:
    return build_service_server(config)[1]


def build_service_server(config: ServeConfig) -> tuple[Service, uvicorn.Server]:
    config.check()
    service = Service(config)
    uv_config = uvicorn.Config(service.app(), host=config.host, port=config.port, log_level="warning",
                               access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                               http=protocol_with(config.limits),
                               timeout_keep_alive=config.limits.keep_alive_timeout)
    return service, uvicorn.Server(uv_config)


class ServerThread:
    """`serve` on a background thread: for tests and for `smsdesk demo`."""

    def __init__(self, config: ServeConfig) -> None:
        self.service, self.server = build_service_server(config)
        self.config = config
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        sockets = self.server.servers[0].sockets if self.server.servers else []
        port = sockets[0].getsockname()[1] if sockets else self.config.port
        return f"http://{self.config.host}:{port}"

    def __enter__(self) -> ServerThread:
        self._thread = start_server_thread(self.server, "smsdesk-serve", "smsdesk serve")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
