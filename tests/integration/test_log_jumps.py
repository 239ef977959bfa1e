"""The log's jumps (End, a scrollbar drag) count from the nearer end: past the middle a page is read
from the oldest row (store/queries.py messages_at_offset with `total`), not by an OFFSET over the
whole log. The page must be the same rows an OFFSET from the newest gives, in either order, with
a filter, at every offset, the last page and past the end included."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.store.queries import MessageFilter, count_and_top, messages_at_offset
from tests.support.live import inbound, store
from tests.support.store import copy_db

TEXTS = ("hello", "STOP", "START", "HELP", "DISCOUNT")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_db(tmp_path_factory.mktemp("jumps") / "j.db", shop_credential())
    store(path, *(inbound(f"+41793{i % 40:06d}", "+" + SHOP_NUMBER, TEXTS[i % 5], message_id=f"j-{i}")
                  for i in range(257)))
    return path


def plain(conn: sqlite3.Connection, filters: MessageFilter, offset: int, limit: int, oldest_first: bool,
          top: int) -> list[int]:
    """The page by OFFSET from the near end, as the log read it before."""
    clauses, params = filters.where()
    where = " AND ".join([*clauses, "m.id <= ?"])
    ids = [row[0] for row in conn.execute(f"SELECT m.id FROM messages m WHERE {where} ORDER BY m.id "
                                          f"{'ASC' if oldest_first else 'DESC'} LIMIT ? OFFSET ?",
                                          (*params, top, limit, offset))]
    return ids


@pytest.mark.parametrize("oldest_first", [False, True], ids=["newest first", "oldest first"])
@pytest.mark.parametrize("filters", [MessageFilter(), MessageFilter(action="opt-out"), MessageFilter(text="o")],
                         ids=repr)
def test_every_offset_gives_the_same_page(db_path: Path, oldest_first: bool, filters: MessageFilter) -> None:
    conn = sqlite3.connect(db_path)
    try:
        total, top = count_and_top(conn, filters)
        assert total > 20
        for offset in [*range(0, total + 3), total + 50]:
            for limit in (1, 7, 100):
                got = [row.id for row in messages_at_offset(conn, filters, offset, limit, oldest_first, top, total)]
                assert got == plain(conn, filters, offset, limit, oldest_first, top), (offset, limit)
    finally:
        conn.close()


def test_rows_newer_than_the_counted_top_stay_out(db_path: Path, tmp_path: Path) -> None:
    """A message committed after the log counted is not in a jump's page: it comes with the live tail."""
    db_path = copy_db(db_path, tmp_path / "late.db")
    conn = sqlite3.connect(db_path)
    try:
        total, top = count_and_top(conn, MessageFilter())
    finally:
        conn.close()
    store(db_path, inbound("+41799999999", "+" + SHOP_NUMBER, "late", message_id="j-late"))
    conn = sqlite3.connect(db_path)
    try:
        last = messages_at_offset(conn, MessageFilter(), total - 1, 100, False, top, total)
        assert [row.id for row in last] == [1]
        first = messages_at_offset(conn, MessageFilter(), total - 3, 100, True, top, total)
        assert [row.id for row in first] == [top - 2, top - 1, top]
    finally:
        conn.close()
