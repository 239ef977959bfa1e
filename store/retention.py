"""Retention: remove message texts, replies and delivery reports older than N days.

What stays, whatever the age (the evidence of consent, docs/architecture.md "Retention"):
- every consent ledger entry, and the message each one points at, with its text;
- the reply to such a message (the confirmation that was sent) and its delivery reports;
- a reply not settled yet (queued, sending, unknown) and the message it answers;
- the message of an open review item;
- the newest message and the newest reply (ids come from MAX(id) + 1: deleting the newest would
  hand its id out again; the schema's triggers refuse it).
Consent rows, profiles, attributes, traffic counts, the audit and credentials are not touched.

It walks each table by id from the oldest, one chunk per transaction (`purge_chunk`), so no
transaction holds the write lock for long and a reader or the receiver gets in between. Rows
are roughly in time order by id, so the walk stops at the first chunk with nothing old left.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlite_utils

from smsdesk.store.db import transaction

CHUNK = 500  # rows looked at per transaction: a few milliseconds of write lock
MIN_DAYS = 1  # a sent reply's delivery report can come a day or two later (its validity period)


@dataclass
class PurgeCounts:
    """What a purge removed (or, in a dry run, would remove)."""

    messages: int = 0
    replies: int = 0
    delivery_reports: int = 0
    unreadable: int = 0
    pull_losses: int = 0
    kept_as_evidence: int = 0  # old messages kept: a ledger entry, an open item or an unsettled reply needs them

    def add(self, other: PurgeCounts) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def removed(self) -> int:
        return self.messages + self.replies + self.delivery_reports + self.unreadable + self.pull_losses


_SMALL_TABLES = (("unreadable_inbound", "unreadable"), ("pull_losses", "pull_losses"))
_COUNTS = ("messages", "replies", "delivery_reports", "unreadable", "pull_losses", "kept_as_evidence")


@dataclass(frozen=True)
class Walk:
    """Where a purge has got to: ids up to these are done. Plain values, so that a chunk can run
    as a job of the writer process and hand the place back."""

    cutoff: str
    messages_after: int = 0
    replies_after: int = 0
    messages_done: bool = False
    replies_done: bool = False

    @property
    def done(self) -> bool:
        return self.messages_done and self.replies_done


def cutoff_for(days: int, now: datetime | None = None) -> str:
    """The stored_at/created_at below which rows are old, as the store writes times."""
    if days < MIN_DAYS:
        raise ValueError(f"the retention period must be at least {MIN_DAYS} day")
    return ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="milliseconds")


# A message is evidence when a ledger entry or an open review item points at it, or its reply is
# not settled yet. Its reply and that reply's reports stay with it.
_MESSAGE_IS_KEPT = """EXISTS (SELECT 1 FROM consent_ledger l WHERE l.message_row_id = m.id)
    OR EXISTS (SELECT 1 FROM review_queue r WHERE r.message_row_id = m.id AND r.status = 'open')
    OR EXISTS (SELECT 1 FROM outbox o WHERE o.message_row_id = m.id AND o.status IN ('queued', 'sending', 'unknown'))"""


def purge_chunk(conn: sqlite3.Connection, walk: Walk, *, dry_run: bool = False,
                chunk: int = CHUNK) -> tuple[Walk, PurgeCounts]:
    """The next `chunk` messages (old ones removed with their replies and reports), the next
    `chunk` replies no message points at (manual sends), and old unreadable results and lost-pull
    records; the caller holds the transaction (the CLI's own, or the writer's group commit). A dry
    run only counts (messages and replies; `purge` counts the small tables once)."""
    counts = PurgeCounts()
    if not walk.messages_done:
        walk = _messages(conn, walk, counts, chunk, dry_run)
    if not walk.replies_done:
        walk = _lone_replies(conn, walk, counts, chunk, dry_run)
    if not dry_run:
        for table, name in _SMALL_TABLES:
            setattr(counts, name, conn.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < ? ORDER BY id LIMIT ?)",
                (walk.cutoff, chunk)).rowcount)
    if counts.removed and not dry_run:
        # The TUI re-reads when the content version moves (a purge changes no newest id).
        conn.execute("UPDATE content_version SET version = version + 1 WHERE id = 1")
    return walk, counts


def _messages(conn: sqlite3.Connection, walk: Walk, counts: PurgeCounts, chunk: int, dry_run: bool) -> Walk:
    rows = conn.execute(
        f"""SELECT m.id, m.stored_at < ? AS old, ({_MESSAGE_IS_KEPT}) AS kept
            FROM messages m WHERE m.id > ? AND m.id < (SELECT MAX(id) FROM messages) ORDER BY m.id LIMIT ?""",
        (walk.cutoff, walk.messages_after, chunk)).fetchall()
    old = [(row_id, kept) for row_id, is_old, kept in rows if is_old]
    doomed = [row_id for row_id, kept in old if not kept]
    counts.kept_as_evidence += len(old) - len(doomed)
    for part in _parts(doomed):
        marks = ",".join("?" * len(part))
        replies = [r for (r,) in conn.execute(
            f"SELECT id FROM outbox WHERE message_row_id IN ({marks}) AND id < (SELECT MAX(id) FROM outbox)", part)]
        _replies(conn, replies, counts, dry_run)
        counts.messages += len(part) if dry_run else conn.execute(
            f"DELETE FROM messages WHERE id IN ({marks})", part).rowcount
    # Ids follow time (a clock step aside): a chunk whose last row is new ends the walk.
    finished = not rows or not rows[-1][1]
    return replace(walk, messages_after=rows[-1][0] if rows else walk.messages_after, messages_done=finished)


def _lone_replies(conn: sqlite3.Connection, walk: Walk, counts: PurgeCounts, chunk: int, dry_run: bool) -> Walk:
    rows = conn.execute(
        """SELECT id, created_at < ? AS old, status NOT IN ('queued', 'sending', 'unknown') AND message_row_id IS NULL
           FROM outbox WHERE id > ? AND id < (SELECT MAX(id) FROM outbox) ORDER BY id LIMIT ?""",
        (walk.cutoff, walk.replies_after, chunk)).fetchall()
    _replies(conn, [row_id for row_id, old, lone in rows if old and lone], counts, dry_run)
    finished = not rows or not rows[-1][1]
    return replace(walk, replies_after=rows[-1][0] if rows else walk.replies_after, replies_done=finished)


def _replies(conn: sqlite3.Connection, reply_ids: list[int], counts: PurgeCounts, dry_run: bool) -> None:
    for part in _parts(reply_ids):
        marks = ",".join("?" * len(part))
        if dry_run:
            counts.delivery_reports += conn.execute(
                f"SELECT COUNT(*) FROM delivery_reports WHERE outbox_id IN ({marks})", part).fetchone()[0]
            counts.replies += len(part)
            continue
        counts.delivery_reports += conn.execute(
            f"DELETE FROM delivery_reports WHERE outbox_id IN ({marks})", part).rowcount
        counts.replies += conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", part).rowcount


def _parts(ids: list[int], size: int = 400) -> list[list[int]]:
    """Slices small enough for SQLite's bound on host parameters."""
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def purge(db: sqlite_utils.Database, days: int, *, dry_run: bool = False, now: datetime | None = None,
          chunk: int = CHUNK) -> tuple[str, PurgeCounts]:
    """Every chunk, each in a transaction of its own, until nothing old is left (`smsdesk purge`);
    then the free pages given back and the statistics refreshed. Returns the cutoff and what was
    removed (or would be)."""
    walk = Walk(cutoff_for(days, now))
    total = PurgeCounts()
    while not walk.done:
        if dry_run:
            walk, step = purge_chunk(db.conn, walk, dry_run=True, chunk=chunk)
        else:
            with transaction(db) as conn:
                walk, step = purge_chunk(conn, walk, chunk=chunk)
        total.add(step)
    if dry_run:
        for table, name in _SMALL_TABLES:
            setattr(total, name, db.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE at < ?",
                                                 (walk.cutoff,)).fetchone()[0])
    else:
        while True:  # what is left of the two small tables (more than a chunk's worth)
            with transaction(db) as conn:
                _, step = purge_chunk(conn, walk, chunk=chunk)
            total.add(step)
            if not step.removed:
                break
        left = 1
        while left:
            with transaction(db) as conn:
                left = give_space_back(conn)
        optimize(db.conn)
    return walk.cutoff, total


