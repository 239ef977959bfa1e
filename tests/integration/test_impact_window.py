"""The impact preview reads its window from a key range found by bisection over stored_at
(store/queries.py recent_messages): it must return exactly what the whole-table read returned."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.store.queries import first_id_stored_since, recent_messages
from tests.support.live import inbound, store

START = datetime(2026, 9, 1, tzinfo=UTC)


def at(day: float) -> str:
    return (START + timedelta(days=day)).isoformat(timespec="milliseconds")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "w.db", shop_credential())
    for day in range(0, 60, 2):  # a batch every other day, stored when received
        store(path, *(inbound(f"+417930{day:02d}{i:03d}", "+" + SHOP_NUMBER, f"text {day} {i}", at(day + i / 100),
                              f"w-{day}-{i}") for i in range(5)), arrived_at=at(day + 0.1))
    return path


def whole_table(conn: sqlite3.Connection, since: str) -> list[tuple]:
    return conn.execute("SELECT text, consent_before, action, keyword FROM messages WHERE credential_id = 1 "
                        "AND received_at >= ?", (since,)).fetchall()


@pytest.mark.parametrize("day", [-10, 0, 0.02, 13, 31.5, 58, 59, 100])
def test_the_window_is_what_the_whole_table_gives(db_path: Path, day: float) -> None:
    conn = sqlite3.connect(db_path)
    try:
        assert sorted(recent_messages(conn, 1, at(day))) == sorted(whole_table(conn, at(day)))
    finally:
        conn.close()


def test_gaps_left_by_a_purge_do_not_move_the_window(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute("DELETE FROM messages WHERE id BETWEEN 20 AND 90")  # old rows gone, ids never reused
        for day in (0, 10, 25, 40):
            assert sorted(recent_messages(conn, 1, at(day))) == sorted(whole_table(conn, at(day)))
    finally:
        conn.close()


def test_the_bisection_finds_the_first_row_stored_since(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("SELECT id, stored_at FROM messages ORDER BY id").fetchall()
        for moment in (at(-1), at(20.1), at(20.2), at(58.1), at(61)):
            expected = next((row_id for row_id, stored in rows if stored >= moment), rows[-1][0] + 1)
            assert first_id_stored_since(conn, moment) == expected
    finally:
        conn.close()


def test_an_empty_log(tmp_path: Path) -> None:
    path = make_db(tmp_path / "empty.db", shop_credential())
    conn = sqlite3.connect(path)
    try:
        assert recent_messages(conn, 1, at(0)) == [] and first_id_stored_since(conn, at(0)) == 1
    finally:
        conn.close()
