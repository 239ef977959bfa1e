"""Ingest throughput of `smsdesk serve` against a bare durable baseline, in the same run.

Drives both servers (separate processes) with concurrent single-message POSTs, then smsdesk with
100-result batches. Prints one JSON line. Usage: python bench/ingest.py [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import blast, build_request  # noqa: E402
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def body(prefix: str, start: int, size: int, random_ids: bool = False) -> bytes:
    """Sequential ids and numbers by default; `random_ids`: uuid-like messageIds and random
    numbers, as real traffic has, which scatter the index pages every commit touches."""
    results = [{"messageId": uuid.uuid4().hex if random_ids else f"{prefix}-{i}",
                "from": f"4179{random.randrange(10_000_000) if random_ids else i % 10_000_000:07d}",
                "to": SHOP_NUMBER, "text": "hello there", "receivedAt": "2026-11-26T10:00:00.000+0000"}
               for i in range(start, start + size)]
    return json.dumps({"results": results, "messageCount": size, "pendingMessageCount": 0}).encode()


def drive(port: int, prefix: str, messages: int, batch: int, concurrency: int, random_ids: bool = False) -> float:
    requests = [build_request("127.0.0.1", port, "/infobip/inbound", body(prefix, i * batch, batch, random_ids))
                for i in range(messages // batch)]
    seconds, failures = asyncio.run(blast("127.0.0.1", port, requests, concurrency))
    if failures:
        raise RuntimeError(f"{failures} requests were not answered 200")
    return len(requests) * batch / seconds


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000, help="single-message POSTs per server")
    parser.add_argument("--batched", type=int, default=100_000, help="messages sent in 100-result batches")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--random-ids", action="store_true",
                        help="uuid-like messageIds and random numbers, closer to real traffic")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-bench-"))
    # No reply messages configured: this measures ingest, not the outbox.
    cred = shop_credential(default_reply_message="", opt_in_message="", opt_out_message="", help_message="")
    db = make_db(tmp / "smsdesk.db", cred)
    env = dict(os.environ, SMSDESK_DB=str(db))
    ours_port, base_port = free_port(), free_port()
    ours = start([sys.executable, "-m", "smsdesk", "serve", "--insecure-no-auth", "--port", str(ours_port)], env)
    base = start([sys.executable, str(ROOT / "bench" / "baseline_receiver.py"), str(base_port),
                  str(tmp / "baseline.db")], env)
    try:
        ours_url, base_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{base_port}"
        wait_healthy(ours_url, ours)
        wait_healthy(base_url, base)
        base_single = drive(base_port, "b", args.messages, 1, args.concurrency, args.random_ids)
        ours_single = drive(ours_port, "s", args.messages, 1, args.concurrency, args.random_ids)
        base_batched = drive(base_port, "bb", args.batched, 100, 8, args.random_ids)
        ours_batched = drive(ours_port, "sb", args.batched, 100, 8, args.random_ids)
    finally:
        for proc in (ours, base):
            proc.terminate()
            proc.wait(10)
    import sqlite3

    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    print(json.dumps({
        "bench": "ingest", "concurrency": args.concurrency, "single_messages": args.messages,
        "smsdesk_single_msgs_per_s": round(ours_single), "baseline_single_msgs_per_s": round(base_single),
        "single_ratio": round(ours_single / base_single, 2),
        "batched_messages": args.batched, "smsdesk_batched_msgs_per_s": round(ours_batched),
        "baseline_batched_msgs_per_s": round(base_batched),
        "stored": stored, "expected_stored": args.messages + args.batched,
        "ids": "random" if args.random_ids else "sequential",
        "durability": "WAL + synchronous=FULL, 200 after commit (both)",
    }))


if __name__ == "__main__":
    main()
