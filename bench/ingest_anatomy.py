"""Where a 100-result batch's time goes in the writer: what each per-number structure costs.

A message from a number smsdesk has not seen touches three randomly placed index pages: the
messageId key (the bare receiver has that one too), `messages_from` (a number's history, the
profiles view) and the key of `profiles` (first and last seen). This measures the writer's job,
`store_messages` in one transaction with synchronous=FULL, on the real schema, and on copies that
leave out one or both of the per-number structures, against the bare receiver's insert:

- `smsdesk`: as shipped;
- `without_messages_from`: the index dropped;
- `without_profiles`: the profiles upsert left out;
- `without_both`: both left out, the ceiling of any design that keeps neither in the commit;
- `deferred_merge`: both left out of the commit and kept instead by a sorted bulk merge every
  `--merge-every` messages (a per-number table and the profiles upsert, one transaction): what
  deferring them would cost, paid in the same process.

Every side has its own file, filled with `--fill` messages from random numbers first (so that
the indexes are as large as bench/ingest.py's batched point finds them); the sides alternate per
round. In process: no HTTP, no writer process (bench/ingest.py measures those).

Prints one JSON line: microseconds per message (median of the rounds) and the throughput ratio
against the baseline. Usage: python bench/ingest_anatomy.py [--fill 150000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_scale import Baseline, Smsdesk, messages, per_message_us  # noqa: E402
from smsdesk.store.inbound import InboundMessage, store_messages  # noqa: E402

BATCH = 100
BATCHES_PER_ROUND = 40
FILL_CHUNK = 2000


class WithoutProfiles:
    """The write connection, except that the profiles upsert is left out."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def executemany(self, sql: str, rows: Any) -> Any:
        if sql.startswith("INSERT INTO profiles"):
            return None
        return self._conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class Variant(Smsdesk):
    """smsdesk's store with some per-number structures left out of the commit."""

    def __init__(self, path: Path, *, messages_from: bool, profiles: bool, merge_every: int = 0) -> None:
        super().__init__(path)
        if not messages_from:
            self.conn.execute("DROP INDEX messages_from")
        self.store_conn: Any = self.conn if profiles else WithoutProfiles(self.conn)
        self.merge_every = merge_every
        self.unmerged = 0
        if merge_every:
            self.conn.execute("CREATE TABLE number_messages (sandbox TEXT NOT NULL, number TEXT NOT NULL, "
                              "message_row_id INTEGER NOT NULL, PRIMARY KEY (sandbox, number, message_row_id)) "
                              "WITHOUT ROWID")
            self.conn.execute("CREATE TABLE merged_through (id INTEGER NOT NULL)")
            self.conn.execute("INSERT INTO merged_through VALUES (0)")

    def store(self, batch: list[InboundMessage]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        store_messages(self.store_conn, self.routes, batch)
        self.conn.execute("COMMIT")
        self.unmerged += len(batch)
        if self.merge_every and self.unmerged >= self.merge_every:
            self.merge()

    def merge(self) -> None:
        """The deferred per-number work: history entries and profiles of every message since the
        last merge, in key order, in one transaction (synchronous=NORMAL: it can be redone)."""
        conn = self.conn
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        (through,) = conn.execute("SELECT id FROM merged_through").fetchone()
        rows = conn.execute("SELECT id, sandbox, from_number, received_at FROM messages "
                            "WHERE id > ? AND credential_id IS NOT NULL ORDER BY id", (through,)).fetchall()
        conn.executemany("INSERT OR IGNORE INTO number_messages VALUES (?, ?, ?)",
                         sorted((sandbox, number, row_id) for row_id, sandbox, number, _ in rows))
        seen: dict[tuple[str, str], tuple[str, str]] = {}
        for _, sandbox, number, at in rows:
            first, last = seen.get((sandbox, number), (at, at))
            seen[(sandbox, number)] = (min(first, at), max(last, at))
        conn.executemany(
            "INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sandbox, number) DO UPDATE SET "
            "first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen)",
            [(sandbox, number, first, last) for (sandbox, number), (first, last) in sorted(seen.items())])
        if rows:
            conn.execute("UPDATE merged_through SET id = ?", (rows[-1][0],))
        conn.execute("COMMIT")
        conn.execute("PRAGMA synchronous = FULL")
        self.unmerged = 0


def fill(side: Smsdesk | Baseline, count: int, rng: random.Random) -> None:
    """`count` messages from random numbers, at synchronous=OFF, then the WAL copied back."""
    side.conn.execute("PRAGMA synchronous = OFF")
    for start in range(0, count, FILL_CHUNK):
        side.store(messages(min(FILL_CHUNK, count - start), 0, rng))
    if isinstance(side, Variant) and side.merge_every:
        side.merge()
    side.conn.execute("PRAGMA synchronous = FULL")
    side.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fill", type=int, default=150_000, help="messages in each file before measuring")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the sides")
    parser.add_argument("--merge-every", type=int, default=20_000, help="messages between two deferred merges")
    args = parser.parse_args()
    rng = random.Random(16)
    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-anatomy-"))
    makers: dict[str, Callable[[Path], Smsdesk | Baseline]] = {
        "baseline": Baseline,
        "smsdesk": lambda p: Variant(p, messages_from=True, profiles=True),
        "without_messages_from": lambda p: Variant(p, messages_from=False, profiles=True),
        "without_profiles": lambda p: Variant(p, messages_from=True, profiles=False),
        "without_both": lambda p: Variant(p, messages_from=False, profiles=False),
        "deferred_merge": lambda p: Variant(p, messages_from=False, profiles=False, merge_every=args.merge_every),
    }
    sides = {name: make(tmp / f"{name}.db") for name, make in makers.items()}
    for side in sides.values():
        fill(side, args.fill, rng)
    # A merge falls due every merge_every messages, so a round must hold at least one of them.
    batches = max(BATCHES_PER_ROUND, -(-args.merge_every // BATCH))
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, side in sides.items():
            times[name].append(per_message_us(side, [messages(BATCH, 0, rng) for _ in range(batches)]))
    medians = {name: statistics.median(us) for name, us in times.items()}
    result: dict[str, object] = {
        "bench": "ingest_anatomy", "batch": BATCH, "filled_with": args.fill, "merge_every": args.merge_every,
        "durability": "WAL + synchronous=FULL, one commit per batch",
        "us_per_msg": {name: round(us, 1) for name, us in medians.items()},
        "ratio": {name: round(medians["baseline"] / us, 2) for name, us in medians.items() if name != "baseline"},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
