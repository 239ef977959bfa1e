"""Keyword engine 2 through the real store: near misses per fuzzy mode, the review queue and its
ledger entries, custom keyword replies in the outbox, double opt-in expiry; `consent verify`
accepts every entry written."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from smsdesk.simulator.sample_data import club_credential, make_db, shop_credential
from smsdesk.store import review
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.db import connect, transaction
from smsdesk.store.errors import NotFoundError
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from smsdesk.store.queries import MessageFilter, consent_ledger, iter_message_export, page_messages

SHOP, CLUB = "+447491163443", "+385921004026"
ALICE, BOB = "+41793026727", "+41793026728"
_seq = iter(range(10**6))


def send(db: sqlite_utils.Database, text: str, *, sender: str = ALICE, to: str = SHOP, at: str | None = None) -> str:
    """Store one message as the writer would, arriving at its receivedAt; returns its action.
    Without `at`, each message a second after the one before (equal times go to the opt-out)."""
    number = next(_seq)
    at = at or f"2026-11-26T10:{number // 60 % 60:02d}:{number % 60:02d}.000+00:00"
    message = InboundMessage(f"m-{number}", sender, to, text, at)
    with transaction(db) as conn:
        [outcome] = store_messages(conn, RouteTable(), [message], arrived_at=at)
    return outcome.action


def db_with(tmp_path: Path, **shop: object) -> sqlite_utils.Database:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(**shop), club_credential())
    return connect(path)


def consent_of(db: sqlite_utils.Database, number: str = ALICE, sandbox: str = "prod") -> str:
    row = db.conn.execute("SELECT consent FROM consent WHERE sandbox = ? AND number = ?", (sandbox, number)).fetchone()
    return row[0] if row else ""


def replies(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    return db.conn.execute("SELECT kind, text, status FROM outbox ORDER BY id").fetchall()


@pytest.mark.parametrize(("mode", "reply", "queued"), [
    ("off", [("default", "Shop: thanks!", "queued")], 0),
    ("reply", [("near-opt-out", "Reply STOP to unsubscribe.", "queued")], 0),
    ("review", [], 1),
    ("reply+review", [("near-opt-out", "Reply STOP to unsubscribe.", "queued")], 1),
])
def test_near_miss_in_each_mode(tmp_path: Path, mode: str, reply: list, queued: int) -> None:
    db = db_with(tmp_path, fuzzy_opt_out=mode)
    send(db, "START")
    action = send(db, "please stop texting me")
    assert action == ("default" if mode == "off" else "near-opt-out")
    assert replies(db)[1:] == reply  # never the default reply for a near miss (unless the mode is off)
    assert consent_of(db) == "y"  # a near miss changes no consent
    assert len(review.list_reviews(db.conn)) == queued
    assert verify_consent(db.conn).ok


def test_review_opt_out_is_a_changed_ledger_entry_that_verifies(tmp_path: Path) -> None:
    db = db_with(tmp_path, fuzzy_opt_out="review")
    send(db, "START", at="2026-11-26T10:00:00.000+00:00")
    send(db, "please stop texting me", at="2026-11-26T10:05:00.000+00:00")
    send(db, "HELP", at="2026-11-26T10:06:00.000+00:00")
    [item] = review.list_reviews(db.conn)
    assert (item.number, item.sandbox, item.credential, item.status) == (ALICE, "prod", "Shop", "open")
    rows = page_messages(db.conn, filters=MessageFilter(action="review"))
    assert [r.text for r in rows] == ["please stop texting me"]  # the log shows `review` until resolved
    assert rows[0].action == "review"

    done = review.resolve(db, item.id, "opt-out", by="alice-operator")
    assert done.effect == "changed" and done.item.status == "opted-out"
    assert consent_of(db) == "n"
    entry = consent_ledger(db.conn, "prod", ALICE)[-1]
    assert (entry["old"], entry["new"], entry["effect"], entry["operator"]) == ("y", "n", "changed", "alice-operator")
    assert entry["received_at"] == entry["at"]  # the operator's time: an operator's opt-out always applies
    assert entry["message_row_id"] == item.message_row_id
    assert ("opt-out", "Shop: unsubscribed.", "queued") in replies(db)  # the confirmation a STOP would get
    assert verify_consent(db.conn).ok
    assert review.list_reviews(db.conn) == []
    shown = page_messages(db.conn, filters=MessageFilter(action="near-opt-out"))
    assert [r.action for r in shown] == ["near-opt-out"]
    assert [r["action"] for r in iter_message_export(db.conn)] == ["opt-in", "near-opt-out", "help"]
    with pytest.raises(review.AlreadyResolved):
        review.resolve(db, item.id, "dismiss", by="alice-operator")
    with pytest.raises(NotFoundError):
        review.resolve(db, 999, "dismiss", by="alice-operator")


def test_review_dismiss_changes_nothing_and_verifies(tmp_path: Path) -> None:
    db = db_with(tmp_path, fuzzy_opt_out="review")
    send(db, "START")
    send(db, "STPO")
    [item] = review.list_reviews(db.conn)
    done = review.resolve(db, item.id, "dismiss", by="bob")
    assert done.effect == "dismissed" and consent_of(db) == "y"
    entry = consent_ledger(db.conn, "prod", ALICE)[-1]
    assert (entry["old"], entry["new"], entry["effect"], entry["operator"]) == ("y", "y", "dismissed", "bob")
    assert verify_consent(db.conn).ok


def test_review_opt_out_after_a_newer_opt_in_still_opts_out(tmp_path: Path) -> None:
    """The operator's decision is made now, after every message: it always applies."""
    db = db_with(tmp_path, fuzzy_opt_out="review")
    send(db, "remove me", at="2026-11-26T10:00:00.000+00:00")
    send(db, "START", at="2026-11-26T11:00:00.000+00:00")  # a newer wish, after the near miss
    [item] = review.list_reviews(db.conn)
    done = review.resolve(db, item.id, "opt-out", by="alice-operator")
    assert done.effect == "changed" and consent_of(db) == "n"
    assert verify_consent(db.conn).ok


