"""Ingest of `smsdesk serve` against a bare durable baseline, driven by wrk, in one run.

Both servers run as separate processes on loopback; wrk (C, epoll) posts MO_JSON_2 webhooks with
uuid-like messageIds and random numbers (bench/wrk_inbound.lua). For 1, 4, 16 and 64 connections
it prints messages/s of both and their ratio, and p50/p99 latency; then the same for 100-result
batches. Before that it checks the load generator: the baseline driven by one wrk thread and by
two must give about the same figure, or wrk, not the server, was the limit.

The baseline: starlette + uvicorn (httptools, uvloop), one durable SQLite insert per request (WAL,
synchronous=FULL, COMMIT before the answer), none of the rules. smsdesk: the same durability.

With --ab it also measures, at every point, serve with one commit path or the other, in the same
run (what each moving part buys; docs/architecture.md keeps a part only for 25% at some point):
  writer_only        every webhook through the writer process (no direct commits);
  in_process         the writer on a thread of serve (no child process), direct commits on;
  in_process_only    the writer on a thread of serve and nothing else: one commit path.

With --search-ab instead, the cost of the log's search index (schema 18: messages_credential, and
serve's indexer job adding new messages to the trigram index every second) on single-message
ingest: two serves, one on a database without the index and with nothing left to index (a
bench-only change of the bench's own temporary file, no switch of smsdesk's), driven in
alternated rounds at each point; the median of the rounds per arm.

Prints one JSON line. Usage: python bench/ingest.py [--seconds 5] [--ab | --search-ab [--rounds 3]]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsdesk.simulator.sample_data import make_db, shop_credential  # noqa: E402
from tests.support.processes import free_port, wait_healthy  # noqa: E402

SCRIPT = ROOT / "bench" / "wrk_inbound.lua"
CONNECTIONS = (1, 4, 16, 64)


def wal_size(db: Path) -> int:
    try:
        return os.path.getsize(f"{db}-wal")
    except OSError:
        return 0


def wrk(url: str, connections: int, seconds: float, batch: int, threads: int = 1) -> dict[str, float]:
    """One wrk run; messages/s and latency, failing loudly on any non-200 or socket error."""
    done = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(SCRIPT), url, "--", str(batch)], capture_output=True, text=True, check=True)
    line = next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{"))
    stats = json.loads(line)
    if stats["non_2xx"] or stats["socket_errors"]:
        raise RuntimeError(f"wrk against {url}: {stats}")
    return {"msgs_per_s": stats["requests"] * batch / (stats["duration_us"] / 1e6),
            "p50_ms": stats["p50_us"] / 1000, "p99_ms": stats["p99_us"] / 1000, "requests": stats["requests"]}


@dataclass
class Servers:
    """`smsdesk serve` and the bare baseline, running, with the database serve writes to; and the
    variants of serve asked for (VARIANTS), each on a database of its own."""

    ours: subprocess.Popen[bytes]
    base: subprocess.Popen[bytes]
    ours_url: str
    base_url: str
    db: Path
    variants: dict[str, str] = field(default_factory=dict)  # name -> url


def serve_process(db: Path, port: int, *flags: str, send: bool = False) -> subprocess.Popen[bytes]:
    """`smsdesk serve` on `db` as a process on loopback, quiet; receive only unless `send`."""
    return subprocess.Popen([sys.executable, "-m", "smsdesk", "serve", "--insecure-no-auth",
                             *(() if send else ("--no-send",)), "--port", str(port), *flags],
                            env=dict(os.environ, SMSDESK_DB=str(db)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


VARIANTS = {"writer_only": ("--writer-only",), "in_process": ("--writer-in-process",),
            "in_process_only": ("--writer-in-process", "--writer-only")}


@contextlib.contextmanager
def both_servers(variants: tuple[str, ...] = ()) -> Iterator[Servers]:
    """Both receivers as processes on loopback, healthy; stopped on the way out."""
    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-bench-"))
    # No reply messages configured: this measures ingest, not the outbox.
    cred = shop_credential(default_reply_message="", opt_in_message="", opt_out_message="", help_message="")
    db = make_db(tmp / "smsdesk.db", cred)
    ours_port, base_port = free_port(), free_port()
    procs = [serve_process(db, ours_port),
             subprocess.Popen([sys.executable, str(ROOT / "bench" / "baseline_receiver.py"), str(base_port),
                               str(tmp / "baseline.db")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    servers = Servers(procs[0], procs[1], f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{base_port}", db)
    urls = [servers.ours_url, servers.base_url]
    for name in variants:
        port = free_port()
        procs.append(serve_process(make_db(tmp / f"{name}.db", cred), port, *VARIANTS[name]))
        servers.variants[name] = f"http://127.0.0.1:{port}"
        urls.append(servers.variants[name])
    try:
        for url, proc in zip(urls, procs, strict=True):
            wait_healthy(url, proc)
        yield servers
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


# What schema 18 adds to each stored message: messages_credential, and serve's indexer job adding
# it to the trigram index a second later (store/message_search.py). The baseline's mark is put
# past any id, so its indexer finds nothing to add.
SEARCH_INDEX_DROPPED = ("DROP INDEX messages_credential",
                        "UPDATE message_search_state SET indexed_upto = 9223372036854775807")


def search_ab(seconds: int, rounds: int) -> dict[str, object]:
    """Single-message ingest through serve over HTTP with and without the search index, alternated."""
    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-bench-search-"))
    cred = shop_credential(default_reply_message="", opt_in_message="", opt_out_message="", help_message="")
    indexed, bare = make_db(tmp / "indexed.db", cred), make_db(tmp / "bare.db", cred)
    conn = sqlite3.connect(bare)
    for statement in SEARCH_INDEX_DROPPED:
        conn.execute(statement)
    conn.commit()
    conn.close()
    ports = {"indexed": free_port(), "bare": free_port()}
    procs = {"indexed": serve_process(indexed, ports["indexed"]), "bare": serve_process(bare, ports["bare"])}
    urls = {arm: f"http://127.0.0.1:{port}" for arm, port in ports.items()}
    samples: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for arm, url in urls.items():
            wait_healthy(url, procs[arm])
            wrk(url, 16, 1, 1)  # warm-up
        for round_ in range(rounds):
            for connections in CONNECTIONS:
                arms = ("indexed", "bare") if (round_ + connections) % 2 else ("bare", "indexed")
                for arm in arms:
                    samples.setdefault((arm, connections), []).append(wrk(urls[arm], connections, seconds, 1))
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)
    result: dict[str, object] = {"bench": "ingest_search_ab", "rounds": rounds, "seconds_per_point": seconds,
                                 "generator": "wrk 4.1 (C, epoll), 1 thread, wrk_inbound.lua's text mix"}
    for connections in CONNECTIONS:
        median = {arm: sorted(samples[(arm, connections)], key=lambda s: s["msgs_per_s"])[rounds // 2]
                  for arm in ("indexed", "bare")}
        result[f"c{connections}"] = {
            "indexed_msgs_per_s": round(median["indexed"]["msgs_per_s"]),
            "bare_msgs_per_s": round(median["bare"]["msgs_per_s"]),
            "ratio": round(median["indexed"]["msgs_per_s"] / median["bare"]["msgs_per_s"], 3),
            "indexed_p50_ms": round(median["indexed"]["p50_ms"], 2), "bare_p50_ms": round(median["bare"]["p50_ms"], 2),
            "indexed_p99_ms": round(median["indexed"]["p99_ms"], 2), "bare_p99_ms": round(median["bare"]["p99_ms"], 2),
            "indexed_rounds": [round(s["msgs_per_s"]) for s in samples[("indexed", connections)]],
            "bare_rounds": [round(s["msgs_per_s"]) for s in samples[("bare", connections)]]}
    for arm, db in (("indexed", indexed), ("bare", bare)):
        conn = sqlite3.connect(db)
        result[f"{arm}_stored"] = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--ab", action="store_true",
                        help="also measure serve with one commit path or the other at each point (see VARIANTS): "
                             "what the writer process and direct commits buy, in the same run")
    parser.add_argument("--search-ab", action="store_true",
                        help="instead: single-message ingest with and without the log's search index (schema 18), "
                             "alternated rounds")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --search-ab")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/ingest.py needs wrk (apt-get install wrk)")
    if args.search_ab:
        print(json.dumps(search_ab(args.seconds, args.rounds)))
        return
    result: dict[str, object] = {"bench": "ingest", "generator": "wrk 4.1 (C, epoll), 1 thread",
                                 "ids": "random (uuid-like messageIds, random numbers)",
                                 "seconds_per_point": args.seconds}
    sent_to_ours = 0
    with both_servers(tuple(VARIANTS) if args.ab else ()) as servers:
        ours_url, base_url = servers.ours_url, servers.base_url
        wrk(base_url, 16, 1, 1)  # warm-up of all
        sent_to_ours += int(wrk(ours_url, 16, 1, 1)["requests"])
        for url in servers.variants.values():
            wrk(url, 16, 1, 1)
        one = wrk(base_url, 64, args.seconds, 1, threads=1)["msgs_per_s"]
        two = wrk(base_url, 64, args.seconds, 1, threads=2)["msgs_per_s"]
        result["generator_check"] = {"baseline_c64_1_thread": round(one), "baseline_c64_2_threads": round(two),
                                     "generator_bound": two > one * 1.1}
        for connections in CONNECTIONS:
            base_stats = wrk(base_url, connections, args.seconds, 1)
            ours_stats = wrk(ours_url, connections, args.seconds, 1)
            sent_to_ours += int(ours_stats["requests"])
            result[f"c{connections}"] = {
                "smsdesk_msgs_per_s": round(ours_stats["msgs_per_s"]),
                "baseline_msgs_per_s": round(base_stats["msgs_per_s"]),
                "ratio": round(ours_stats["msgs_per_s"] / base_stats["msgs_per_s"], 2),
                "smsdesk_p50_ms": round(ours_stats["p50_ms"], 2), "baseline_p50_ms": round(base_stats["p50_ms"], 2),
                "smsdesk_p99_ms": round(ours_stats["p99_ms"], 2), "baseline_p99_ms": round(base_stats["p99_ms"], 2),
            }
            for name, url in servers.variants.items():
                alt = wrk(url, connections, args.seconds, 1)
                result[f"c{connections}"].update({  # type: ignore[attr-defined]
                    f"{name}_msgs_per_s": round(alt["msgs_per_s"]),
                    f"{name}_ratio": round(alt["msgs_per_s"] / base_stats["msgs_per_s"], 2),
                    f"{name}_p50_ms": round(alt["p50_ms"], 2), f"{name}_p99_ms": round(alt["p99_ms"], 2)})
        base_batched = wrk(base_url, 8, args.seconds, 100)
        ours_batched = wrk(ours_url, 8, args.seconds, 100)
        sent_to_ours += int(ours_batched["requests"]) * 100
        result["batched_100"] = {
            "connections": 8, "smsdesk_msgs_per_s": round(ours_batched["msgs_per_s"]),
            "baseline_msgs_per_s": round(base_batched["msgs_per_s"]),
            "ratio": round(ours_batched["msgs_per_s"] / base_batched["msgs_per_s"], 2),
            # The WAL file only grows while serve runs (SQLite reuses it from the start): its size
            # is the run's peak. A writer that never let it start over once grew it to 2.6 GB in 20 s.
            "smsdesk_wal_file_mb": round(wal_size(servers.db) / 2**20, 1)}
        for name, url in servers.variants.items():
            alt = wrk(url, 8, args.seconds, 100)
            result["batched_100"].update({  # type: ignore[attr-defined]
                f"{name}_msgs_per_s": round(alt["msgs_per_s"]),
                f"{name}_ratio": round(alt["msgs_per_s"] / base_batched["msgs_per_s"], 2)})
    conn = sqlite3.connect(servers.db)
    result["smsdesk_stored"] = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    # wrk counts the requests answered within each run; a few more were answered (and stored) as it stopped
    result["smsdesk_acknowledged_at_least"] = sent_to_ours
    conn.close()
    result["durability"] = "WAL + synchronous=FULL, 200 after COMMIT (both)"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
