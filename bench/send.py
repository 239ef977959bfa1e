"""Benchmark: sending SMS through InfobipClient to the local Infobip simulator.

The simulator runs in a child process on loopback (as Infobip would be a separate server; a
thread in this process would share the GIL with the client and distort both sides).

Measured in one run:
- concurrent: N messages, one message per request (what the outbox sender does), at most
  CONCURRENCY requests in flight over one pooled client;
- batched: the same N messages, BATCH messages per request;
- naive: a loop that awaits each one-message request before the next, over a smaller count;
  its rate is extrapolated (rates are per second, so counts need not match).

The headline pair runs with a simulated 20 ms server delay per request (a stand-in for the
network round trip to Infobip, which concurrency exists to hide); the loopback_* pair runs
without it, where client and simulator are both CPU-bound on the same cores.

Then the outbox itself (engine/outbox_sender.py with the writer process, a real SQLite file):
OUTBOX replies queued from stored messages, sent with a simulated Infobip latency of 200 ms per
request, once batched (100 messages a request, the sender's default) and once one request per
reply (same sender, messages_per_request=1, on a smaller count; rates are per second). Target:
10,000 queued replies out in under 10 s.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsdesk.domain.credential import Credential  # noqa: E402
from smsdesk.engine.outbox_sender import OutboxSender  # noqa: E402
from smsdesk.infobip.client import InfobipClient, OutboundSms  # noqa: E402
from smsdesk.store.credentials import create_credential  # noqa: E402
from smsdesk.store.db import connect, transaction  # noqa: E402
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages  # noqa: E402
from smsdesk.writer.parent import ProcessWriter  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

KEY = "bench-key-0123456789abcdef"


def serve(port: int) -> None:
    from smsdesk.simulator.http_api import SimulatorState, build_simulator_server

    state = SimulatorState(keys={KEY}, record_bodies=False)
    build_simulator_server(state, "127.0.0.1", port, log_level="error").run()


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/account/1/balance", headers={"Authorization": f"App {KEY}"}).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("simulator did not start")


def sms(i: int) -> OutboundSms:
    return OutboundSms(sender="447491163443", to=f"4179{i:07d}", text=f"Reply {i}", validity_period_hours=48,
                       callback_data="bench", message_id=f"bench-{i}")


async def concurrent(client: InfobipClient, count: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limit:
            await client.send([sms(i)])

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def batched(client: InfobipClient, count: int, batch: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one(start: int) -> None:
        async with limit:
            await client.send([sms(i) for i in range(start, min(count, start + batch))])

    started = time.perf_counter()
    await asyncio.gather(*(one(s) for s in range(0, count, batch)))
    return count / (time.perf_counter() - started)


async def naive(client: InfobipClient, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        await client.send([sms(i)])
    return count / (time.perf_counter() - started)


INBOUND_NUMBER = "447491163443"


def queue_replies(db_path: Path, url: str, count: int) -> None:
    """`count` HELP messages from distinct numbers: `count` replies queued, all due."""
    db = connect(db_path)
    create_credential(db, Credential.model_validate(dict(
        name="Bench", sandbox="bench", base_url=url, api_key=KEY, inbound_number=INBOUND_NUMBER,
        help_message="Bench help")))
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime())
    with transaction(db) as conn:
        messages = [InboundMessage(f"mo-{i}", f"+4179{i:07d}", "+" + INBOUND_NUMBER, "HELP", now) for i in range(count)]
        store_messages(conn, RouteTable(), messages)
    db.close()


async def outbox_rate(url: str, count: int, messages_per_request: int) -> tuple[float, float]:
    """Seconds for the outbox sender to send `count` queued replies, and replies per second."""
    import tempfile

    db_path = Path(tempfile.mkdtemp(prefix="smsdesk-bench-outbox-")) / "smsdesk.db"
    queue_replies(db_path, url, count)
    writer = ProcessWriter(db_path)
    writer.start()
    writer.wait_ready()
    sender = OutboxSender(db_path, writer, interval=0.01, messages_per_request=messages_per_request)
    reader = connect(db_path)
    try:
        started = time.perf_counter()
        while reader.execute("SELECT COUNT(*) FROM outbox WHERE status != 'sent'").fetchone()[0]:
            await sender.run_once()
        seconds = time.perf_counter() - started
    finally:
        reader.close()
        await sender.aclose()
        writer.stop()
    return seconds, count / seconds


def set_latency(url: str, seconds: float) -> None:
    httpx.delete(f"{url}/_sim/faults")
    if seconds > 0:
        httpx.post(f"{url}/_sim/faults", json={"kind": "slow", "duration": 3600, "delay": seconds})


async def run(url: str, args: argparse.Namespace) -> dict[str, object]:
    async with InfobipClient(url, KEY, max_connections=args.concurrency, max_attempts=1) as client:
        await naive(client, 50)  # warm-up: connections and code paths
        # Headline: with a simulated network round trip, which is what concurrency exists to hide.
        set_latency(url, args.latency)
        naive_rate = await naive(client, args.naive)
        concurrent_rate = await concurrent(client, args.messages, args.concurrency)
        # Loopback without added latency: both sides are then CPU-bound on the same machine.
        set_latency(url, 0)
        loop_naive = await naive(client, args.naive)
        loop_concurrent = await concurrent(client, args.naive * 2, args.concurrency)
        batched_rate = await batched(client, args.messages, args.batch, max(1, args.concurrency // 4))
    set_latency(url, args.outbox_latency)
    outbox_seconds, outbox_batched = await outbox_rate(url, args.outbox, 100)
    _, outbox_single = await outbox_rate(url, args.outbox_single, 1)
    return {
        "bench": "send",
        "messages": args.messages,
        "concurrent_msgs_per_s": round(concurrent_rate, 1),
        "naive_msgs_per_s": round(naive_rate, 1),
        "ratio": round(concurrent_rate / naive_rate, 2),
        "latency_ms": round(args.latency * 1000, 1),
        "concurrency": args.concurrency,
        "naive_messages": args.naive,
        "naive": "sequential awaits, one message per request, same pooled client; rate measured on naive_messages",
        "loopback_concurrent_msgs_per_s": round(loop_concurrent, 1),
        "loopback_naive_msgs_per_s": round(loop_naive, 1),
        "batched_msgs_per_s": round(batched_rate, 1),
        "batch": args.batch,
        "outbox_replies": args.outbox,
        "outbox_seconds": round(outbox_seconds, 2),
        "outbox_batched_replies_per_s": round(outbox_batched, 1),
        "outbox_one_per_request_replies_per_s": round(outbox_single, 1),
        "outbox_one_per_request_replies": args.outbox_single,
        "outbox_ratio": round(outbox_batched / outbox_single, 1),
        "outbox_latency_ms": round(args.outbox_latency * 1000, 1),
        "server": "simulator in a child process on 127.0.0.1 (uvicorn h11)",
        # Without sniffio, httpcore retries a failing `import sniffio` for every lock it creates.
        "sniffio_installed": importlib.util.find_spec("sniffio") is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.02, help="simulated server-side delay per request (s)")
    # 16 in flight, the outbox sender's default. httpcore's pool does O(connections) work per
    # request state change, so many more connections cost client CPU on two cores.
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--outbox", type=int, default=10_000, help="queued replies for the outbox run")
    parser.add_argument("--outbox-single", type=int, default=400,
                        help="queued replies for the one-request-per-reply outbox run")
    parser.add_argument("--outbox-latency", type=float, default=0.2,
                        help="simulated Infobip delay per request for the outbox runs (s)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    proc, url = start_simulator()
    try:
        result = asyncio.run(run(url, args))
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