def test_reviews_are_listed_oldest_first(tmp_path: Path) -> None:
    db = db_with(tmp_path, fuzzy_opt_out="review")
    send(db, "stopp", sender=BOB, at="2026-11-26T12:00:00.000+00:00")
    send(db, "stpo", sender=ALICE, at="2026-11-26T09:00:00.000+00:00")
    assert [i.number for i in review.list_reviews(db.conn)] == [ALICE, BOB]


def test_custom_keyword_reply_is_queued(tmp_path: Path) -> None:
    db = db_with(tmp_path, custom_keyword_replies={"DISCOUNT": "10% off: SAVE10"})
    assert send(db, "discount!") == "custom"
    assert replies(db) == [("custom", "10% off: SAVE10", "queued")]
    assert db.conn.execute("SELECT name FROM profile_attributes").fetchall() == [("DISCOUNT",)]
    send(db, "STOP")
    send(db, "DISCOUNT")  # opted out: recorded, not answered
    assert [r[0] for r in replies(db)] == ["custom", "opt-out"]


def test_multi_word_and_accented_opt_outs_are_stored(tmp_path: Path) -> None:
    db = db_with(tmp_path, opt_out_keywords=["STOP", "OPT OUT", "ARRÊT"])
    assert send(db, "opt-out please") == "opt-out"
    assert send(db, "arret", sender=BOB) == "opt-out"
    assert send(db, "S\u200bTOP", sender="+41793026729") == "opt-out"
    assert verify_consent(db.conn).ok


def test_pending_double_opt_in_expires(tmp_path: Path) -> None:
    db = db_with(tmp_path)
    club = {"to": CLUB}
    send(db, "START", at="2026-01-01T10:00:00.000+00:00", **club)
    assert consent_of(db, sandbox="dev") == "p"
    assert send(db, "CONFIRM", at="2026-01-31T10:00:00.001+00:00", **club) == "default"  # 30 days passed
    assert consent_of(db, sandbox="dev") == ""
    [expired] = [e for e in consent_ledger(db.conn, "dev", ALICE) if e["effect"] == "expired"]
    assert (expired["old"], expired["new"], expired["received_at"]) == ("p", "", "2026-01-31T10:00:00.000+00:00")
    assert verify_consent(db.conn).ok
    # a fresh opt-in starts a new pending period, which can be confirmed
    send(db, "START", at="2026-02-01T10:00:00.000+00:00", **club)
    assert send(db, "CONFIRM", at="2026-02-02T10:00:00.000+00:00", **club) == "double-opt-in"
    assert consent_of(db, sandbox="dev") == "y"
    assert verify_consent(db.conn).ok


def test_pending_after_opt_out_expires_back_to_opted_out(tmp_path: Path) -> None:
    db = db_with(tmp_path)
    club = {"to": CLUB}
    send(db, "STOP", at="2026-01-01T09:00:00.000+00:00", **club)
    send(db, "START", at="2026-01-01T10:00:00.000+00:00", **club)
    send(db, "hello", at="2026-03-01T10:00:00.000+00:00", **club)
    assert consent_of(db, sandbox="dev") == "n"
    assert verify_consent(db.conn).ok


def test_confirmation_within_the_period_still_confirms(tmp_path: Path) -> None:
    db = db_with(tmp_path)
    send(db, "START", to=CLUB, at="2026-01-01T10:00:00.000+00:00")
    assert send(db, "CONFIRM", to=CLUB, at="2026-01-30T10:00:00.000+00:00") == "double-opt-in"
