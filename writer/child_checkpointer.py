"""WAL checkpoints off the writer's thread while it writes in bursts.

SQLite checkpoints inside the commit that takes the WAL past `wal_autocheckpoint` pages (1000):
that commit copies the pages into the database file and fsyncs it while every waiting webhook
waits too. For single-message webhooks that is about one commit in a hundred, and it keeps the
WAL short, so that it is rewritten from its start and each commit's fsync stays cheap: moving
those checkpoints to another thread made one-at-a-time webhooks slower (their fsyncs queued
behind the checkpoint's). For 100-result batches every third commit paid for one.

So the writer's own checkpoints stay on while its groups are small, and while its groups are
large (a burst: batched webhooks, pulled inboxes) it turns them off and this thread, with a
connection of its own, checkpoints every `every_rows` changed rows (PASSIVE: it never waits for
the writer or a reader, nor the writer for it). Every `restart_rows` the writer checkpoints the
rest itself, so that the WAL can start over. When the burst ends the writer checkpoints itself
again, from its next commit on. Measured (on a 2-core machine): 20 s
of 100-result batches over HTTP, 13,843 and 15,308 msg/s against 11,690 and 12,696 before
(+18 to 21%), with the WAL's file peaking at 45 to 48 MB instead of 10 MB; single webhooks
unchanged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("smsdesk.writer")

AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, restored when a burst ends
BURST_ROWS = 200  # rows changed by one group commit that make it a burst (about two batches of 100)
EVERY_ROWS = 2000  # rows changed in a burst between two background checkpoints
# The WAL starts over from its beginning only when a checkpoint has copied all of it before the
# writer's next transaction, which the thread never manages while the writer commits back to
# back: without this the WAL grew to 2.6 GB in 20 s of batches. So every RESTART_ROWS the writer
# checkpoints itself, copying what the thread has not yet, and its next transaction starts the
# WAL over. That bounds the WAL to about this many rows' pages, plus what the thread was copying
# meanwhile (its file peaked at 45 to 48 MB in 20 s of batches).
RESTART_ROWS = 6000
# A burst that stops leaves up to EVERY_ROWS rows' pages in the WAL that nobody has copied: the
# writer checkpoints them only at its next commit, and with few webhooks in progress serve
# commits them itself (writer/direct_commits.py), whose first commit would then copy them all
# while its event loop waits. So after this long without a group the thread catches up.
QUIET_S = 0.2


class BurstCheckpointer:
    """Call `after_commit(conn)` after each group commit of the one write connection."""

    def __init__(self, db_path: Path | str, *, burst_rows: int = BURST_ROWS, every_rows: int = EVERY_ROWS,
                 restart_rows: int = RESTART_ROWS, quiet_s: float = QUIET_S) -> None:
        self._uri = f"{Path(db_path).absolute().as_uri()}?mode=rw"
        self._burst_rows = burst_rows
        self._every_rows = every_rows
        self._restart_rows = restart_rows
        self._quiet_s = quiet_s
        self._caught_up = 0  # the writer's total_changes when the thread last caught up after a burst
        self._requested = False  # the writer asked for a checkpoint (else `_due` only woke the thread)
        self._writer: sqlite3.Connection | None = None
        self._bursting = False
        self._changes_seen = 0  # the writer's total_changes after its last group
        self._changes_checkpointed = 0  # ... when the thread was last asked to checkpoint
        self._changes_restarted = 0  # ... when the writer last checkpointed itself
        self.writer_checkpoints = 0
        self._due = threading.Event()
        self._stopping = False
        self.checkpoints = 0  # done by the thread: for tests and the curious
        self.last_result: tuple[int, int, int] | None = None  # (busy, WAL frames, frames checkpointed)
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name="smsdesk-checkpointer", daemon=True)
        self._thread.start()

    @property
    def bursting(self) -> bool:
        return self._bursting

    def after_commit(self, conn: sqlite3.Connection) -> None:
        """Never raises: the group is committed and answered whatever becomes of a checkpoint."""
        try:
            self._after_commit(conn)
        except sqlite3.Error as exc:  # disk full, I/O error: the next commit reports it to its callers
            self._failed(exc)

    def _after_commit(self, conn: sqlite3.Connection) -> None:
        if conn is not self._writer:  # the first, or one opened again after an error: it checkpoints itself
            self._writer, self._bursting = conn, False
            self._changes_seen = self._changes_checkpointed = self._changes_restarted = conn.total_changes
            return
        total = conn.total_changes
        bursting = total - self._changes_seen >= self._burst_rows
        self._changes_seen = total
        if bursting != self._bursting:
            conn.execute(f"PRAGMA wal_autocheckpoint = {0 if bursting else AUTOCHECKPOINT_PAGES}")
            self._bursting = bursting
            if bursting:
                self._due.set()  # not a checkpoint yet: the thread now waits at most QUIET_S
        if not bursting:
            self._changes_restarted = total  # the writer's own checkpoints keep the WAL short
        elif total - self._changes_restarted >= self._restart_rows:
            busy = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0]
            if not busy:  # else the thread was checkpointing: again after the next group
                self._changes_restarted = self._changes_checkpointed = total
                self.writer_checkpoints += 1
        elif total - self._changes_checkpointed >= self._every_rows:
            self._changes_checkpointed = total
            self._requested = True
            self._due.set()

    def _failed(self, exc: sqlite3.Error) -> None:
        """Logged once per kind of failure: it may repeat at every nudge while a disk is full."""
        if str(exc) != self._last_error:
            log.warning("checkpoint failed: %s", exc)
            self._last_error = str(exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            nudged = self._due.wait(self._quiet_s if self._bursting else None)
            self._due.clear()
            if self._stopping:
                break
            if nudged and not self._requested:  # a burst began: wait with the quiet timeout from now on
                continue
            self._requested = False
            if not nudged:  # a burst has gone quiet: copy what it left, once
                if self._changes_seen == self._caught_up:
                    continue
                self._caught_up = self._changes_seen
            try:
                if conn is None:
                    conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
                    # A checkpoint fsyncs the WAL before it copies and the database file after; with
                    # synchronous=OFF it would not, and a power cut could lose committed pages.
                    conn.execute("PRAGMA synchronous = FULL")
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.last_result = (busy, frames, done)
                self.checkpoints += 1
                self._last_error = ""
            except sqlite3.Error as exc:  # disk full, file gone: the writer's commits say so
                self._failed(exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
