"""Consent by a clock smsdesk can trust, and an operator who can always opt a number out.

One future-dated receivedAt once pinned a number's consent: a START dated 2099 made every later
STOP `overruled` (consent stayed y, no confirmation, the next text got the default reply), and the
operator could not fix it from the review queue. Tried here against a real `serve` over loopback.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.inbound import InboundMessage
from tests.support.cli import run_main
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve
from tests.support.store import rows, store_directly

ALICE = "41793026727"
SHOP = "+447491163443"


def now() -> str:
    """Infobip's receivedAt for a message sent just now."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def post(url: str, *results: dict) -> None:
    response = httpx.post(url + "/infobip/inbound", json=mo_body(*results), auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
    assert response.status_code == 200, response.text


def test_a_future_dated_start_does_not_pin_consent(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(default_reply_message="Thanks!"))
    with running_serve(db) as server:
        post(server.url, mo_result("START", message_id="f-1", receivedAt="2099-01-01T00:00:00.000+0000"))
        post(server.url, mo_result("STOP", message_id="f-2", receivedAt=now()))
        post(server.url, mo_result("STOP", message_id="f-3", receivedAt=now()))
        post(server.url, mo_result("hello", message_id="f-4", receivedAt=now()))
    assert rows(db, "SELECT message_id, received_at, decided_at <> '', consent_after FROM messages ORDER BY id") == [
        ("f-1", "2099-01-01T00:00:00.000+00:00", 1, "y"),  # stored as given, decided at its arrival
        ("f-2", rows(db, "SELECT received_at FROM messages WHERE message_id = 'f-2'")[0][0], 0, "n"),
        ("f-3", rows(db, "SELECT received_at FROM messages WHERE message_id = 'f-3'")[0][0], 0, "n"),
        ("f-4", rows(db, "SELECT received_at FROM messages WHERE message_id = 'f-4'")[0][0], 0, "n"),
    ]
    assert rows(db, "SELECT effect FROM consent_ledger ORDER BY id") == [("changed",), ("changed",), ("reaffirmed",)]
    assert rows(db, "SELECT consent FROM consent") == [("n",)]
    # the confirmations are queued, the opted-out number's chatter gets no default reply
    assert rows(db, "SELECT kind FROM outbox ORDER BY id") == [("opt-in",), ("opt-out",), ("opt-out",)]
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok, verify_consent(conn).differences
    conn.close()


def test_a_receivedat_within_the_skew_is_believed(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    soon = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    with running_serve(db) as server:
        post(server.url, mo_result("START", message_id="s-1", receivedAt=soon))
    assert rows(db, "SELECT decided_at FROM messages") == [("",)]


def future_start(db: Path) -> None:
    """An old database's state: a START dated 2099 already decided by its own time."""
    store_directly(db, [InboundMessage("old-1", "+" + ALICE, SHOP, "START", "2099-01-01T00:00:00.000+00:00")],
                   arrived_at="2099-01-01T00:00:00.000+00:00")


def test_the_operator_can_always_opt_a_number_out(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(default_reply_message="Thanks!"))
    future_start(db)
    store_directly(db, [InboundMessage("old-2", "+" + ALICE, SHOP, "hello", "2026-12-01T00:00:00.000+00:00")])
    assert rows(db, "SELECT status FROM outbox WHERE kind = 'default'") == [("queued",)]
    done = run_main("--db", str(db), "consent", "opt-out", ALICE, "--sandbox", "prod", "--reason", "phone call",
                    "--json")
    assert done.code == 0, done.err
    answer = json.loads(done.out)
    assert (answer["number"], answer["effect"], answer["before"], answer["cancelled_replies"]) == (
        "+" + ALICE, "changed", "y", 2)  # the opt-in's reply and the default reply
    assert rows(db, "SELECT consent FROM consent") == [("n",)]
    [entry] = rows(db, "SELECT old, new, effect, cause, operator <> '', reason FROM consent_ledger "
                       "WHERE cause = 'operator'")
    assert entry[:5] == ("y", "n", "changed", "operator", 1) and entry[5].endswith("phone call")
    assert rows(db, "SELECT kind, status FROM outbox ORDER BY id") == [("opt-in", "cancelled"),
                                                                       ("default", "cancelled")]
    # a STOP sent later by the number itself is applied as usual (the future START is gone)
    store_directly(db, [InboundMessage("new-1", "+" + ALICE, SHOP, "START", "2026-12-06T13:00:00.000+00:00")],
                   arrived_at="2026-12-06T13:00:00.000+00:00")
    assert rows(db, "SELECT consent FROM consent") == [("y",)]
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok, verify_consent(conn).differences
    conn.close()
    again = run_main("--db", str(db), "consent", "opt-out", "+" + ALICE, "--sandbox", "prod", "--reason", "email")
    assert again.code == 0 and "opted out (was y)" in again.out


def test_review_opt_out_beats_a_future_dated_start(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"))
    future_start(db)
    store_directly(db, [InboundMessage("old-3", "+" + ALICE, SHOP, "stpo", "2026-12-01T00:00:00.000+00:00")])
    [(review_id,)] = rows(db, "SELECT id FROM review_queue")
    done = run_main("--db", str(db), "review", "resolve", str(review_id), "--opt-out")
    assert done.code == 0, done.err
    assert "opted out" in done.out and "changed" in done.out
    assert rows(db, "SELECT consent FROM consent") == [("n",)]


def test_opt_out_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    cases = [
        (["not-a-number", "--sandbox", "prod", "--reason", "x"], "phone number"),
        ([ALICE, "--sandbox", "prdo", "--reason", "x"], "no credential, profile or consent uses sandbox 'prdo'"),
        ([ALICE, "--sandbox", "prod", "--reason", "  "], "give the reason"),
        ([ALICE, "--sandbox", "prod", "--reason", "call\x1b]0;owned\x07"], "printable"),
    ]
    for args, words in cases:
        done = run_main("--db", str(db), "consent", "opt-out", *args)
        assert done.code != 0 and words in done.err, (args, done.err)
        assert "\x1b" not in done.err and len(done.err.strip().splitlines()) == 1
    assert rows(db, "SELECT COUNT(*) FROM consent_ledger") == [(0,)]
