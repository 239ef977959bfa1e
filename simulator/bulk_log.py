"""Fast bulk fill of the message log for tests and benchmarks (direct inserts, one transaction)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smsdesk.store.db import connect
from smsdesk.store.schema import recount_traffic

ACTIONS = ("opt-in", "opt-out", "help", "custom", "default", "default", "default", "unrouted")
TEXTS = ("YES", "STOP", "HELP", "DISCOUNT", "hello there", "what time?", "thanks", "wrong number")


def fill_messages(path: Path, count: int, *, start: int = 0, credential: str = "Shop") -> None:
    db = connect(path)
    conn: sqlite3.Connection = db.conn
    conn.execute("PRAGMA synchronous = OFF")  # bulk fixture only: durability is not under test here
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO messages (message_id, received_at, stored_at, credential, sandbox, from_number, to_number, "
        "text, normalized, action, keyword, consent_before, consent_after, source) "
        "VALUES (?, ?, ?, ?, 'prod', ?, '+447491163443', ?, ?, ?, '', '', '', 'forward')",
        (
            (f"fill-{i}", f"2026-11-26T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000+00:00",
             "2026-11-26T00:00:00.000+00:00", credential, f"+4179{i % 10_000_000:07d}",
             f"{TEXTS[i % len(TEXTS)]} #{i}", TEXTS[i % len(TEXTS)].lower(), ACTIONS[i % len(ACTIONS)])
            for i in range(start, start + count)
        ),
    )
    recount_traffic(conn)  # the traffic counts the writer would have kept
    conn.execute("COMMIT")
    db.close()
