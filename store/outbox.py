"""The outbox of automatic replies: claiming what may be sent now, and recording each row's fate.

Statuses (docs/architecture.md, "The outbox"):

    queued -> sending -> sent -> delivered | undeliverable | expired | rejected
       |         | | \\-> failed           (a permanent error from Infobip, or unsendable)
       |         | |\\--> queued            (a transient error: retried later, same messageId)
       |         | \\---> cancelled         (an opt-out committed after the claim, seen as the request left)
       |         \\----> unknown -> sent | rejected  (found in Infobip's message logs)
       |                      \\--> queued  (not in the logs after the last look: same messageId)
       \\-> cancelled                      (an opt-out, a deleted credential, consent at send time)

`sending` is written, and committed, before the request leaves: a reply is claimed by exactly one
sender, the consent check and the claim are one transaction. `unknown`: the request's answer was
lost or could not be read (or the sender died with it in flight), so Infobip may have it; the
sender asks Infobip's message logs, and only a reply still missing after its last look goes back
to the queue (`requeue_unknown`): the one case where a reply can reach Infobip twice, with the
same messageId of ours. A line with a reply `sending` or `unknown` waits for it.

Every function here is a writer job (module-level, plain-tuple arguments and results), but
`opted_out_numbers`, the sender's read just before a request leaves.
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple

from smsdesk.store.db import utcnow

# Reply kinds (the action of the message that queued them) that may reach an opted-out number:
# the opt-out confirmation itself and the answer to HELP.
ALWAYS_ALLOWED_KINDS = ("opt-out", "help")


class OutboxRow(NamedTuple):
    id: int
    credential_id: int
    credential_name: str
    our_message_id: str
    sender: str
    to_number: str
    text: str
    validity_period_hours: int
    callback_data: str
    principal_entity_id: str
    content_template_id: str
    attempts: int
    kind: str
    sandbox: str


class SendOutcome(NamedTuple):
    """What became of one claimed reply; `record_outcomes` writes it."""

    row_id: int
    status: str  # sent | rejected | failed | queued (retry) | cancelled (opt-out seen as the request left)
    #              | unknown (the answer was lost or unreadable: the message logs are asked)
    infobip_message_id: str = ""
    delivery_status: str = ""  # Infobip's status group from the send answer
    error: str = ""
    next_attempt_at: float = 0.0


_COLUMNS = ", ".join(f"o.{name}" for name in OutboxRow._fields)

# The head of each (credential, number) line: the oldest reply not yet finished. Only a head is
# ever claimed, and nothing is claimed while the line has a reply in flight, so the replies to one
# number leave in the order their messages arrived, one request after the other.
# Consent is read in the credential's sandbox as it is now, not the one copied at queue time (a
# sandbox edit moves the queue too, `move_to_sandbox`, but a database from before that kept the
# old one); a reply whose credential is gone keeps its own, and is cancelled anyway.
_HEADS = f"""SELECT {_COLUMNS}, COALESCE(c.consent, ''), k.id IS NOT NULL
    FROM outbox o INDEXED BY outbox_queued
    LEFT JOIN credentials k ON k.id = o.credential_id
    LEFT JOIN consent c ON c.sandbox = COALESCE(k.sandbox, o.sandbox) AND c.number = o.to_number
    WHERE o.status = 'queued' AND o.next_attempt_at <= ?
      AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.to_number = o.to_number AND p.credential_id = o.credential_id
                      AND p.id < o.id AND p.status IN ('queued', 'sending', 'unknown'))
    ORDER BY o.id LIMIT ?"""
# Both reads go through partial indexes of unfinished replies only (schema 16): queued replies in
# id order (outbox_queued: the walk stops at `limit` heads, no sort of the whole backlog), and the
# line's earlier unfinished replies (outbox_unfinished: not every reply the number ever got). The
# subquery's status list is the index's own WHERE, word for word: SQLite uses a partial index only
# when the query says so itself. INDEXED BY: without statistics the planner prefers outbox_pending
# (status, next_attempt_at) and sorts every due reply of the backlog to find the first few.


def claim_due(conn: sqlite3.Connection, limit: int, now: float | None = None) -> list[tuple]:
    """Claim up to `limit` due replies for sending: each one's line head, consent re-checked.

    In the same transaction, a head that its number's current consent forbids, or whose
    credential is gone, is cancelled instead; the next reply in its line is then the head.
    Each claimed row records the generation of the sender that claimed it: serve runs the
    sender's jobs fenced (writer/fencing.py), so it is the current one.
    """
    moment = time.time() if now is None else now
    at = utcnow()
    claimed: list[tuple] = []
    cancelled: list[tuple[str, str, int]] = []
    for *fields, consent, credential_exists in conn.execute(_HEADS, (moment, limit)):
        row = OutboxRow(*fields)
        if not credential_exists:
            cancelled.append(("the credential was deleted before the reply was sent", at, row.id))
        elif consent == "n" and row.kind not in ALWAYS_ALLOWED_KINDS:
            cancelled.append(("the number opted out before the reply was sent", at, row.id))
        else:
            claimed.append(tuple(row))
    claimed = _not_waiting_for_an_unblock(conn, claimed, moment)
    if cancelled:
        conn.executemany("UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ? "
                         "WHERE id = ? AND status = 'queued'", cancelled)
    if claimed:
        conn.executemany("UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ?, "
                         "sender_generation = (SELECT generation FROM sender_generation WHERE id = 1) "
                         "WHERE id = ? AND status = 'queued'", [(at, row[0]) for row in claimed])
    return claimed


# An opt-in queues its welcome and, for a credential that syncs the Blocklist, an unblock
# (store/blocklist_queue.py). Infobip checks its Blocklist before it sends, so a welcome that left
# first would be refused: a reply to a number with an unblock still open waits for it, at most
# UNBLOCK_WAIT_S after the unblock was queued; a Blocklist that does not answer delays a reply that
# long, never consent (the ledger entry is committed with the opt-in).
UNBLOCK_WAIT_S = 60.0


def _not_waiting_for_an_unblock(conn: sqlite3.Connection, claimed: list[tuple], moment: float) -> list[tuple]:
    if not claimed:
        return claimed
    # The open pushes only (the partial index blocklist_queue_open): none, usually.
    waiting = {(credential_id, number) for credential_id, number in conn.execute(
        "SELECT credential_id, number FROM blocklist_queue WHERE status IN ('queued', 'sending', 'unknown') "
        "AND action = 'unblock' AND queued_ts > ?", (moment - UNBLOCK_WAIT_S,))}
    return [row for row in claimed if (row[1], row[5]) not in waiting]  # OutboxRow's credential_id, to_number


def record_outcomes(conn: sqlite3.Connection, outcomes: list[tuple]) -> int:
    """Write what the sender learnt. Idempotent: safe to run again after a failed commit.

    Only a reply still in flight (`sending`, or `unknown` for what Infobip's answer or its logs
    say) changes status; a delivery report that overtook the send answer has already moved it
    further, and that is kept (the Infobip id is recorded either way).
    """
    at = utcnow()
    sent = [(o.status, o.infobip_message_id, o.delivery_status, at, o.row_id)
            for o in map(SendOutcome._make, outcomes) if o.status in ("sent", "rejected")]
    others = [(o.status, o.error[:500], o.next_attempt_at, at, o.row_id)
              for o in map(SendOutcome._make, outcomes) if o.status in ("failed", "queued", "cancelled", "unknown")]
    if sent:
        conn.executemany(
            "UPDATE outbox SET status = CASE WHEN status IN ('sending', 'unknown') THEN ? ELSE status END, "
            "infobip_message_id = ?, delivery_status = CASE WHEN delivery_status = '' THEN ? ELSE delivery_status END, "
            "last_error = '', updated_at = ? WHERE id = ?", sent)
    if others:
        conn.executemany(
            "UPDATE outbox SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? "
            "WHERE id = ? AND status = 'sending'", others)
    return len(sent) + len(others)


def record_journaled(conn: sqlite3.Connection, entries: list[tuple]) -> tuple[int, int]:
    """Record answers from the answer journal: (our messageId, *SendOutcome) each. Only a reply
    whose row id AND our messageId both match is recorded, so a journal left beside this file by
    another database (a copy restored over it, a file moved in) cannot mark an unrelated reply.
    Returns (recorded, skipped)."""
    matching: list[tuple] = []
    for our_message_id, *outcome in entries:
        found = conn.execute("SELECT our_message_id FROM outbox WHERE id = ?", (outcome[0],)).fetchone()
        if found is not None and found[0] == our_message_id:
            matching.append(tuple(outcome))
    record_outcomes(conn, matching)
    return len(matching), len(entries) - len(matching)


def in_flight(conn: sqlite3.Connection, reason: str) -> list[tuple[int, int, str, str]]:
    """At a sender's start: the replies a dead sender left in flight (`sending`, `unknown`), as
    (id, credential id, our messageId, updated_at). Those `sending` become `unknown` with
    `reason`: whether Infobip got them is what its message logs are asked (engine/outbox_sender.py)."""
    rows = conn.execute("SELECT id, credential_id, our_message_id, updated_at FROM outbox "
                        "WHERE status IN ('sending', 'unknown') ORDER BY id").fetchall()
    conn.execute("UPDATE outbox SET status = 'unknown', last_error = ?, updated_at = ? WHERE status = 'sending'",
                 (reason, utcnow()))
    return [tuple(row) for row in rows]


def requeue_unknown(conn: sqlite3.Connection, rows: list[tuple[int, str]]) -> int:
    """Replies whose fate stayed unknown (not in Infobip's message logs after the sender's last
    look, or the logs could not be read) go back to the queue, to be sent again with the same
    messageId of ours: (id, reason) each. A reply a delivery report moved on meanwhile stays."""
    return conn.executemany(
        "UPDATE outbox SET status = 'queued', next_attempt_at = 0, last_error = ?, updated_at = ? "
        "WHERE id = ? AND status IN ('sending', 'unknown')", [(reason[:500], utcnow(), row_id)
                                                               for row_id, reason in rows]).rowcount


def opted_out_numbers(conn: sqlite3.Connection, credential_id: int, sandbox: str, numbers: list[str]) -> set[str]:
    """Which of `numbers` are at consent `n` in the credential's sandbox as it is now (`sandbox`,
    the replies' own, if the credential is gone): the sender's last look before a request leaves
    (engine/outbox_sender.py). A read, not a writer job: one statement, by consent's key."""
    if not numbers:
        return set()
    return {number for (number,) in conn.execute(
        "SELECT number FROM consent WHERE sandbox = COALESCE((SELECT sandbox FROM credentials WHERE id = ?), ?) "
        f"AND number IN ({', '.join('?' * len(numbers))}) AND consent = 'n'",
        (credential_id, sandbox, *numbers)).fetchall()}


