"""Message log figures: open time, page-down time and peak RSS at 1,000 and 1,000,000 rows, the
stock DataTable holding every row as the baseline (100,000 rows), and the delay from a message
committed by another process to it being in the log (median and p95 over 100 messages).

Each measurement runs in its own process so peak RSS belongs to that measurement alone.
Prints one JSON line. Usage: python bench/log_view.py [--big 1000000] [--baseline-rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure_log(db_path: Path, pages: int = 20, oldest_first: bool = False) -> dict[str, float]:
    from smsdesk.tui.app import SmsDeskApp
    from smsdesk.tui.widgets.message_log import MessageLog

    # The real app opened on the log (its data service and its one timer feed the log).
    started = time.perf_counter()
    app = SmsDeskApp(db_path, initial_mode="log")
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.screen.query_one(MessageLog)

        def screen_filled() -> bool:
            top, height = log.scroll_offset.y, log.size.height
            return log.loaded and all(log._rows.get(p) is not None for p in range(top, min(log.total, top + height)))

        while not screen_filled():
            await asyncio.sleep(0.001)
        opened = time.perf_counter() - started
        if oldest_first:  # `s`: the same walk from the oldest message (keyset pages upwards in time)
            t0 = time.perf_counter()
            await pilot.press("s")
            while not (log.oldest_first and screen_filled()):
                await asyncio.sleep(0.001)
            opened = time.perf_counter() - t0
        timings = []
        for _ in range(pages):
            t0 = time.perf_counter()
            await pilot.press("pagedown")
            while not screen_filled():
                await asyncio.sleep(0.001)
            timings.append(time.perf_counter() - t0)
        # What a key press costs the test driver itself, with nothing to fetch: the floor.
        noop = []
        for _ in range(pages):
            t0 = time.perf_counter()
            await pilot.press("f12")
            noop.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await pilot.press("end")
        while not screen_filled():
            await asyncio.sleep(0.001)
        jump = time.perf_counter() - t0
    return {"open_s": round(opened, 3), "pagedown_ms_median": round(statistics.median(timings) * 1000, 1),
            "pagedown_ms_max": round(max(timings) * 1000, 1),
            "unbound_key_ms_median": round(statistics.median(noop) * 1000, 1),
            "jump_to_oldest_ms": round(jump * 1000, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


async def measure_datatable(db_path: Path) -> dict[str, float]:
    """The baseline: Textual's stock DataTable with every row loaded."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from smsdesk.store.db import connect
    from smsdesk.store.queries import page_messages

    class Bench(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    started = time.perf_counter()
    app = Bench()
    async with app.run_test(size=(80, 24)) as pilot:
        rows = page_messages(connect(db_path).conn, limit=10_000_000)
        table = app.query_one(DataTable)
        table.add_columns("time", "credential", "from", "text", "action", "reply")
        table.add_rows([(r.received_at[11:19], r.credential, r.from_number, r.text, r.action, r.reply_status or "-")
                        for r in rows])
        await pilot.pause()
        opened = time.perf_counter() - started
        t0 = time.perf_counter()
        table.focus()
        await pilot.press("pagedown")
        await pilot.pause()
        page = time.perf_counter() - t0
    return {"open_s": round(opened, 3), "pagedown_ms": round(page * 1000, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}


async def measure_latency(db_path: Path, count: int) -> dict[str, float]:
    """Another process commits messages one by one; we time each until the log holds it."""
    from smsdesk.tui.app import SmsDeskApp
    from smsdesk.tui.widgets.message_log import MessageLog

    app = SmsDeskApp(db_path, initial_mode="log")
    delays: list[float] = []
    async with app.run_test(size=(80, 24)):
        log = app.screen.query_one(MessageLog)
        while not log.loaded:
            await asyncio.sleep(0.01)
        writer = subprocess.Popen([sys.executable, __file__, "--writer", str(db_path), str(count)],
                                  stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        loop = asyncio.get_running_loop()
        for _ in range(count):
            line = await loop.run_in_executor(None, writer.stdout.readline)
            message_id, committed = line.split()
            # Later messages may land in the same refresh, so look among the newest rows.
            while not any((row := log._rows.get(p)) is not None and row.message_id == message_id
                          for p in range(10)):
                await asyncio.sleep(0.002)
            delays.append(time.time() - float(committed))
        writer.wait(10)
    delays.sort()
    return {"messages": count, "median_ms": round(statistics.median(delays) * 1000, 1),
            "p95_ms": round(delays[int(len(delays) * 0.95) - 1] * 1000, 1)}


def writer_process(db_path: Path, count: int) -> None:
    """Stores messages through the real pipeline (rules, one durable commit each)."""
    from smsdesk.store.db import connect, transaction, utcnow
    from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages

    db = connect(db_path)
    routes = RouteTable()
    run = uuid.uuid4().hex[:8]
    for i in range(count):
        message = InboundMessage(f"lat-{run}-{i}", "+41790000001", "+447491163443", "hello", utcnow())
        with transaction(db) as conn:
            store_messages(conn, routes, [message])
        print(message.message_id, time.time(), flush=True)
        time.sleep(0.05)


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--latency-messages", type=int, default=100)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DB"))
    parser.add_argument("--writer", nargs=2, metavar=("DB", "COUNT"))
    args = parser.parse_args()
    if args.writer:
        writer_process(Path(args.writer[0]), int(args.writer[1]))
        return
    if args.child:
        kind, db = args.child
        func = {"log": measure_log, "datatable": measure_datatable,
                "log-oldest": lambda path: measure_log(path, oldest_first=True)}[kind]
        print(json.dumps(asyncio.run(func(Path(db)))))
        return

    from smsdesk.simulator.bulk_log import fill_messages
    from smsdesk.simulator.sample_data import make_db, shop_credential

    tmp = Path(tempfile.mkdtemp(prefix="smsdesk-logbench-"))
    result: dict[str, object] = {"bench": "log_view", "terminal": "80x24"}
    for rows in (1_000, args.big):
        db = make_db(tmp / f"log-{rows}.db", shop_credential())
        fill_messages(db, rows)
        result[f"smsdesk_{rows}"] = run_child("--child", "log", str(db))
        # Oldest first (`s`): open_s is the time from `s` to a full screen; End jumps to the newest.
        result[f"smsdesk_{rows}_oldest_first"] = run_child("--child", "log-oldest", str(db))
    base_db = make_db(tmp / "baseline.db", shop_credential())
    fill_messages(base_db, args.baseline_rows)
    result[f"datatable_baseline_{args.baseline_rows}"] = run_child("--child", "datatable", str(base_db))
    latency_db = make_db(tmp / "latency.db", shop_credential())
    fill_messages(latency_db, 1_000)
    result["store_to_screen"] = asyncio.run(measure_latency(latency_db, args.latency_messages))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
