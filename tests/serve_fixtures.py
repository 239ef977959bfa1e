"""Run `serve` in-process on a free loopback port for tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.receiver import BasicAuth
from gateway.server import ServeConfig, ServerThread

WEBHOOK_USER = "infobip"
WEBHOOK_PASSWORD = "correct-horse-battery"


@contextmanager
def running_serve(db_path: Path, **overrides: object) -> Iterator[ServerThread]:
    options: dict[str, object] = dict(db_path=db_path, host="127.0.0.1", port=0,
                                      auth=BasicAuth(WEBHOOK_USER, WEBHOOK_PASSWORD), run_outbox=False,
                                      run_poller=False, outbox_interval=0.05, poll_interval=0.2)
    options.update(overrides)
    with ServerThread(ServeConfig(**options)) as server:  # type: ignore[arg-type]
        yield server


def first_value(conn: sqlite3.Connection, sql: str) -> object:
    """A writer job (importable, so the writer process can run it): one statement's first value."""
    row = conn.execute(sql).fetchone()
    return row[0] if row else None
