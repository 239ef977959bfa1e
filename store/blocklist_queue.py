"""The durable queue of Blocklist pushes: a block for each opt-out here, an unblock for each
opt-in after one, per credential whose `blocklist_sync` pushes (push or two-way) in the number's
sandbox. Filled by `write_consent` in the transaction of the consent change (so the ledger entry
and its push commit together, or neither), drained by serve (engine/blocklist_sync.py):
at-least-once, retried with backoff, and what a lost answer did is read back from the Blocklist.

Statuses: queued (waiting, maybe for its next attempt), sending (its request may have left),
unknown (its answer was lost: read the Blocklist before anything else), done, superseded (a newer
change of the same number for the same credential replaced it before it was pushed), refused
(Infobip refused it for good: a 400; the operator sees it in `smsdesk consent blocklist-queue`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smsdesk.domain.consent_decider import Consent

if TYPE_CHECKING:
    from smsdesk.store.consent_store import ConsentWrite

BLOCK = "block"
UNBLOCK = "unblock"
OPEN = ("queued", "sending", "unknown")
# A block waits while the number has a reply not yet settled (the opt-out's confirmation: Infobip
# checks the Blocklist before sending, and would refuse it), at most this long.
CONFIRMATION_GRACE_S = 600.0


@dataclass(frozen=True, slots=True)
class QueuedPush:
    id: int
    credential_id: int
    sandbox: str
    number: str
    sender: str
    action: str
    status: str
    attempts: int
    last_error: str = ""
    created_at: str = ""


def enqueue_for_writes(conn: sqlite3.Connection, writes: Sequence[ConsentWrite], now: str) -> int:
    """Queue the pushes the consent changes of `writes` call for (inside their transaction)."""
    moves: list[tuple[str, str, str]] = []
    for w in writes:
        if not w.outcome.entries:
            continue
        before, after = w.outcome.entries[0].old, w.outcome.state.value
        if before != Consent.NO and after == Consent.NO:
            moves.append((w.sandbox, w.number, BLOCK))
        elif before == Consent.NO and after != Consent.NO:
            moves.append((w.sandbox, w.number, UNBLOCK))
    if not moves:
        return 0
    count = 0
    pushing = _pushing_credentials(conn)
    for sandbox, number, action in moves:
        for credential_id, sender in pushing.get(sandbox, ()):
            if sender:
                enqueue(conn, credential_id, sandbox, number, sender, action, now)
                count += 1
    return count


# The credentials that push, by sandbox, per database file and credentials version: an opt-out in
# a webhook reads one keyed row (the version) instead of the credentials table (the ingest
# query-plan test holds webhooks to that).
_PUSHERS: dict[tuple[str, int], dict[str, list[tuple[int, str]]]] = {}


def _pushing_credentials(conn: sqlite3.Connection) -> dict[str, list[tuple[int, str]]]:
    file = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
    version = int(conn.execute("SELECT version FROM credentials_version WHERE id = 1").fetchone()[0])
    cached = _PUSHERS.get((file, version))
    if cached is None or not file:  # an in-memory database has no name to key it by
        cached = {}
        for credential_id, sandbox, sender, inbound in conn.execute(
                "SELECT id, sandbox, sender, inbound_number FROM credentials WHERE blocklist_sync <> 'off'"):
            cached.setdefault(sandbox, []).append((credential_id, sender or inbound))
        _PUSHERS.clear()  # one file and version at a time is what a process uses
        _PUSHERS[(file, version)] = cached
    return cached


def enqueue(conn: sqlite3.Connection, credential_id: int, sandbox: str, number: str, sender: str, action: str,
            now: str) -> int:
    """Queue one push; an earlier one of the same number for the same credential not yet sent is
    superseded (only the newest wish matters). Its id."""
    conn.execute("UPDATE blocklist_queue SET status = 'superseded', updated_at = ? "
                 "WHERE credential_id = ? AND number = ? AND status = 'queued'", (now, credential_id, number))
    cursor = conn.execute(
        "INSERT INTO blocklist_queue (credential_id, sandbox, number, sender, action, queued_ts, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (credential_id, sandbox, number, sender, action, time.time(), now, now))
    return int(cursor.lastrowid or 0)


def reset_in_flight(conn: sqlite3.Connection, now: str) -> int:
    """At serve's start: a push left `sending` by a serve that stopped may have reached Infobip."""
    return conn.execute("UPDATE blocklist_queue SET status = 'unknown', last_error = 'serve stopped while it was "
                        "being sent', updated_at = ? WHERE status = 'sending'", (now,)).rowcount