def cancel_for_credential(conn: sqlite3.Connection, credential_id: int, name: str) -> int:
    """Cancel a deleted credential's queued replies (inside the delete's transaction)."""
    return conn.execute(
        "UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ? "
        "WHERE credential_id = ? AND status = 'queued'",
        (f"credential {name!r} was deleted before the reply was sent", utcnow(), credential_id)).rowcount


def move_to_sandbox(conn: sqlite3.Connection, credential_id: int, sandbox: str) -> int:
    """A credential's sandbox was edited: its unfinished replies (queued, sending) follow it, inside
    the edit's transaction, so that an opt-out stored under the new sandbox cancels them
    (`cancel_for_opt_outs` matches the reply's own sandbox). Finished replies keep the sandbox they
    were sent under, as their messages do."""
    return conn.execute(
        "UPDATE outbox SET sandbox = ?, updated_at = ? "
        "WHERE credential_id = ? AND status IN ('queued', 'sending', 'unknown') AND sandbox <> ?",
        (sandbox, utcnow(), credential_id, sandbox)).rowcount


def cancel_for_opt_outs(conn: sqlite3.Connection, opt_outs: list[tuple[str, str, int, int]]) -> int:
    """Cancel what was queued for each (sandbox, number) before its opt-out (reply id < boundary).

    The opt-out confirmation and HELP answers are kept. `opt_outs` rows are (reason, sandbox,
    number, boundary); run in the transaction that stores the opt-out.
    """
    at = utcnow()
    cursor = conn.executemany(
        "UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ? "
        "WHERE to_number = ? AND sandbox = ? AND id < ? AND status = 'queued' "
        f"AND kind NOT IN ({', '.join('?' * len(ALWAYS_ALLOWED_KINDS))})",
        [(reason, at, number, sandbox, boundary, *ALWAYS_ALLOWED_KINDS)
         for reason, sandbox, number, boundary in opt_outs])
    return cursor.rowcount


