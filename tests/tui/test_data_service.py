"""The TUI's data service closes safely while its threads are still querying (tui/data.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.tui.data import DataService

# A statement that runs for many seconds unless interrupted: counting to a billion.
_LONG = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT COUNT(*) FROM n"


def long_query(conn: sqlite3.Connection, started: threading.Event) -> int:
    started.set()
    return int(conn.execute(_LONG).fetchone()[0])


def test_close_while_a_query_runs_interrupts_it_instead_of_crashing(tmp_path: Path) -> None:
    """Closing a connection under a running statement freed it from under the statement: the app's
    exit crashed the interpreter (a segfault seen in a test run). Now the query is interrupted,
    the threads are waited for, and only then are the connections closed."""
    service = DataService(make_db(tmp_path / "smsdesk.db", shop_credential()))
    started = threading.Event()
    running = [service.submit_read(long_query, started) for _ in range(2)]
    assert started.wait(5)
    time.sleep(0.2)  # both pool threads are inside the statement now
    began = time.monotonic()
    service.close()
    assert time.monotonic() - began < 5  # interrupted, not waited out
    for future in running:
        assert future.done()
        error = future.exception()
        assert isinstance(error, sqlite3.OperationalError) and "interrupt" in str(error)
