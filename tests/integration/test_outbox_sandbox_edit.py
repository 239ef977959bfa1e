"""A credential's sandbox edited while its replies wait moves nothing out of an opt-out's reach.

Replies copy their credential's sandbox when they are queued, and consent lives per sandbox. An
edit of the sandbox used to leave the queue under the old one: a STOP stored afterwards (under the
new sandbox) neither cancelled the waiting reply nor stopped its claim, and the default reply went
out after the STOP. Now the edit moves the unfinished replies with it, in its own transaction
(store/credentials.py), and the claim reads consent in the credential's sandbox as it is now
(store/outbox.py, `_HEADS`). Real SQLite file, the real inbound rules.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.store.credentials import get_credential, update_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.outbox import SendOutcome, claim_due, record_outcomes
from tests.support.cli import run_main
from tests.support.store import rows, store_directly

NUMBER = "+41790002301"
LATER = 4.0e9  # a time.time() after any backoff


def at(second: int) -> str:
    return f"2026-11-26T10:00:{second:02d}.000+00:00"


def store(db: Path, text: str, received_at: str) -> None:
    store_directly(db, [InboundMessage(f"m-{time.monotonic_ns()}", NUMBER, "+" + SHOP_NUMBER, text, received_at)])


def in_transaction(db: Path, work):  # type: ignore[no-untyped-def]
    handle = connect(db)
    try:
        with transaction(handle) as conn:
            return work(conn)
    finally:
        handle.close()


def claim(db: Path) -> list[tuple]:
    return in_transaction(db, lambda conn: claim_due(conn, 1000, LATER))


def answer(db: Path, claimed: list[tuple], status: str) -> None:
    """What the sender records for Infobip's answer: sent, or a 500 (back to the queue, later)."""
    outcomes = [tuple(SendOutcome(row[0], status, error="HTTP 500", next_attempt_at=time.time() + 600))
                for row in claimed]
    in_transaction(db, lambda conn: record_outcomes(conn, outcomes))


def edit_sandbox(db: Path, sandbox: str) -> None:
    handle = connect(db)
    try:
        cred = get_credential(handle, "Shop")
        update_credential(handle, cred.id, shop_credential(sandbox=sandbox), cred.version)
    finally:
        handle.close()


def claim_everything(db: Path) -> list[tuple]:
    """Claim and send, round after round, until nothing is queued; every reply claimed, in order.
    (A round that cancels a line's head claims the next one in the round after.)"""
    claimed_all: list[tuple] = []
    while rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'queued'") != [(0,)]:
        claimed = claim(db)
        claimed_all += claimed
        answer(db, claimed, "sent")
    return claimed_all


def kinds(claimed: list[tuple]) -> list[str]:
    return [row[12] for row in claimed]  # OutboxRow.kind


@pytest.mark.parametrize("when", ["waiting after a 500", "in flight"])
def test_a_stop_after_a_sandbox_edit_cancels_the_waiting_reply(tmp_path: Path, when: str) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, "hello", at(1))
    in_flight = claim(db)
    assert kinds(in_flight) == ["default"]
    if when == "waiting after a 500":
        answer(db, in_flight, "queued")
        edit_sandbox(db, "staging")
    else:  # the edit lands while the request is out; Infobip then answers 500
        edit_sandbox(db, "staging")
        answer(db, in_flight, "queued")
    assert rows(db, "SELECT status, sandbox FROM outbox") == [("queued", "staging")]
    store(db, "STOP", at(2))  # stored under the credential's sandbox: staging
    assert rows(db, "SELECT consent FROM consent WHERE sandbox = 'staging' AND number = ?", NUMBER) == [("n",)]
    assert rows(db, "SELECT kind, status, last_error FROM outbox ORDER BY id") == [
        ("default", "cancelled", "the number opted out (message #2) before the reply was sent"),
        ("opt-out", "queued", "")]
    assert kinds(claim_everything(db)) == ["opt-out"]


def test_the_edit_moves_only_the_replies_still_to_send_and_only_that_credentials(tmp_path: Path) -> None:
    from smsdesk.simulator.sample_data import CLUB_NUMBER, club_credential

    db = make_db(tmp_path / "smsdesk.db", shop_credential(), club_credential(sandbox="prod"))
    store(db, "hello", at(1))
    answer(db, claim(db), "sent")
    store(db, "HELP", at(2))
    store_directly(db, [InboundMessage("club-1", NUMBER, "+" + CLUB_NUMBER, "START", at(3))])
    edit_sandbox(db, "staging")
    assert rows(db, "SELECT credential_name, kind, status, sandbox FROM outbox ORDER BY id") == [
        ("Shop", "default", "sent", "prod"),  # sent under prod, as its message was stored
        ("Shop", "help", "queued", "staging"),
        ("Club", "opt-in", "queued", "prod")]
    assert rows(db, "SELECT fields FROM audit WHERE action = 'update'") == [('["sandbox"]',)]


def test_the_claim_reads_consent_in_the_credentials_sandbox_as_it_is_now(tmp_path: Path) -> None:
    """A reply left under the old sandbox (as an smsdesk before the edit moved replies left it):
    the opt-out's cancellation misses it, the claim does not."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, "hello", at(1))
    edit_sandbox(db, "staging")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE outbox SET sandbox = 'prod'")
    conn.close()
    store(db, "STOP", at(2))
    assert rows(db, "SELECT kind, status FROM outbox ORDER BY id") == [("default", "queued"), ("opt-out", "queued")]
    assert kinds(claim_everything(db)) == ["opt-out"]
    assert rows(db, "SELECT kind, status, last_error FROM outbox ORDER BY id") == [
        ("default", "cancelled", "the number opted out before the reply was sent"), ("opt-out", "sent", "")]


def test_a_stop_after_a_sandbox_edit_from_the_cli_cancels_the_waiting_reply(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    store(db, "hello", at(1))
    answer(db, claim(db), "queued")  # Infobip answered 500: the reply waits
    edited = run_main("--db", str(db), "creds", "edit", "Shop", "--sandbox", "staging")
    edited.assert_ok()
    assert "sandbox=staging" in edited.out
    store(db, "STOP", at(2))
    assert rows(db, "SELECT kind, status, sandbox FROM outbox ORDER BY id") == [
        ("default", "cancelled", "staging"), ("opt-out", "queued", "staging")]
    assert kinds(claim_everything(db)) == ["opt-out"]
