"""What `serve` runs again and again, and what the TUI reads on every tick, must not read whole tables.

Like test_ingest_query_plans.py for storing webhooks: each writer job (the outbox claim, send
results, delivery reports, the double opt-in expiry sweep, the heartbeat, /healthz) and each
periodic TUI read is run against a real database that already holds thousands of messages,
consent rows, replies in every status and delivery reports; every statement it runs is explained,
and no plan may scan a table that grows with traffic unless the test allows it, saying why.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smsdesk.engine.outbox_sender import CLAIM_LIMIT
from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.store.credentials import find_credential_by_id, list_credentials
from smsdesk.store.db import connect, transaction
from smsdesk.store.expiry import expire_pending
from smsdesk.store.heartbeat import record_heartbeat
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from smsdesk.store.outbox import (
    SendOutcome,
    apply_delivery_reports,
    backlog,
    cancel_for_credential,
    claim_due,
    in_flight,
    record_journaled,
    record_outcomes,
    requeue_unknown,
)
from smsdesk.store.queries import MessageFilter, log_updates, page_messages, receiver_heartbeat_at, traffic
from smsdesk.store.storage_check import check_storage
from tests.support.query_plans import plans, table_scans, traced
from tests.support.store import copy_db, rows

# Club (dev) has double opt-in: START makes a number pending, CONFIRM confirms it.
KEYWORDS = ("STOP", "START", "HELP", "hello", "YES", "DISCOUNT", "CONFIRM")
NUMBERS = 2500
MESSAGES = 6000
LATER = 4.0e9  # a time.time() after every retry the set-up schedules
FAR_FUTURE = "2099-01-01T00:00:00.000+00:00"  # every pending double opt-in has expired by then


def traffic_of(start: int, count: int, day: int) -> list[InboundMessage]:
    """`count` messages to both programmes from NUMBERS numbers (each texts several times)."""
    return [InboundMessage(f"job-{start + i}", f"+4179{(start + i) % NUMBERS:07d}",
                           "+" + (SHOP_NUMBER if i % 2 else CLUB_NUMBER), KEYWORDS[(i // 2) % len(KEYWORDS)],
                           f"2026-11-{day + i * 10 // count:02d}T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z")
            for i in range(count)]


def send_round(conn: sqlite3.Connection) -> None:
    """What the sender does, with every fate: most sent, some rejected, failed, or retried later."""
    while claimed := claim_due(conn, 1000, LATER - 1):
        fates = ("failed", "queued", "rejected") + ("sent",) * 7
        record_outcomes(conn, [tuple(SendOutcome(row[0], status, f"ib-{row[0]}", "PENDING", "an error",
                                                 LATER if status == "queued" else 0.0))
                               for row in claimed for status in [fates[row[0] % len(fates)]]])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db_path = make_db(tmp_path_factory.mktemp("jobs") / "template.db", shop_credential(), club_credential())
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            store_messages(conn, RouteTable(), traffic_of(0, MESSAGES, day=1))
            send_round(conn)
            # Reports for most replies sent, by Infobip's id; some only intermediate (PENDING).
            groups = ("DELIVERED", "DELIVERED", "PENDING", "UNDELIVERABLE")
            apply_delivery_reports(conn, [(f"ib-{i}", groups[i % 4], "detail", "") for i in range(1, MESSAGES)])
            # A round in flight (sending), then a fresh backlog of several replies per number (queued).
            store_messages(conn, RouteTable(), traffic_of(MESSAGES, 400, day=15))
            claim_due(conn, 100, LATER)
            store_messages(conn, RouteTable(), traffic_of(MESSAGES + 400, 1200, day=25))
            record_heartbeat(conn, 1)
    finally:
        db.close()
    statuses = dict(rows(db_path, "SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    assert {"queued", "sending", "sent", "delivered", "undeliverable", "failed", "rejected", "cancelled"} <= set(
        statuses), statuses
    assert rows(db_path, "SELECT COUNT(*) FROM consent WHERE consent = 'p'")[0][0] > 100
    return db_path


@pytest.fixture()
def busy_db(template: Path, tmp_path: Path) -> Path:
    return copy_db(template, tmp_path / "busy.db")


def assert_no_scan(db_path: Path, statements: list[str], *expected: str, allowed: tuple[str, ...] = ()) -> None:
    """Each `expected` fragment was traced (the job did its work), and no plan scans a growing table."""
    for fragment in expected:
        assert any(fragment in sql for sql in statements), f"{fragment!r} was not traced"
    assert table_scans(db_path, statements, allowed) == {}


# ---- the outbox sender ------------------------------------------------------------------------

def test_claiming_replies(busy_db: Path) -> None:
    # Numbers that opted out after the reply at the head of their line was queued (as a change the
    # claim races with would leave them): the claim cancels those replies.
    conn = sqlite3.connect(busy_db)
    with conn:
        conn.execute("""UPDATE consent SET consent = 'n' WHERE (sandbox, number) IN (
            SELECT o.sandbox, o.to_number FROM outbox o WHERE o.status = 'queued' AND o.next_attempt_at = 0
            AND o.kind NOT IN ('opt-out', 'help') AND NOT EXISTS (SELECT 1 FROM outbox p WHERE
                p.to_number = o.to_number AND p.credential_id = o.credential_id AND p.id < o.id
                AND p.status IN ('queued', 'sending'))
            ORDER BY o.id LIMIT 5)""")
    conn.close()
    claimed, statements = traced(busy_db, lambda conn: claim_due(conn, CLAIM_LIMIT, LATER - 1))
    assert claimed
    # Queued replies in id order, from the partial index of queued ones only (schema 16): the walk
    # stops at the claim's limit.
    assert_no_scan(busy_db, statements, "FROM outbox o", "SET status = 'cancelled'", "SET status = 'sending'",
                   allowed=("SCAN o USING INDEX outbox_queued",
                            # the open Blocklist pushes (a partial index): a welcome waits for its unblock
                            "SCAN blocklist_queue USING INDEX blocklist_queue_open"))


def test_recording_send_results(busy_db: Path) -> None:
    sending = [row_id for (row_id,) in rows(busy_db, "SELECT id FROM outbox WHERE status = 'sending'")]
    fates = ("sent", "rejected", "failed", "queued", "unknown")
    outcomes = [tuple(SendOutcome(row_id, fates[i % 5], f"ib-new-{row_id}", "PENDING", "an error", LATER))
                for i, row_id in enumerate(sending)]
    _, statements = traced(busy_db, lambda conn: record_outcomes(conn, outcomes))
    assert_no_scan(busy_db, statements, "status = CASE", "WHERE id = ")


def test_taking_over_what_a_dead_sender_left_in_flight(busy_db: Path) -> None:
    """A sender's start: the journal replayed (each entry checked by id and messageId), what is in
    flight marked unknown, and later put back after its last look: all by key or by status."""
    sending = rows(busy_db, "SELECT id, our_message_id FROM outbox WHERE status = 'sending' LIMIT 50")
    entries = [(our_id, *SendOutcome(row_id, "sent", f"ib-{row_id}", "PENDING")) for row_id, our_id in sending[:10]]
    entries += [("another-database", *SendOutcome(row_id, "sent", "ib-x", "PENDING")) for row_id, _ in sending[10:20]]
    (recorded, foreign), statements = traced(busy_db, lambda conn: record_journaled(conn, entries))
    assert (recorded, foreign) == (10, 10)
    assert_no_scan(busy_db, statements, "SELECT our_message_id FROM outbox WHERE id = ", "status = CASE")
    left, statements = traced(busy_db, lambda conn: in_flight(conn, "left in flight"))
    assert len(left) > 30
    assert_no_scan(busy_db, statements, "WHERE status IN ('sending', 'unknown')", "SET status = 'unknown'")
    requeued, statements = traced(busy_db, lambda conn: requeue_unknown(conn, [(row[0], "missing") for row in left]))
    assert requeued == len(left)
    assert_no_scan(busy_db, statements, "SET status = 'queued'")


def test_cancelling_the_replies_of_a_deleted_credential(busy_db: Path) -> None:
    _, statements = traced(busy_db, lambda conn: cancel_for_credential(conn, 2, "Club"))
    assert_no_scan(busy_db, statements, "WHERE credential_id = 2")


def test_the_sender_and_the_poller_read_only_credentials_whole(busy_db: Path) -> None:
    _, statements = traced(busy_db, lambda conn: (list_credentials(conn), find_credential_by_id(conn, 1)),
                           write=False)
    assert_no_scan(busy_db, statements, "FROM credentials")


# ---- delivery reports (webhook and pull) ------------------------------------------------------

def test_recording_delivery_reports(busy_db: Path) -> None:
    ours = rows(busy_db, "SELECT our_message_id FROM outbox WHERE status = 'sending' LIMIT 3")
    (first,), (second,) = rows(busy_db, "SELECT infobip_message_id FROM outbox WHERE infobip_message_id <> '' "
                                        "ORDER BY id LIMIT 2")
    reports = [(first, "DELIVERED", "d", ""), (second, "PENDING", "d", ""), ("never-sent", "DELIVERED", "d", ""),
               *[(message_id, "DELIVERED", "d", "") for (message_id,) in ours]]
    matched, statements = traced(busy_db, lambda conn: apply_delivery_reports(conn, reports))
    assert matched == 5
    assert_no_scan(busy_db, statements, "WHERE infobip_message_id = ", "INSERT OR IGNORE INTO delivery_reports")


# ---- serve's timers ---------------------------------------------------------------------------

def test_the_double_opt_in_expiry_sweep(busy_db: Path) -> None:
    expired, statements = traced(busy_db, lambda conn: expire_pending(conn, FAR_FUTURE))
    assert expired > 100
    # The sweep must look at every pending number; it reads them from an index of pending rows
    # only (schema 9), never the whole consent table, which holds every subscriber.
    assert_no_scan(busy_db, statements, "FROM consent WHERE consent = 'p'", "INSERT INTO consent_ledger",
                   allowed=("SCAN consent USING INDEX consent_pending",))


def test_the_heartbeat_and_the_health_check(busy_db: Path) -> None:
    _, statements = traced(busy_db, lambda conn: (record_heartbeat(conn, 2), check_storage(conn)))
    assert_no_scan(busy_db, statements, "INSERT INTO receiver_heartbeat", "PRAGMA user_version")


# ---- the TUI's live log and status line, on every tick --------------------------------------

@pytest.mark.parametrize("filters", [MessageFilter(), MessageFilter(action="opt-out"), MessageFilter(action="review"),
                                     MessageFilter(credential="sh", number="4179", text="o")], ids=repr)
def test_the_live_log_tick(busy_db: Path, filters: MessageFilter) -> None:
    top = MESSAGES  # the log has read up to here; newer rows and the visible ones are read again
    _, statements = traced(busy_db, lambda conn: log_updates(conn, filters, top, 500, list(range(top - 40, top))),
                           write=False)
    # the newer ids: `m.id > ` along a key, `f.rowid > ` through the trigram index (schema 18)
    assert_no_scan(busy_db, statements, "id > ", "m.id IN (")


def test_the_status_line_and_traffic_strip_tick(busy_db: Path) -> None:
    def tick(conn: sqlite3.Connection) -> object:
        return backlog(conn), receiver_heartbeat_at(conn), traffic(conn)

    (counts, heartbeat, _), statements = traced(busy_db, tick, write=False)
    assert counts["queued"] and counts["failed"] and heartbeat
    assert_no_scan(busy_db, statements, "FROM outbox", "FROM receiver_heartbeat", "FROM traffic")


@pytest.mark.parametrize("action", ["opt-out", "help", "near-opt-out", "review"])
def test_an_action_filter_searches_the_partial_action_index(busy_db: Path, action: str) -> None:
    """messages_action leaves `default` out (schema 11); a filter on any other action must still
    find its rows through it, which SQLite does only when the query excludes `default` itself."""
    _, statements = traced(busy_db, lambda conn: page_messages(conn, filters=MessageFilter(action=action)),
                           write=False)
    details = [detail for lines in plans(busy_db, statements).values() for detail in lines]
    assert any("INDEX messages_action" in detail for detail in details), details
