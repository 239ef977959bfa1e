"""What storing a webhook costs the writer as the database grows, against a bare insert.

A lookup that reads a whole table does not show in a benchmark that starts from an empty file:
its cost grows with the table. This one fills a database with subscribers (numbers that sent a
consent keyword, so each has a consent row, a ledger entry, a profile and messages) and measures
the writer's job, `store_messages` in one transaction with synchronous=FULL, at each size:
single-message webhooks and 100-result batches, with realistic random ids and numbers, a tenth
of them consent keywords from numbers already subscribed. The baseline is the bare receiver's
insert (bench/baseline_receiver.py) into a table holding as many messages.

In process, one SQLite file per side on the same disk, the sides alternated per round: this
isolates the store from HTTP and the writer process (bench/ingest.py measures those).

Prints one JSON line. Usage: python bench/ingest_scale.py [--sizes 0,10000,100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline_receiver import open_baseline, store_baseline  # noqa: E402
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential  # noqa: E402
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages  # noqa: E402
from smsdesk.writer.jobs import open_write_connection  # noqa: E402

TO = "+" + SHOP_NUMBER
KEYWORDS = ("STOP", "START", "HELP")
FILL_CHUNK = 2000


def number(n: int) -> str:
    return f"+4179{n:07d}"


def messages(count: int, subscribers: int, rng: random.Random) -> list[InboundMessage]:
    """`count` messages: nine in ten free text from new numbers, one in ten a keyword from a subscriber."""
    out = []
    for _ in range(count):
        if subscribers and rng.random() < 0.1:
            sender, text = number(rng.randrange(subscribers)), rng.choice(KEYWORDS)
        else:
            sender, text = number(rng.randrange(5_000_000, 9_999_999)), "hello there"
        out.append(InboundMessage(uuid.UUID(int=rng.getrandbits(128)).hex, sender, TO, text,
                                  "2026-11-26T10:00:00.000Z"))
    return out


class Smsdesk:
    def __init__(self, path: Path) -> None:
        cred = shop_credential(default_reply_message="", opt_in_message="", opt_out_message="", help_message="")
        self.conn = open_write_connection(make_db(path, cred), 2000)
        self.routes = RouteTable()

    def store(self, batch: list[InboundMessage]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        store_messages(self.conn, self.routes, batch)
        self.conn.execute("COMMIT")


class Baseline:
    def __init__(self, path: Path) -> None:
        self.conn = open_baseline(path)

    def store(self, batch: list[InboundMessage]) -> None:
        store_baseline(self.conn, [(m.message_id, m.from_number, m.text) for m in batch])


def grow(ours: Smsdesk, base: Baseline, start: int, stop: int, rng: random.Random) -> None:
    """Subscribers start..stop each send START (consent, ledger, profile, message) at synchronous=OFF."""
    for side in (ours, base):
        side.conn.execute("PRAGMA synchronous = OFF")
    for first in range(start, stop, FILL_CHUNK):
        batch = [InboundMessage(uuid.UUID(int=rng.getrandbits(128)).hex, number(n), TO, "START",
                                "2026-11-25T10:00:00.000Z") for n in range(first, min(first + FILL_CHUNK, stop))]
        ours.store(batch)
        base.store(batch)
    for side in (ours, base):
        side.conn.execute("PRAGMA synchronous = FULL")
        side.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def per_message_us(side: Smsdesk | Baseline, batches: list[list[InboundMessage]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        side.store(batch)
    return (time.perf_counter() - started) / sum(len(b) for b in batches) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,10000,100000", help="subscribers at each measuring point")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two sides per point")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = random.Random(16)
    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-scale-"))
    ours, base = Smsdesk(tmp / "smsdesk.db"), Baseline(tmp / "baseline.db")
    result: dict[str, object] = {
        "bench": "ingest_scale", "durability": "WAL + synchronous=FULL, one commit per webhook",
        "texts": "9 in 10 free text from new numbers, 1 in 10 STOP/START/HELP from subscribers"}
    grown = 0
    for size in sizes:
        grow(ours, base, grown, size, rng)
        grown = size
        point: dict[str, float] = {}
        for label, count, per_batch in (("single", 400, 1), ("batched_100", 20, 100)):
            ours_us: list[float] = []
            base_us: list[float] = []
            for _ in range(args.rounds):
                ours_us.append(per_message_us(ours, [messages(per_batch, size, rng) for _ in range(count)]))
                base_us.append(per_message_us(base, [messages(per_batch, size, rng) for _ in range(count)]))
            o, b = statistics.median(ours_us), statistics.median(base_us)
            point[f"{label}_smsdesk_us_per_msg"] = round(o, 1)
            point[f"{label}_baseline_us_per_msg"] = round(b, 1)
            point[f"{label}_ratio"] = round(b / o, 2)  # throughput ratio: above 1, smsdesk is faster
        result[f"subscribers_{size}"] = point
    print(json.dumps(result))


if __name__ == "__main__":
    main()