def backlog(conn: sqlite3.Connection) -> dict[str, int]:
    """Queued, unknown (their answer lost: Infobip's logs are being asked) and failed replies by
    status: the TUI's status line shows the backlog while Infobip is failing, on every tick. Only
    these statuses are counted, each a range of the status index: counting every status read the
    whole index, one entry per reply ever sent."""
    return dict(conn.execute(
        "SELECT status, COUNT(*) FROM outbox WHERE status IN ('queued', 'unknown', 'failed') GROUP BY status"
    ).fetchall())


# --- delivery reports ------------------------------------------------------------------------
#
# Reports arrive in any order (Infobip documents none; a webhook retry or a pull can bring an
# old one late), so a report only ever moves a reply forward. Ranks:
#   0 queued, sending (claimed, request in flight), unknown (its answer lost: a report proves it went)
#   1 sent: Infobip has it (ACCEPTED or PENDING reports, the send answer)
#   2 final: DELIVERED, UNDELIVERABLE, EXPIRED, REJECTED
# A report whose rank is not above the reply's moves neither `status` nor the shown
# `delivery_status`/`delivery_detail`: a PENDING after DELIVERED, or a second final report
# after a first, is recorded in `delivery_reports` and nothing else. Rows the sender settled
# itself (`failed`, `cancelled`) keep their status; their shown delivery status still moves
# forward, since a report proves the message went out after all.

