"""Pending double opt-ins expire even when the number never texts again (store/expiry.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smsdesk.simulator.sample_data import CLUB_NUMBER, club_credential, make_db
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.db import connect, transaction
from smsdesk.store.expiry import expire_pending
from smsdesk.store.inbound import InboundMessage
from tests.support.cli import run_main
from tests.support.serve import running_serve, wait_until
from tests.support.store import rows, store_directly

NOW = datetime.now(UTC)


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat(timespec="milliseconds")


def store(db: Path, *messages: tuple[str, str, str], arrived_at: str | None = None) -> None:
    """Each message arrives at its own receivedAt (as Infobip forwards it at once), or at `arrived_at`."""
    for i, (number, text, at) in enumerate(messages):
        store_directly(db, [InboundMessage(f"x-{number}-{i}-{text}", number, "+" + CLUB_NUMBER, text, at)],
                       arrived_at or at)


def sweep(db: Path) -> int:
    handle = connect(db)
    try:
        with transaction(handle) as conn:
            return expire_pending(conn)
    finally:
        handle.close()




def test_a_pending_number_that_never_confirms_goes_back_to_what_it_had(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", club_credential())
    store(db, ("+41790000100", "START", days_ago(31)),  # never expressed before: back to none
          ("+41790000101", "STOP", days_ago(40)), ("+41790000101", "START", days_ago(35)),  # back to n
          ("+41790000102", "START", days_ago(10)))  # not yet
    assert sweep(db) == 2
    assert rows(db, "SELECT number, consent FROM consent ORDER BY number") == [  # no row is deleted
        ("+41790000100", ""), ("+41790000101", "n"), ("+41790000102", "p")]
    expired = rows(db, "SELECT number, old, new, effect FROM consent_ledger WHERE effect = 'expired' ORDER BY number")
    assert expired == [("+41790000100", "p", "", "expired"), ("+41790000101", "p", "n", "expired")]
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok, verify_consent(conn).differences
    conn.close()
    assert sweep(db) == 0  # nothing twice


def test_the_credential_that_made_it_pending_sets_the_expiry(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", club_credential(double_opt_in_expiry_days=3))
    store(db, ("+41790000110", "START", days_ago(4)), ("+41790000111", "START", days_ago(2)))
    assert sweep(db) == 1
    assert rows(db, "SELECT number, consent FROM consent ORDER BY number") == [("+41790000110", ""),
                                                                               ("+41790000111", "p")]


def test_a_confirmation_after_the_sweep_counts_as_unmatched(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", club_credential())
    store(db, ("+41790000120", "START", days_ago(31)))
    done = run_main("--db", str(db), "consent", "expire")
    assert (done.code, done.out) == (0, "1 pending double opt-in expired\n")
    store(db, ("+41790000120", "CONFIRM", days_ago(0)))
    assert rows(db, "SELECT action, consent_after FROM messages WHERE text = 'CONFIRM'") == [("default", "")]
    assert rows(db, "SELECT consent FROM consent") == [("",)]
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok, verify_consent(conn).differences
    conn.close()


def test_a_confirmation_sent_inside_the_window_counts_after_the_sweep(tmp_path: Path) -> None:
    """Expiry keeps time: whether a CONFIRM counts depends on when it was sent, not on whether the
    sweep ran before it arrived (it was deleted with the consent row before)."""
    db = make_db(tmp_path / "smsdesk.db", club_credential())
    store(db, ("+41790000121", "START", days_ago(31)), ("+41790000122", "START", days_ago(31)))
    assert sweep(db) == 2
    late = days_ago(0)
    store(db, ("+41790000121", "CONFIRM", days_ago(30.5)), ("+41790000122", "STOP", days_ago(30.5)), arrived_at=late)
    assert rows(db, "SELECT from_number, action, consent_before, consent_after FROM messages "
                    "WHERE text IN ('CONFIRM', 'STOP') ORDER BY from_number") == [
        ("+41790000121", "double-opt-in", "", "y"), ("+41790000122", "opt-out", "", "n")]
    assert rows(db, "SELECT number, consent FROM consent ORDER BY number") == [("+41790000121", "y"),
                                                                               ("+41790000122", "n")]
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok, verify_consent(conn).differences
    conn.close()


def test_serve_expires_pending_numbers_without_any_traffic(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", club_credential())
    store(db, ("+41790000130", "START", days_ago(31)))
    with running_serve(db, expiry_interval=0.2):
        assert wait_until(lambda: rows(db, "SELECT consent FROM consent") == [("",)], timeout=10)
    assert rows(db, "SELECT effect FROM consent_ledger ORDER BY id") == [("changed",), ("expired",)]
