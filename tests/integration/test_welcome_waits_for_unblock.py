"""An opt-in's welcome waits for the unblock the opt-in queued (store/outbox.py: claim_due): Infobip
checks its Blocklist before sending and would refuse a welcome that left first. At most
UNBLOCK_WAIT_S: a Blocklist that never answers delays the reply that long, and consent not at all."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.outbox import UNBLOCK_WAIT_S, claim_due
from tests.support.store import rows, store_directly

SHOP = "+447491163443"
NUMBER = "+41790000042"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def opted_back_in(tmp_path: Path, blocklist_sync: str = "push") -> Path:
    """STOP (its block pushed, its confirmation sent), then START: the welcome and the unblock queued."""
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential(blocklist_sync=blocklist_sync))
    store_directly(db_path, [InboundMessage("m-stop", NUMBER, SHOP, "STOP", now())])
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE outbox SET status = 'sent'")
        conn.execute("UPDATE blocklist_queue SET status = 'done'")
    conn.close()
    time.sleep(0.01)
    store_directly(db_path, [InboundMessage("m-start", NUMBER, SHOP, "START", now())])
    return db_path


def claim(db_path: Path, at: float) -> list[str]:
    db = connect(db_path)
    try:
        with transaction(db) as conn:
            return [row[6] for row in claim_due(conn, 100, now=at)]  # the texts claimed
    finally:
        db.close()


def test_the_welcome_waits_while_the_unblock_is_open_then_goes(tmp_path: Path) -> None:
    db_path = opted_back_in(tmp_path)
    assert rows(db_path, "SELECT action, status FROM blocklist_queue ORDER BY id") == [
        ("block", "done"), ("unblock", "queued")]
    assert claim(db_path, time.time() + 1) == []  # held: the unblock has not reached Infobip
    assert rows(db_path, "SELECT status FROM outbox WHERE status = 'queued'") == [("queued",)]
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE blocklist_queue SET status = 'done' WHERE action = 'unblock'")
    conn.close()
    assert claim(db_path, time.time() + 1) == [shop_credential().opt_in_message]


def test_a_blocklist_that_never_answers_holds_the_welcome_no_longer_than_the_wait(tmp_path: Path) -> None:
    db_path = opted_back_in(tmp_path)
    queued_ts = rows(db_path, "SELECT queued_ts FROM blocklist_queue WHERE action = 'unblock'")[0][0]
    assert claim(db_path, queued_ts + UNBLOCK_WAIT_S - 1) == []
    assert claim(db_path, queued_ts + UNBLOCK_WAIT_S + 1) == [shop_credential().opt_in_message]
    assert rows(db_path, "SELECT consent FROM consent WHERE number = ?", NUMBER) == [("y",)]  # never held


def test_without_blocklist_sync_nothing_waits(tmp_path: Path) -> None:
    db_path = opted_back_in(tmp_path, blocklist_sync="off")
    assert rows(db_path, "SELECT COUNT(*) FROM blocklist_queue") == [(0,)]
    assert claim(db_path, time.time() + 1) == [shop_credential().opt_in_message]