def give_space_back(conn: sqlite3.Connection, pages: int = 2000) -> int:
    """Return up to `pages` free pages to the file system, when the file was made with incremental
    auto-vacuum (`smsdesk purge --vacuum` converts an older one); the caller holds the transaction,
    so a writer job stays short. Returns how many free pages are left."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:  # not INCREMENTAL: nothing to give back
        return 0
    for _ in range(pages):
        # One page per statement: Python's sqlite3 steps a statement without columns only once.
        if not conn.execute("PRAGMA freelist_count").fetchone()[0]:
            return 0
        conn.execute("PRAGMA incremental_vacuum(1)")
    return int(conn.execute("PRAGMA freelist_count").fetchone()[0])


# Rows ANALYZE reads per index when `optimize` decides a table's statistics are stale: an
# approximate ANALYZE, as SQLite advises for long-lived connections, so the writer never holds the
# write lock for a full pass over every index (0.5 s at 1M messages, seconds at 5M).
ANALYSIS_LIMIT = 1000


def optimize(conn: sqlite3.Connection) -> None:
    """Fresh statistics for the query planner where they are stale: at start and after a purge,
    bounded (ANALYSIS_LIMIT)."""
    conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
    conn.execute("PRAGMA optimize")


def vacuum_incrementally(conn: sqlite3.Connection) -> bool:
    """Make a file created before retention give space back: incremental auto-vacuum takes one
    full VACUUM to switch on (it rewrites the file, holding the write lock). True when it ran."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
        return False
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")
    return True
