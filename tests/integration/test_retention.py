"""Retention (store/retention.py, `smsdesk purge`): old texts, replies and delivery reports go,
in small transactions; the evidence of consent, what is still in use and the newest rows stay."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from smsdesk.engine.retention_sweep import sweep_once
from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.db import connect
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.retention import purge
from smsdesk.writer.parent import ProcessWriter
from tests.support.cli import run_main
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve
from tests.support.store import rows, store_directly

SHOP = "+447491163443"
OLD = datetime.now(UTC) - timedelta(days=100)


def at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def message(message_id: str, number: str, text: str, moment: datetime) -> InboundMessage:
    return InboundMessage(message_id, number, SHOP, text, at(moment))


def programme(tmp_path: Path) -> Path:
    """100 days ago: chatter (answered with the default reply, delivered), a STOP (ledger,
    confirmation), a HELP whose reply never left (still queued); today: more chatter."""
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    old = [message(f"old-{n}", f"+4179300{n:04d}", "hello there", OLD + timedelta(seconds=n)) for n in range(40)]
    store_directly(db_path, old, at(OLD))
    store_directly(db_path, [message("old-stop", "+41790000001", "STOP", OLD + timedelta(minutes=5))],
                   at(OLD + timedelta(minutes=5)))
    store_directly(db_path, [message("old-help", "+41790000002", "HELP", OLD + timedelta(minutes=6))],
                   at(OLD + timedelta(minutes=6)))
    conn = sqlite3.connect(db_path)
    with conn:  # what the sender and Infobip's reports would have done by now
        conn.execute("UPDATE outbox SET status = 'delivered', created_at = ? WHERE to_number != '+41790000002'",
                     (at(OLD),))
        conn.execute("UPDATE outbox SET created_at = ? WHERE to_number = '+41790000002'", (at(OLD),))
        conn.execute("""INSERT INTO delivery_reports (outbox_id, message_id, group_name, received_at)
                        SELECT id, our_message_id, 'DELIVERED', ? FROM outbox""", (at(OLD),))
        conn.execute("INSERT INTO unreadable_inbound (at, source, reason, raw) VALUES (?, 'forward', 'bad', '{}')",
                     (at(OLD),))
    conn.close()
    new = [message(f"new-{n}", f"+4179300{n:04d}", "hello again", datetime.now(UTC)) for n in range(5)]
    store_directly(db_path, new)
    return db_path


def count(db_path: Path, table: str) -> int:
    return rows(db_path, f"SELECT COUNT(*) FROM {table}")[0][0]


def test_purge_removes_the_old_and_keeps_the_evidence_of_consent(tmp_path: Path) -> None:
    db_path = programme(tmp_path)
    stop_row = rows(db_path, "SELECT id, reply_id FROM messages WHERE message_id = 'old-stop'")[0]
    before = {table: count(db_path, table) for table in ("messages", "outbox", "delivery_reports", "consent_ledger")}
    version = rows(db_path, "SELECT version FROM content_version")[0][0]

    run = run_main("purge", "--older-than", "30", "--json", env={"SMSDESK_DB": str(db_path)})
    run.assert_ok()
    result = run.json()
    assert result["messages"] == 40  # the chatter; not the STOP, not the HELP whose reply is queued
    assert result["replies"] == 40 and result["delivery_reports"] == 40
    assert result["unreadable"] == 1 and result["kept_as_evidence"] == 2
    assert count(db_path, "messages") == before["messages"] - 40
    assert count(db_path, "outbox") == before["outbox"] - 40
    assert count(db_path, "delivery_reports") == before["delivery_reports"] - 40
    assert count(db_path, "consent_ledger") == before["consent_ledger"]  # every entry stays
    # the STOP, its confirmation and that confirmation's report are all still there
    assert rows(db_path, "SELECT text FROM messages WHERE id = ?", stop_row[0]) == [("STOP",)]
    assert rows(db_path, "SELECT COUNT(*) FROM delivery_reports WHERE outbox_id = ?", stop_row[1]) == [(1,)]
    assert rows(db_path, "SELECT status FROM outbox WHERE to_number = '+41790000002'") == [("queued",)]
    assert count(db_path, "unreadable_inbound") == 0
    assert rows(db_path, "SELECT COUNT(*) FROM messages WHERE message_id LIKE 'new-%'") == [(5,)]
    assert rows(db_path, "SELECT version FROM content_version")[0][0] > version  # open TUIs re-read
    db = connect(db_path)
    assert verify_consent(db.conn).ok
    db.close()

    again = run_main("purge", "--older-than", "30", "--json", env={"SMSDESK_DB": str(db_path)})
    again.assert_ok()
    assert (again.json()["messages"], again.json()["replies"]) == (0, 0)  # twice changes nothing more


def test_a_dry_run_counts_the_same_and_removes_nothing(tmp_path: Path) -> None:
    db_path = programme(tmp_path)
    before = count(db_path, "messages")
    dry = run_main("purge", "--older-than", "30", "--dry-run", "--json", env={"SMSDESK_DB": str(db_path)})
    dry.assert_ok()
    assert count(db_path, "messages") == before
    real = run_main("purge", "--older-than", "30", "--json", env={"SMSDESK_DB": str(db_path)})
    for key in ("messages", "replies", "delivery_reports", "unreadable", "kept_as_evidence"):
        assert dry.json()[key] == real.json()[key], key


def test_small_chunks_remove_the_same_rows_as_one_big_one(tmp_path: Path) -> None:
    one, many = programme(tmp_path / "a"), programme(tmp_path / "b")
    for path, chunk in ((one, 10_000), (many, 3)):
        db = connect(path)
        purge(db, 30, chunk=chunk)
        db.close()
    query = "SELECT message_id FROM messages ORDER BY message_id"
    assert rows(one, query) == rows(many, query)
    query = "SELECT to_number, status, text FROM outbox ORDER BY 1, 2, 3"
    assert rows(one, query) == rows(many, query)


def test_nothing_is_old_enough_so_nothing_goes(tmp_path: Path) -> None:
    db_path = programme(tmp_path)
    before = count(db_path, "messages")
    run = run_main("purge", "--older-than", "365", "--json", env={"SMSDESK_DB": str(db_path)})
    run.assert_ok()
    assert run.json()["messages"] == 0 and count(db_path, "messages") == before


def test_the_newest_message_and_reply_are_never_removed(tmp_path: Path) -> None:
    """Ids come from MAX(id) + 1: removing the newest would hand its id out again."""
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    store_directly(db_path, [message("only", "+41790000009", "hello", OLD)], at(OLD))
    run_main("purge", "--older-than", "30", env={"SMSDESK_DB": str(db_path)}).assert_ok()
    assert count(db_path, "messages") == 1 and count(db_path, "outbox") == 1
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="newest message is kept"):
        conn.execute("DELETE FROM messages")
    with pytest.raises(sqlite3.IntegrityError, match="newest reply is kept"):
        conn.execute("DELETE FROM outbox")
    conn.close()


def test_a_new_file_gives_space_back_and_an_old_one_is_converted_by_vacuum(tmp_path: Path) -> None:
    db_path = programme(tmp_path)
    assert rows(db_path, "PRAGMA auto_vacuum") == [(2,)]  # incremental, from its creation
    run_main("purge", "--older-than", "30", env={"SMSDESK_DB": str(db_path)}).assert_ok()
    assert rows(db_path, "PRAGMA freelist_count") == [(0,)]  # the freed pages went back

    old_file = programme(tmp_path / "old")
    conn = sqlite3.connect(old_file, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")  # as a file made before retention is
    conn.close()
    assert rows(old_file, "PRAGMA auto_vacuum") == [(0,)]
    run = run_main("purge", "--older-than", "30", "--vacuum", "--json", env={"SMSDESK_DB": str(old_file)})
    run.assert_ok()
    assert run.json()["vacuum_converted"] is True
    assert rows(old_file, "PRAGMA auto_vacuum") == [(2,)]


@pytest.mark.parametrize("args", [
    ("purge",),  # the period is required
    ("purge", "--older-than", "0"),
    ("purge", "--older-than", "-5"),
    ("purge", "--older-than", "ten"),
    ("purge", "--older-than", "30", "--dry-run", "--vacuum"),
])
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    db_path = programme(tmp_path)
    before = count(db_path, "messages")
    run_main(*args, env={"SMSDESK_DB": str(db_path)}).assert_usage_error()
    assert count(db_path, "messages") == before


def test_purge_of_a_database_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    run = run_main("purge", "--older-than", "30", env={"SMSDESK_DB": str(missing)})
    assert run.code != 0 and not missing.exists()


async def test_serve_s_sweep_through_the_writer_process_removes_what_the_command_does(tmp_path: Path) -> None:
    """serve purges one chunk per writer job (engine/retention_sweep.py): the same rows go as with
    `smsdesk purge`, and the freed pages go back, from inside the writer's group commits."""
    by_command, by_sweep = programme(tmp_path / "a"), programme(tmp_path / "b")
    run_main("purge", "--older-than", "30", env={"SMSDESK_DB": str(by_command)}).assert_ok()
    writer = ProcessWriter(by_sweep).start()
    try:
        await asyncio.to_thread(writer.wait_ready)
        counts = await sweep_once(writer, 30)
    finally:
        writer.stop()
    assert (counts.messages, counts.replies, counts.kept_as_evidence) == (40, 40, 2)
    query = "SELECT message_id, text FROM messages ORDER BY message_id"
    assert rows(by_command, query) == rows(by_sweep, query)
    assert rows(by_sweep, "PRAGMA freelist_count") == [(0,)]


