"""The writer's WAL checkpoints: its own while groups are small, a thread's during bursts."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsdesk.infobip.net import wait_until
from smsdesk.writer.child_checkpointer import AUTOCHECKPOINT_PAGES, BurstCheckpointer
from smsdesk.writer.jobs import open_write_connection


@pytest.fixture()
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_write_connection(tmp_path / "w.db", 2000)
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    yield conn
    conn.close()


def commit_rows(conn: sqlite3.Connection, count: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO rows (body) VALUES (?)", [("x" * 200,)] * count)
    conn.execute("COMMIT")


def autocheckpoint(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_small_groups_leave_checkpoints_to_the_writer(writer: sqlite3.Connection) -> None:
    checkpointer = BurstCheckpointer(writer.execute("PRAGMA database_list").fetchone()[2])
    try:
        for _ in range(300):  # 600 rows in all, but never many at once: single webhooks
            commit_rows(writer, 2)
            checkpointer.after_commit(writer)
        assert not checkpointer.bursting
        assert autocheckpoint(writer) == AUTOCHECKPOINT_PAGES
        assert checkpointer.checkpoints == 0
    finally:
        checkpointer.stop()


def test_a_burst_moves_checkpoints_to_the_thread_and_a_small_group_brings_them_back(
        writer: sqlite3.Connection, tmp_path: Path) -> None:
    checkpointer = BurstCheckpointer(tmp_path / "w.db", burst_rows=200, every_rows=1000)
    try:
        checkpointer.after_commit(writer)  # the first call only meets the connection
        for _ in range(10):
            commit_rows(writer, 300)
            checkpointer.after_commit(writer)
        assert checkpointer.bursting
        assert autocheckpoint(writer) == 0  # the writer no longer stops for checkpoints
        assert wait_until(lambda: checkpointer.checkpoints >= 1)
        assert wait_until(lambda: checkpointer.last_result is not None and checkpointer.last_result[0] == 0)
        # What the thread checkpointed is in the database file: a reader that ignores the WAL
        # (immutable) sees rows from the burst.
        assert wait_until(lambda: _rows_in_file_alone(tmp_path / "w.db") > 0)
        commit_rows(writer, 2)
        checkpointer.after_commit(writer)
        assert not checkpointer.bursting
        assert autocheckpoint(writer) == AUTOCHECKPOINT_PAGES
    finally:
        checkpointer.stop()
    assert writer.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert writer.execute("SELECT COUNT(*) FROM rows").fetchone() == (3002,)


def _rows_in_file_alone(path: Path) -> int:
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
    except sqlite3.Error:  # the table itself may not be in the file yet
        return 0
    finally:
        conn.close()


def test_a_long_burst_keeps_the_wal_short_even_when_the_thread_never_checkpoints(
        writer: sqlite3.Connection, tmp_path: Path) -> None:
    """The WAL starts over only after a checkpoint that caught up before the writer's next
    transaction; the writer makes sure one does every `restart_rows`. (Without it, 20 s of
    batched webhooks grew the WAL to 2.6 GB.)"""
    checkpointer = BurstCheckpointer(tmp_path / "w.db", burst_rows=200, every_rows=10**9, restart_rows=1500)
    checkpointer.stop()  # the worst case: nobody else checkpoints at all
    checkpointer.after_commit(writer)
    for _ in range(100):  # 30,000 rows of 200 bytes: about 6 MB of pages
        commit_rows(writer, 300)
        checkpointer.after_commit(writer)
    assert checkpointer.bursting and autocheckpoint(writer) == 0
    assert checkpointer.writer_checkpoints >= 15
    assert (tmp_path / "w.db-wal").stat().st_size < 1_500_000
    assert writer.execute("SELECT COUNT(*) FROM rows").fetchone() == (30000,)


def test_a_connection_opened_again_checkpoints_itself(writer: sqlite3.Connection, tmp_path: Path) -> None:
    checkpointer = BurstCheckpointer(tmp_path / "w.db", burst_rows=200, every_rows=100_000)
    again = open_write_connection(tmp_path / "w.db", 2000)
    try:
        checkpointer.after_commit(writer)
        commit_rows(writer, 300)
        checkpointer.after_commit(writer)
        assert checkpointer.bursting
        commit_rows(again, 300)  # the writer's connection was replaced after an I/O error
        checkpointer.after_commit(again)
        assert not checkpointer.bursting
        assert autocheckpoint(again) == AUTOCHECKPOINT_PAGES
    finally:
        checkpointer.stop()
        again.close()


def test_a_checkpoint_that_cannot_run_is_logged_once_and_writing_goes_on(
        writer: sqlite3.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    checkpointer = BurstCheckpointer(tmp_path / "gone" / "w.db", burst_rows=200, every_rows=300)
    caplog.set_level(logging.WARNING, logger="smsdesk.writer")
    try:
        checkpointer.after_commit(writer)
        for _ in range(6):
            commit_rows(writer, 300)
            checkpointer.after_commit(writer)
            time.sleep(0.05)  # each a separate request to the thread
        assert wait_until(lambda: "checkpoint failed" in caplog.text)
        time.sleep(0.2)
    finally:
        checkpointer.stop()
    assert caplog.text.count("checkpoint failed") == 1
    assert checkpointer.checkpoints == 0
    assert writer.execute("SELECT COUNT(*) FROM rows").fetchone() == (1800,)


def test_a_failure_after_the_commit_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The group is committed and must be answered: nothing the checkpointer does may raise into the writer."""
    conn = open_write_connection(tmp_path / "w.db", 2000)
    checkpointer = BurstCheckpointer(tmp_path / "w.db")
    caplog.set_level(logging.WARNING, logger="smsdesk.writer")
    try:
        checkpointer.after_commit(conn)
        conn.close()  # what an I/O error can leave behind
        checkpointer.after_commit(conn)
        checkpointer.after_commit(conn)
    finally:
        checkpointer.stop()
    assert caplog.text.count("checkpoint failed") == 1


def test_a_burst_that_goes_quiet_is_caught_up_by_the_thread(writer: sqlite3.Connection, tmp_path: Path) -> None:
    """After the last group of a burst nobody else may checkpoint soon: the writer only at its next
    commit, and serve's direct commits (writer/direct_commits.py) would copy the backlog while
    serve's event loop waits. The thread copies it once the burst has been quiet a moment."""
    checkpointer = BurstCheckpointer(tmp_path / "w.db", burst_rows=200, every_rows=100_000, quiet_s=0.1)
    try:
        checkpointer.after_commit(writer)
        for _ in range(5):
            commit_rows(writer, 300)
            checkpointer.after_commit(writer)
        assert checkpointer.bursting
        # Nothing asked the thread to checkpoint (every_rows is far off); quiet, it copies all.
        assert wait_until(lambda: checkpointer.last_result is not None, 5)
        busy, frames, copied = checkpointer.last_result
        assert busy == 0 and frames > 0 and copied == frames
        assert _rows_in_file_alone(tmp_path / "w.db") == 1500
        time.sleep(0.3)
        assert checkpointer.checkpoints == 1  # once per quiet spell, not every 0.1 s
    finally:
        checkpointer.stop()