def due(conn: sqlite3.Connection, now_ts: float, limit: int = 50) -> list[QueuedPush]:
    """Pushes whose time has come, oldest first. Only the newest open push of a (credential,
    number) goes (an older one in flight is resolved first); a block waits for the number's
    unsettled replies (its confirmation) up to CONFIRMATION_GRACE_S."""
    rows = conn.execute(
        "SELECT q.id, q.credential_id, q.sandbox, q.number, q.sender, q.action, q.status, q.attempts, q.last_error, "
        "q.created_at FROM blocklist_queue q "
        "WHERE q.status IN ('queued', 'unknown') AND q.next_attempt_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM blocklist_queue e WHERE e.credential_id = q.credential_id "
        "  AND e.number = q.number AND e.id < q.id AND e.status IN ('sending', 'unknown')) "
        "AND (q.action <> 'block' OR q.queued_ts <= ? OR NOT EXISTS (SELECT 1 FROM outbox o "
        "  WHERE o.to_number = q.number AND o.sandbox = q.sandbox AND o.status IN ('queued', 'sending', 'unknown'))) "
        "ORDER BY q.id LIMIT ?", (now_ts, now_ts - CONFIRMATION_GRACE_S, limit)).fetchall()
    return [QueuedPush(*row) for row in rows]


def mark_sending(conn: sqlite3.Connection, push_id: int, now: str) -> bool:
    """Record that the request is about to leave (committed before it does); False when the push
    is no longer open (superseded, or taken meanwhile)."""
    return conn.execute("UPDATE blocklist_queue SET status = 'sending', attempts = attempts + 1, updated_at = ? "
                        "WHERE id = ? AND status IN ('queued', 'unknown')", (now, push_id)).rowcount == 1


def mark_done(conn: sqlite3.Connection, push_id: int, now: str, note: str = "") -> None:
    conn.execute("UPDATE blocklist_queue SET status = 'done', last_error = ?, updated_at = ? WHERE id = ?",
                 (note, now, push_id))


def mark_retry(conn: sqlite3.Connection, push_id: int, error: str, next_ts: float, now: str,
               unknown: bool) -> None:
    """Try again at `next_ts`; `unknown`: the request may have taken effect (read the Blocklist first)."""
    conn.execute("UPDATE blocklist_queue SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? "
                 "WHERE id = ?", ("unknown" if unknown else "queued", error[:500], next_ts, now, push_id))


def mark_refused(conn: sqlite3.Connection, push_id: int, error: str, now: str) -> None:
    conn.execute("UPDATE blocklist_queue SET status = 'refused', last_error = ?, updated_at = ? WHERE id = ?",
                 (error[:500], now, push_id))


def open_numbers(conn: sqlite3.Connection, credential_id: int) -> set[str]:
    """Numbers with a push still open for the credential (reconcile leaves them to the queue)."""
    return {n for (n,) in conn.execute(
        "SELECT DISTINCT number FROM blocklist_queue WHERE credential_id = ? AND status IN ('queued', 'sending', "
        "'unknown')", (credential_id,))}


def open_counts(conn: sqlite3.Connection) -> dict[int, int]:
    """Open pushes per credential id (the TUI counts them)."""
    return {cid: n for cid, n in conn.execute(
        "SELECT credential_id, COUNT(*) FROM blocklist_queue WHERE status IN ('queued', 'sending', 'unknown') "
        "GROUP BY credential_id")}


def list_pushes(conn: sqlite3.Connection, *, everything: bool = False, credential_id: int | None = None,
                limit: int = 500) -> list[QueuedPush]:
    """Open and refused pushes (all of them with `everything`), newest first."""
    where = ["1"] if everything else ["status IN ('queued', 'sending', 'unknown', 'refused')"]
    params: list[object] = []
    if credential_id is not None:
        where.append("credential_id = ?")
        params.append(credential_id)
    rows = conn.execute(
        "SELECT id, credential_id, sandbox, number, sender, action, status, attempts, last_error, created_at "
        f"FROM blocklist_queue WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    return [QueuedPush(*row) for row in rows]
