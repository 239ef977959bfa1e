"""Delivery reports only move a reply forward, and every report is kept (store/outbox.py).

A real SQLite file, migrated as smsdesk opens it; the reports go through the writer job
`apply_delivery_reports`, and once over real HTTP through `serve`'s webhook.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import httpx
import pytest

from smsdesk.engine.mo import parse_delivery_reports
from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from smsdesk.store.db import connect
from smsdesk.store.outbox import apply_delivery_reports
from smsdesk.store.queries import delivery_reports_of
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve

ACCEPTED = ("our-1", "ACCEPTED", "MESSAGE_ACCEPTED: Message accepted", "2026-11-26T10:00:01.000+00:00")
PENDING = ("our-1", "PENDING", "PENDING_ENROUTE: Message sent to next instance", "2026-11-26T10:00:02.000+00:00")
DELIVERED = ("our-1", "DELIVERED", "DELIVERED_TO_HANDSET: Message delivered to handset",
             "2026-11-26T10:00:03.000+00:00")
UNDELIVERABLE = ("our-1", "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED: Message sent not delivered",
                 "2026-11-26T10:00:04.000+00:00")


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    db = connect(tmp_path / "smsdesk.db")
    yield db.conn
    db.close()


def add_reply(conn: sqlite3.Connection, status: str = "sent", our_id: str = "our-1",
              delivery_status: str = "PENDING_ACCEPTED") -> int:
    cursor = conn.execute(
        "INSERT INTO outbox (credential_id, our_message_id, sender, to_number, text, validity_period_hours, "
        "status, infobip_message_id, delivery_status, created_at, updated_at) "
        "VALUES (1, ?, '447491163443', '+41793026727', 'hi', 48, ?, ?, ?, 'now', 'now')",
        (our_id, status, "ib-" + our_id if status != "queued" else "", delivery_status))
    return int(cursor.lastrowid or 0)


def apply(conn: sqlite3.Connection, *reports: tuple[str, ...]) -> int:
    """As the writer runs the job: in a transaction."""
    conn.execute("BEGIN IMMEDIATE")
    matched = apply_delivery_reports(conn, list(reports))
    conn.execute("COMMIT")
    return matched


def shown(conn: sqlite3.Connection, row_id: int) -> tuple[str, str, str]:
    return conn.execute("SELECT status, delivery_status, delivery_detail FROM outbox WHERE id = ?",
                        (row_id,)).fetchone()


def kept(conn: sqlite3.Connection, row_id: int) -> list[tuple[str, int]]:
    return [(r.group_name, r.applied) for r in delivery_reports_of(conn, row_id)]


def test_a_late_pending_does_not_undo_delivered(conn: sqlite3.Connection) -> None:
    row = add_reply(conn)
    assert apply(conn, DELIVERED) == 1
    assert apply(conn, PENDING) == 1  # matched, and recorded
    assert shown(conn, row) == ("delivered", "DELIVERED", DELIVERED[2])
    assert kept(conn, row) == [("DELIVERED", 1), ("PENDING", 0)]


def test_intermediate_reports_are_kept_in_order_with_their_times(conn: sqlite3.Connection) -> None:
    row = add_reply(conn)
    apply(conn, ACCEPTED, PENDING, DELIVERED)
    assert shown(conn, row) == ("delivered", "DELIVERED", DELIVERED[2])
    reports = delivery_reports_of(conn, row)
    assert [(r.group_name, r.detail, r.done_at) for r in reports] == [
        (ACCEPTED[1], ACCEPTED[2], ACCEPTED[3]), (PENDING[1], PENDING[2], PENDING[3]),
        (DELIVERED[1], DELIVERED[2], DELIVERED[3])]
    # The send answer already put the reply at "sent": ACCEPTED and PENDING are kept, not shown.
    assert [r.applied for r in reports] == [False, False, True]
    assert all(r.received_at for r in reports)


def test_a_second_final_report_is_recorded_but_the_first_stays(conn: sqlite3.Connection) -> None:
    row = add_reply(conn)
    apply(conn, DELIVERED)
    apply(conn, UNDELIVERABLE)
    assert shown(conn, row) == ("delivered", "DELIVERED", DELIVERED[2])
    assert kept(conn, row) == [("DELIVERED", 1), ("UNDELIVERABLE", 0)]


@pytest.mark.parametrize("order", list(itertools.permutations([ACCEPTED, PENDING, DELIVERED])))
def test_any_arrival_order_ends_delivered_with_every_report_kept(conn: sqlite3.Connection,
                                                                  order: tuple[tuple[str, ...], ...]) -> None:
    row = add_reply(conn, status="queued", delivery_status="")
    for report in order:  # one webhook each
        apply(conn, report)
    assert shown(conn, row) == ("delivered", "DELIVERED", DELIVERED[2])
    assert sorted(group for group, _ in kept(conn, row)) == ["ACCEPTED", "DELIVERED", "PENDING"]


@pytest.mark.parametrize("claimed", ["queued", "sending"])
def test_a_report_before_the_sent_mark_moves_a_claimed_reply_to_sent(conn: sqlite3.Connection, claimed: str) -> None:
    row = add_reply(conn, status=claimed, delivery_status="")
    apply(conn, PENDING)
    assert shown(conn, row) == ("sent", "PENDING", PENDING[2])
    apply(conn, ACCEPTED)  # same rank: recorded only
    assert shown(conn, row) == ("sent", "PENDING", PENDING[2])
    assert kept(conn, row) == [("PENDING", 1), ("ACCEPTED", 0)]


@pytest.mark.parametrize("settled", ["failed", "cancelled"])
def test_failed_and_cancelled_replies_keep_their_status(conn: sqlite3.Connection, settled: str) -> None:
    row = add_reply(conn, status=settled, delivery_status="")
    apply(conn, DELIVERED, PENDING)
    # The report proves the message went out after all: shown, but the sender's verdict stays.
    assert shown(conn, row) == (settled, "DELIVERED", DELIVERED[2])
    assert kept(conn, row) == [("DELIVERED", 1), ("PENDING", 0)]


def test_the_same_report_twice_is_recorded_once(conn: sqlite3.Connection) -> None:
    row = add_reply(conn)
    apply(conn, PENDING, DELIVERED)
    apply(conn, PENDING, DELIVERED)  # Infobip retrying a webhook whose 200 it did not see
    assert kept(conn, row) == [("PENDING", 0), ("DELIVERED", 1)]


def test_reports_of_unknown_messages_match_nothing_and_are_not_kept(conn: sqlite3.Connection) -> None:
    add_reply(conn)
    assert apply(conn, ("someone-else", "DELIVERED", "", "")) == 0
    assert conn.execute("SELECT COUNT(*) FROM delivery_reports").fetchone() == (0,)


def test_infobip_id_matches_as_well_as_ours(conn: sqlite3.Connection) -> None:
    row = add_reply(conn)
    apply(conn, ("ib-our-1", *DELIVERED[1:]))
    assert shown(conn, row)[0] == "delivered"


def test_parsed_reports_carry_done_at_in_utc() -> None:
    body = {"results": [
        {"messageId": "a", "doneAt": "2019-11-09T16:00:00.000+0100",
         "status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET", "description": "ok"}},
        {"messageId": "b", "doneAt": "yesterday", "status": {"groupName": "PENDING"}},
        {"messageId": "c", "doneAt": 17, "status": {"groupName": "PENDING"}},
    ]}
    assert parse_delivery_reports(body) == [
        ("a", "DELIVERED", "DELIVERED_TO_HANDSET: ok", "2019-11-09T15:00:00.000+00:00"),
        ("b", "PENDING", "", ""), ("c", "PENDING", "", "")]


def dlr(message_id: str, group: str, name: str, done_at: str) -> dict[str, object]:
    return {"bulkId": "b", "messageId": message_id, "to": "41793026727", "doneAt": done_at,
            "status": {"groupName": group, "name": name, "description": name.lower()}}


def test_webhooks_in_reverse_order_through_serve(tmp_path: Path) -> None:
    """Over HTTP, with the writer process: DELIVERED posted before a late PENDING."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
    with running_serve(db) as serve:
        httpx.post(serve.url + "/infobip/inbound", json=mo_body(mo_result("HELP", message_id="h1")), auth=auth)
        reader = sqlite3.connect(db)
        our_id = reader.execute("SELECT our_message_id FROM outbox").fetchone()[0]
        for group, name in (("DELIVERED", "DELIVERED_TO_HANDSET"), ("PENDING", "PENDING_ENROUTE")):
            body = {"results": [dlr(our_id, group, name, "2026-11-26T10:00:00.000+0000")]}
            response = httpx.post(serve.url + "/infobip/delivery-reports", json=body, auth=auth)
            assert response.json() == {"matched": 1, "unknown": 0}
        assert reader.execute("SELECT status, delivery_status FROM outbox").fetchone() == ("delivered", "DELIVERED")
        assert reader.execute("SELECT group_name, applied FROM delivery_reports ORDER BY id").fetchall() == [
            ("DELIVERED", 1), ("PENDING", 0)]
        reader.close()