def test_serve_with_a_retention_period_purges_at_start_and_keeps_answering(tmp_path: Path) -> None:
    db_path = programme(tmp_path)
    with running_serve(db_path, retention_days=30) as serve:
        deadline = time.monotonic() + 20
        while count(db_path, "messages") > 48 - 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = httpx.post(f"{serve.url}/infobip/inbound", auth=(WEBHOOK_USER, WEBHOOK_PASSWORD),
                            json=mo_body(mo_result("hello", sender="41790000077")), timeout=10)
    assert answer.status_code == 200
    assert rows(db_path, "SELECT COUNT(*) FROM messages WHERE message_id LIKE 'old-%'") == [(2,)]  # the evidence
    assert rows(db_path, "SELECT COUNT(*) FROM messages WHERE from_number = '+41790000077'") == [(1,)]


def test_optimize_analyzes_approximately_so_it_never_holds_the_writer_long(tmp_path: Path) -> None:
    """serve's start and every sweep run `optimize` on the writer's connection: ANALYZE, where
    SQLite finds statistics stale, reads at most ANALYSIS_LIMIT rows per index, not every row."""
    from smsdesk.store.retention import ANALYSIS_LIMIT, optimize

    handle = connect(programme(tmp_path))
    try:
        assert handle.conn.execute("PRAGMA analysis_limit").fetchone()[0] == 0  # SQLite's default: every row
        optimize(handle.conn)
        assert handle.conn.execute("PRAGMA analysis_limit").fetchone()[0] == ANALYSIS_LIMIT
    finally:
        handle.close()