# Infobip's status group -> our reply status.
_GROUP_STATUS = {
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "undeliverable",
    "EXPIRED": "expired",
    "REJECTED": "rejected",
    "PENDING": "sent",
    "ACCEPTED": "sent",
}
FINAL_GROUPS = frozenset(group for group, status in _GROUP_STATUS.items() if status != "sent")
_STATUS_RANK = {"queued": 0, "sending": 0, "unknown": 0, "sent": 1,
                **{status: 2 for status in _GROUP_STATUS.values() if status != "sent"}}
_SETTLED_BY_SENDER = frozenset({"failed", "cancelled"})  # never moved by a report

# (messageId, groupName, 'NAME: description'[, doneAt]): what engine/mo.py's parse_delivery_reports
# gives; plain tuples, so a batch travels to the writer process as it is.
Report = tuple[str, ...]


def report_rank(group_name: str) -> int:
    """A report's rank: 2 final, 1 anything else (ACCEPTED, PENDING, a group we do not know)."""
    return 2 if group_name.upper() in FINAL_GROUPS else 1


def _shown_rank(status: str, delivery_status: str) -> int:
    """Where a reply stands now. The status says it for rows a report can move; for the others
    (failed, cancelled) the shown delivery status does: a final group name, any other text
    (the send answer's status name, a PENDING report), or nothing yet."""
    if status in _STATUS_RANK:
        return _STATUS_RANK[status]
    if not delivery_status:
        return 0
    return report_rank(delivery_status)


def apply_delivery_report(conn: sqlite3.Connection, message_id: str, group_name: str, detail: str,
                          done_at: str = "") -> bool:
    """Record a delivery report and move its reply forward if it ranks above where the reply is.

    Matches Infobip's id or ours (we send ours as messageId). Returns whether a reply matched.
    """
    matches = conn.execute(
        "SELECT id, status, delivery_status FROM outbox WHERE infobip_message_id = ? OR our_message_id = ?",
        (message_id, message_id),
    ).fetchall()
    group = group_name.upper()
    detail = detail[:500]
    now = utcnow()
    for outbox_id, status, delivery_status in matches:
        rank = report_rank(group)
        applies = rank > _shown_rank(status, delivery_status)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO delivery_reports (outbox_id, message_id, group_name, detail, done_at, "
            "received_at, applied) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (outbox_id, message_id, group_name, detail, done_at, now, int(applies)),
        )
        if not applies or cursor.rowcount == 0:
            continue  # not newer than what is shown, or this very report was recorded before
        if status in _SETTLED_BY_SENDER:
            conn.execute("UPDATE outbox SET delivery_status = ?, delivery_detail = ?, updated_at = ? WHERE id = ?",
                         (group_name, detail, now, outbox_id))
        else:
            conn.execute(
                "UPDATE outbox SET status = ?, delivery_status = ?, delivery_detail = ?, updated_at = ? WHERE id = ?",
                (_GROUP_STATUS.get(group, "sent"), group_name, detail, now, outbox_id))
    return bool(matches)


def apply_delivery_reports(conn: sqlite3.Connection, reports: list[Report]) -> int:
    """The writer job for a batch of reports (a webhook's, or a pull's), in their order; returns
    how many matched a reply. Applying a batch twice changes nothing the first time did not."""
    return sum(apply_delivery_report(conn, *report) for report in reports)
