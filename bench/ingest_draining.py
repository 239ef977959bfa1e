"""Single-message ingest of `smsdesk serve` while a backlog of replies drains, on a large database.

The issue's "ingest with a draining backlog within 20% of --no-send", measured on the real thing:
serve (its writer process, direct commits, the outbox sender) on a copy of a bench/scale.py
database, the simulator as Infobip (200 ms per send request, as bench/send.py), wrk posting
single-result webhooks with the realistic mix of bench/wrk_inbound.lua. At 1, 4, 16 and 64
connections, alternated, three arms on the same file:
  no_send    serve --no-send: the backlog stays queued (the baseline);
  paced      serve as shipped: the sender takes its share of the writer while webhooks arrive
             (engine/sender_pacing.py, --sender-share 0.1);
  unpaced    serve --sender-share 1: the sender claims as soon as its last round is recorded (one
             request's worth at a time while inbound arrives, as paced).
Before each sending arm the backlog is topped up to --backlog queued replies; `drained` is how many
of them left the queue during the wrk run.

Each point is the median of --rounds alternated runs (a large file on this machine stalls now and
then for half a second, in whichever arm is running). Prints one JSON line.
Usage: python bench/ingest_draining.py [--db PATH] [--seconds 5] [--rounds 3] [--backlog 50000]
                                       [--connections 1,4,16,64]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import CONNECTIONS, serve_process, wrk  # noqa: E402
from scale import queue_backlog  # noqa: E402
from send import KEY, set_latency, start_simulator  # noqa: E402

from smsdesk.store.db import connect, transaction  # noqa: E402
from tests.support.processes import free_port, wait_healthy  # noqa: E402

ARMS = {"no_send": ("--no-send",), "paced": (), "unpaced": ("--sender-share", "1")}


def queued(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:  # the partial index of queued replies (schema 16): no scan of the outbox
        sql = "SELECT COUNT(*) FROM outbox INDEXED BY outbox_queued WHERE status = 'queued'"
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def top_up(db: Path, backlog: int) -> None:
    missing = backlog - queued(db)
    if missing > 0:
        handle = connect(db)
        try:
            with transaction(handle) as conn:
                queue_backlog(conn, time.time_ns(), missing)
        finally:
            handle.close()


def measure(db: Path, flags: tuple[str, ...], connections: int,
            args: argparse.Namespace) -> tuple[float, float, float]:
    """One run of serve with `flags`: (messages/s, p99 ms, backlog replies drained per second)."""
    top_up(db, args.backlog)
    port = free_port()
    proc = serve_process(db, port, *flags, send=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=120)
        # serve's start (expiring pending double opt-ins, the sender's first claim in full before
        # any webhook) is not what is measured: 2 s of traffic first.
        wrk(url, connections, 2, 1)
        before = queued(db)
        stats = wrk(url, connections, args.seconds, 1)
    finally:
        proc.terminate()
        proc.wait(30)
    return stats["msgs_per_s"], stats["p99_ms"], max(0, before - queued(db)) / args.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="/tmp/smsdesk-scale/scale-1000000.db",
                        help="a bench/scale.py database (copied; the original is not changed)")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--backlog", type=int, default=50_000, help="queued replies at the start of each arm")
    parser.add_argument("--rounds", type=int, default=3, help="alternated runs of each arm per point (medians)")
    parser.add_argument("--connections", default=",".join(map(str, CONNECTIONS)), help="the points, comma-separated")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/ingest_draining.py needs wrk (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-bench-draining-"))
    db = tmp / "smsdesk.db"
    simulator, sim_url = start_simulator()
    try:
        shutil.copyfile(args.db, db)
        conn = sqlite3.connect(db)
        with conn:  # the bench's own copy: every credential sends to the simulator
            conn.execute("UPDATE credentials SET base_url = ?, api_key = ?", (sim_url, KEY))
            messages = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
        conn.close()
        set_latency(sim_url, 0.2)
        result: dict[str, object] = {"bench": "ingest_draining", "messages": messages,
                                     "generator": "wrk 4.1 (C, epoll), 1 thread", "seconds_per_point": args.seconds,
                                     "backlog": args.backlog, "infobip_latency_s": 0.2, "rounds": args.rounds}
        for connections in (int(c) for c in args.connections.split(",")):
            runs: dict[str, list[tuple[float, float, float]]] = {arm: [] for arm in ARMS}
            for _ in range(args.rounds):
                for arm, flags in ARMS.items():
                    runs[arm].append(measure(db, flags, connections, args))
            point: dict[str, object] = {}
            for arm, measured in runs.items():
                point[f"{arm}_msgs_per_s"] = round(statistics.median(m[0] for m in measured))
                point[f"{arm}_p99_ms"] = round(statistics.median(m[1] for m in measured), 1)
                if arm != "no_send":
                    point[f"{arm}_drained_per_s"] = round(statistics.median(m[2] for m in measured))
            for arm in ("paced", "unpaced"):
                point[f"{arm}_ratio"] = round(point[f"{arm}_msgs_per_s"] / point["no_send_msgs_per_s"], 2)
            result[f"c{connections}"] = point
        print(json.dumps(result), flush=True)
    finally:
        simulator.terminate()
        simulator.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