def test_a_purge_across_the_search_index_mark_then_serve_indexing_leaves_the_index_right(tmp_path: Path) -> None:
    """Two processes on one file: serve had indexed the first 1,000 old messages when it
    stopped; `smsdesk purge` (a process of its own) removes all 3,000 old ones, indexed or not;
    serve starts again and indexes what is left. The index ends holding exactly the messages
    that are left: a purged message that was indexed leaves it, one that was not is never
    touched in it (SQLite's FTS5 'delete' of a row it never held corrupts the index)."""
    from smsdesk.store.db import connect, transaction
    from smsdesk.store.message_search import index_new_messages, indexed_upto
    from tests.support.cli import run_script
    from tests.support.serve import wait_until

    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    store_directly(db_path, [message(f"old-{n}", f"+4179310{n:04d}", f"hello old {n}", OLD + timedelta(seconds=n))
                             for n in range(3000)], at(OLD))
    store_directly(db_path, [message(f"new-{n}", f"+4179310{n:04d}", f"hello new {n}", datetime.now(UTC))
                             for n in range(50)])
    with sqlite3.connect(db_path) as conn:  # answered and delivered long ago: nothing holds them
        conn.execute("UPDATE outbox SET status = 'delivered', created_at = ?", (at(OLD),))
    db = connect(db_path)
    try:
        with transaction(db) as conn:  # what serve's indexer had done when it stopped
            assert index_new_messages(conn, batch=1000) == 1000
    finally:
        db.close()
    run = run_script("purge", "--older-than", "30", "--json", env={"SMSDESK_DB": str(db_path)}, timeout=120)
    run.assert_ok()
    assert run.json()["messages"] == 3000
    with running_serve(db_path, search_index_interval=0.01):
        conn = sqlite3.connect(db_path)
        try:
            top = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
            assert wait_until(lambda: indexed_upto(conn) == top, 30)
            indexed = conn.execute("SELECT rowid FROM messages_search WHERE messages_search MATCH 'hello' "
                                   "ORDER BY rowid").fetchall()
            assert indexed == conn.execute("SELECT id FROM messages WHERE text LIKE '%hello%' ORDER BY id").fetchall()
            assert len(indexed) == 50
            conn.execute("INSERT INTO messages_search (messages_search) VALUES ('integrity-check')")
        finally:
            conn.close()
