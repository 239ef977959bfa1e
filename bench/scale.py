"""Every screen, filter, the sender and the CLI's exports on large databases, quiet and live.

Builds databases of 100k, 1M (and, asked for, 5M) messages with smsdesk's own store functions
(`store_messages` in batches, the claim and the send results recorded as the sender does): 90 days
of traffic to 20 credentials in 5 sandboxes, numbers texting about ten times each (profiles about
a tenth of the messages), consent keywords, custom keywords and near misses among free text, a
default reply on half the credentials (replies sent). Each is built once and cached under
--cache (default /tmp/smsdesk-scale), so a rerun measures without building again.

Per size, one JSON line:
- views: the real TUI (SmsDeskApp, headless) from start to its first screen of rows, for the
  log, Profiles and Review, and each log and Profiles filter from applying it to its first
  screen; quiet, then
  live (another process commits one message a second); warm cache (a quiet pass first);
- claim: the outbox claim (CLAIM_LIMIT) over a backlog of 10,000 queued replies, and the drain
  (claim + record, until the backlog is gone), in a transaction that is rolled back;
- claim_read_ms_before_schema_16: the claim's read through the plan it had before (baseline);
- ingest_with_backlog: single-message commits in process, alone (as --no-send) and with the
  sender's claim and record jobs among them, one after the other as serve's writer runs them,
  while a backlog drains (200 ms per round of requests), paced as serve paces the sender
  (engine/sender_pacing.py) and unpaced (the baseline), five alternated rounds of 1 s (medians),
  on a copy: the issue's "within 20% of --no-send", without HTTP;
- export: `smsdesk export messages` rows/s and peak memory beside `sqlite3 -json` of the same
  query (the sqlite3 shell if installed; else Python's sqlite3 with json.dumps, and it says so);
- verify: `smsdesk consent verify` seconds and peak memory; file size;
- the impact preview (F6) of one credential's 30 days, beside the read it had before.

Usage: python bench/scale.py [--sizes 100000,1000000] [--cache DIR] [--skip-live] [--build-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsdesk.domain.credential import Credential  # noqa: E402
from smsdesk.engine.outbox_sender import CLAIM_LIMIT, MESSAGES_PER_REQUEST  # noqa: E402
from smsdesk.engine.sender_pacing import SenderPacing  # noqa: E402
from smsdesk.simulator.sample_data import club_credential, make_db, shop_credential  # noqa: E402
from smsdesk.store.db import connect, connect_reader, transaction, utcnow  # noqa: E402
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages  # noqa: E402
from smsdesk.store.message_search import index_new_messages  # noqa: E402
from smsdesk.store.outbox import _HEADS, SendOutcome, claim_due, record_outcomes  # noqa: E402
from smsdesk.store.queries import MessageFilter  # noqa: E402

CREDENTIALS = 20
DAYS = 90
CHUNK = 5000
BACKLOG = 10_000
FREE_TEXT = ("hello there", "what time do you open", "is the offer still on", "thanks!", "where is my order",
             "can I change my booking", "see you tomorrow", "great service", "how much is delivery", "ok")
WORDS = ("apple", "river", "candle", "orbit", "velvet", "maple", "quartz", "harbor", "pepper", "lantern")
END = datetime(2026, 12, 1, tzinfo=UTC)
BASELINE_SQL = ("SELECT m.id, m.message_id, m.received_at, m.credential, m.sandbox, m.from_number, m.to_number, "
                "m.text, m.action, m.keyword, m.consent_before, m.consent_after, o.text, o.status, o.last_error "
                "FROM messages m LEFT JOIN outbox o ON o.id = m.reply_id ORDER BY m.id")
PROFILE_FILTERS = {"consent:n": {"sandbox": "", "consent": "n", "attribute": "", "number": ""},
                   "attr:DISCOUNT": {"sandbox": "", "consent": None, "attribute": "DISCOUNT", "number": ""}}
FILTERS = {"action:opt-out": MessageFilter(action="opt-out"), "action:review": MessageFilter(action="review"),
           "cred:programme 07": MessageFilter(credential="programme 07"),
           "num:41790012": MessageFilter(number="41790012"), "text:quartz": MessageFilter(text="quartz")}


def credentials() -> list[Credential]:
    creds = []
    for i in range(CREDENTIALS):
        make = shop_credential if i % 2 == 0 else club_credential
        creds.append(make(name=f"Programme {i:02d}", sandbox=f"sandbox-{i % 5}", api_key=f"key-{i:06d}",
                          inbound_number=f"4474917000{i:02d}", fuzzy_opt_out="review" if i % 4 == 0 else "off",
                          inbound_keywords=["DISCOUNT"], default_reply_message="Thanks!" if i % 2 == 0 else ""))
    return creds


def text_for(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "STOP"
    if roll < 0.07:
        return "START"
    if roll < 0.08:
        return "HELP"
    if roll < 0.10:
        return "DISCOUNT"
    if roll < 0.102:
        return "STPO"  # a near miss: reviewed where fuzzy opt-out is review
    return f"{rng.choice(FREE_TEXT)} {rng.choice(WORDS)}"


def sent(claimed: list[tuple]) -> list[tuple]:
    """What the sender records for replies Infobip accepted."""
    return [tuple(SendOutcome(row[0], "sent", f"ib-{row[0]}", "PENDING")) for row in claimed]


def build(path: Path, size: int) -> float:
    """The database of `size` messages, through store_messages and the sender's own jobs."""
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink()
    make_db(tmp, *credentials())
    rng = random.Random(size)
    numbers = max(100, size // 10)
    db = connect(tmp)
    db.conn.execute("PRAGMA synchronous = OFF")
    routes = RouteTable()
    for first in range(0, size, CHUNK):
        at = END - timedelta(days=DAYS) + timedelta(seconds=DAYS * 86400 * first / size)
        batch = []
        for i in range(first, min(first + CHUNK, size)):
            n = rng.randrange(numbers)
            received = (at + timedelta(milliseconds=(i - first) * 50)).isoformat(timespec="milliseconds")
            batch.append(InboundMessage(f"scale-{size}-{i}", f"+4179{n:08d}", f"+4474917000{n % CREDENTIALS:02d}",
                                        text_for(rng), received))
        with transaction(db) as conn:
            store_messages(conn, routes, batch, arrived_at=batch[-1].received_at)
            while claimed := claim_due(conn, 5000, time.time() + 1):
                record_outcomes(conn, sent(claimed))
    with transaction(db) as conn:  # as serve's indexer would: the log's search index holds every message
        while index_new_messages(conn, 50_000):
            pass
    db.conn.execute("PRAGMA optimize")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    tmp.rename(path)
    return time.perf_counter() - started


# ---- the TUI, headless --------------------------------------------------------------------------

async def _until(pilot: Any, ready: Any, limit: float = 120.0) -> float:
    started = time.perf_counter()
    while not ready():
        if time.perf_counter() - started > limit:
            return float("inf")
        await pilot.pause(0.01)
    return time.perf_counter() - started


async def _view(path: Path, mode: str, out: dict[str, float]) -> None:
    from textual.widgets import DataTable

    from smsdesk.tui.app import SmsDeskApp
    from smsdesk.tui.widgets.message_log import MessageLog

    started = time.perf_counter()
    app = SmsDeskApp(path, initial_mode=mode, poll_seconds=0.25)
    async with app.run_test(size=(120, 40)) as pilot:
        if mode != "log":
            screen, table = app.screen, app.screen.query_one(DataTable)
            await _until(pilot, lambda: table.row_count > 0)
            out[mode] = time.perf_counter() - started
            if mode == "profiles":  # the segment filters: from the filter to its first screen
                for name, filters in PROFILE_FILTERS.items():
                    # Until the first screen of this filter is shown (live, a commit a second
                    # starts the next read at once: "no read in flight" may never be seen).
                    shows = screen.shows
                    screen.filters = dict(filters)
                    screen.action_reload()
                    out[f"profiles {name}"] = await _until(
                        pilot, lambda: screen.shows > shows)  # noqa: B023  (only a read of the filter shown is shown)
            return
        log = app.screen.query_one(MessageLog)
        await _until(pilot, lambda: log.loaded)
        out[mode] = time.perf_counter() - started
        for name, filters in FILTERS.items():
            log.set_filters(filters)
            out[f"log {name}"] = await _until(pilot, lambda: log.loaded)
        log.set_filters(MessageFilter())
        await _until(pilot, lambda: log.loaded)
        log.list_move(log.total - 1)  # End
        out["log End"] = await _until(pilot, lambda: log.cursor_row is not None)


async def first_screens(path: Path) -> dict[str, float]:
    """Seconds from start to the first screen of rows, per view, and per log filter."""
    out: dict[str, float] = {}
    for mode in ("log", "profiles", "review"):
        await _view(path, mode, out)
    return {k: round(v, 3) for k, v in out.items()}


COMMITTER = """
import sys, time
from smsdesk.store.db import connect, transaction, utcnow
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
db = connect(sys.argv[1]); routes = RouteTable(); i = 0
while True:
    i += 1
    with transaction(db) as conn:
        store_messages(conn, routes, [InboundMessage(f"live-{time.time_ns()}", "+41791234567",
                                                     "+447491700003", "hello live", utcnow())])
    time.sleep(1)
"""


def views(path: Path, live: bool) -> dict[str, float]:
    committer = subprocess.Popen([sys.executable, "-c", COMMITTER, str(path)]) if live else None
    try:
        return asyncio.run(first_screens(path))
    finally:
        if committer is not None:
            committer.terminate()
            committer.wait()


# ---- the sender -----------------------------------------------------------------------------------

def queue_backlog(conn: sqlite3.Connection, size: int, count: int) -> None:
    """`count` free texts to credentials with a default reply, from numbers that have not opted out."""
    rng = random.Random(7)
    batch = [InboundMessage(f"backlog-{size}-{time.time_ns()}-{i}", f"+4178{i:08d}", f"+4474917000{(i * 2) % 20:02d}",
                            "hello backlog", utcnow()) for i in range(count)]
    rng.shuffle(batch)
    store_messages(conn, RouteTable(), batch)


# The claim as it read before schema 16 (same SELECT, as a baseline in the same run): due replies
# from the (status, next_attempt_at) index sorted by id, and each line's earlier unfinished reply
# looked up among every reply the number ever got (`+p.status` keeps the partial index out).
OLD_HEADS = _HEADS.replace("INDEXED BY outbox_queued", "INDEXED BY outbox_pending").replace(
    "p.status IN", "+p.status IN")


def sender(path: Path, size: int) -> dict[str, float]:
    db = connect(path)
    try:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        queue_backlog(conn, size, BACKLOG)
        due = time.time() + 1
        started = time.perf_counter()
        conn.execute(OLD_HEADS, (due, CLAIM_LIMIT)).fetchall()
        old_read = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(_HEADS, (due, CLAIM_LIMIT)).fetchall()
        read = time.perf_counter() - started
        started = time.perf_counter()
        first = claim_due(conn, CLAIM_LIMIT, due)
        claim = time.perf_counter() - started
        drained, started = len(first), time.perf_counter()
        record_outcomes(conn, sent(first))
        while claimed := claim_due(conn, CLAIM_LIMIT, time.time() + 1):
            record_outcomes(conn, sent(claimed))
            drained += len(claimed)
        seconds = time.perf_counter() - started
        conn.execute("ROLLBACK")
    finally:
        db.close()
    return {"claim_ms": round(claim * 1000, 1), "claim_read_ms": round(read * 1000, 1),
            "claim_read_ms_before_schema_16": round(old_read * 1000, 1),
            "drain_per_s": round(drained / seconds), "drained": drained}


def ingest_with_backlog(path: Path, size: int, copy: Path, seconds: float = 1.0, rounds: int = 5) -> dict[str, float]:
    """Single-message commits (synchronous FULL) for `seconds`, as serve's writer runs its jobs one
    after the other: alone (as `serve --no-send`), and with the sender's jobs among them while a
    backlog drains (a claim of CLAIM_LIMIT, its requests out for 200 ms as bench/send.py's
    simulated Infobip, then the record of their results): paced as serve paces them
    (engine/sender_pacing.py: the sender's share of the writer while webhooks arrive), and, as the
    baseline, unpaced (each claim as soon as the last round is recorded). Alternated `rounds`
    times (medians), on a copy."""
    shutil.copyfile(path, copy)
    db = connect(copy)
    routes = RouteTable()
    db.conn.execute("PRAGMA synchronous = FULL")

    def ingest(tag: str, sending: bool, paced: bool = True) -> tuple[float, int]:
        pacing = SenderPacing() if paced else SenderPacing(share=1.0)
        count, drained, started = 0, 0, time.perf_counter()
        in_flight: list[tuple] | None = None
        answer_at = 0.0

        def sender_job(func: Any, *args: Any) -> Any:
            job_started = time.monotonic()
            with transaction(db) as conn:
                result = func(conn, *args)
            pacing.note_write(time.monotonic() - job_started)
            return result

        while time.perf_counter() - started < seconds:
            pacing.note_inbound()
            with transaction(db) as conn:
                store_messages(conn, routes, [InboundMessage(f"{tag}-{count}-{time.time_ns()}", f"+4177{count:08d}",
                                                             "+447491700001", "hello", utcnow())])
            count += 1
            if not sending:
                continue
            if in_flight is None and pacing.delay() <= 0:
                pacing.start_round()
                in_flight = sender_job(claim_due, pacing.claim_size(CLAIM_LIMIT, MESSAGES_PER_REQUEST), time.time())
                answer_at = time.perf_counter() + 0.2
            elif in_flight is not None and time.perf_counter() >= answer_at:
                sender_job(record_outcomes, sent(in_flight))
                drained += len(in_flight)
                in_flight = None
        return count / (time.perf_counter() - started), drained

    try:
        with transaction(db) as conn:
            queue_backlog(conn, size, 3 * BACKLOG)  # enough for every round of draining
        alone_rates, paced_rates, unpaced_rates, paced_drained, unpaced_drained = [], [], [], 0, 0
        for round_number in range(rounds):  # alternated: this machine's disk drifts within a minute
            alone_rates.append(ingest(f"alone-{round_number}", sending=False)[0])
            rate, replies = ingest(f"paced-{round_number}", sending=True)
            paced_rates.append(rate)
            paced_drained += replies
            rate, replies = ingest(f"unpaced-{round_number}", sending=True, paced=False)
            unpaced_rates.append(rate)
            unpaced_drained += replies
        alone, paced, unpaced = (statistics.median(rates) for rates in (alone_rates, paced_rates, unpaced_rates))
    finally:
        db.close()
        for leftover in copy.parent.glob(copy.name + "*"):
            leftover.unlink()
    return {"no_send_msg_per_s": round(alone), "draining_msg_per_s": round(paced), "ratio": round(paced / alone, 2),
            "drain_replies_per_s": round(paced_drained / (rounds * seconds)),
            "unpaced_msg_per_s": round(unpaced), "unpaced_ratio": round(unpaced / alone, 2),
            "unpaced_drain_replies_per_s": round(unpaced_drained / (rounds * seconds)), "rounds": rounds}


# ---- exports and verify (child processes: their own peak memory) ---------------------------------

PEAK = """
import sys
from smsdesk.cli.main import main
sys.argv = ["smsdesk", *sys.argv[1:]]
try:
    main()
finally:  # VmHWM: this process's own peak (ru_maxrss keeps the parent's across fork and exec)
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    print("PEAK_KB", peak, file=sys.stderr)
"""

PY_BASELINE = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1]); out = sys.stdout
cursor = conn.execute(sys.argv[2]); names = [d[0] for d in cursor.description]
for row in cursor:
    out.write(json.dumps(dict(zip(names, row))) + "\\n")
"""


def timed(args: list[str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    seconds = time.perf_counter() - started
    peak = next((int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB")), 0)
    return seconds, peak // 1024, done.stderr


def exports(path: Path, rows: int) -> dict[str, Any]:
    ours, peak, _ = timed([sys.executable, "-c", PEAK, "--db", str(path), "export", "messages"])
    shell = shutil.which("sqlite3")
    if shell:
        base, _, _ = timed([shell, "-json", str(path), BASELINE_SQL])
        kind = "sqlite3 -json"
    else:
        base, _, _ = timed([sys.executable, "-c", PY_BASELINE, str(path), BASELINE_SQL])
        kind = "python sqlite3 + json.dumps (no sqlite3 shell installed)"
    verify, verify_peak, _ = timed([sys.executable, "-c", PEAK, "--db", str(path), "consent", "verify"])
    return {"export_rows_per_s": round(rows / ours), "export_peak_mb": peak, "baseline": kind,
            "baseline_rows_per_s": round(rows / base), "export_vs_baseline": round(ours / base, 2),
            "verify_s": round(verify, 2), "verify_peak_mb": verify_peak}


def impact(path: Path) -> dict[str, float]:
    """The edit form's impact preview (F6) of one credential's last 30 days, warm, as the TUI reads
    it; beside the read it had before (the same WHERE, without the key range found by bisection)."""
    from smsdesk.store.credentials import find_credential_by_id
    from smsdesk.store.queries import impact_preview

    conn = connect_reader(path)
    try:
        credential = find_credential_by_id(conn, 8)
        assert credential is not None
        fields = credential.model_dump(exclude={"id", "version", "created_at", "updated_at"})
        edited = Credential.model_validate({**fields, "fuzzy_opt_out": "review"})
        since = (END - timedelta(days=30)).isoformat(timespec="milliseconds")
        timings = {}
        for name, run in (
                ("impact_preview_s", lambda: impact_preview(conn, 8, edited, now=END)),
                ("impact_read_before_s", lambda: conn.execute(
                    "SELECT text, consent_before, action, keyword FROM messages WHERE credential_id = ? "
                    "AND received_at >= ?", (8, since)).fetchall())):
            run()  # warm
            started = time.perf_counter()
            run()
            timings[name] = round(time.perf_counter() - started, 3)
        return timings
    finally:
        conn.close()


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("messages", "outbox", "profiles", "consent_ledger", "review_queue")}
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--cache", default="/tmp/smsdesk-scale")
    parser.add_argument("--skip-live", action="store_true", help="quiet views only")
    parser.add_argument("--build-only", action="store_true", help="build (and cache) the databases, measure nothing")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        path = cache / f"scale-{size}.db"
        result: dict[str, Any] = {"bench": "scale", "messages": size, "cpus": os.cpu_count()}
        if not path.exists():
            result["build_s"] = round(build(path, size), 1)
        if args.build_only:
            print(json.dumps(result), flush=True)
            continue
        result["rows"] = counts(path)
        result["file_mb"] = round(path.stat().st_size / 2**20)
        views(path, live=False)  # warms the cache
        result["quiet_s"] = views(path, live=False)
        if not args.skip_live:
            result["live_s"] = views(path, live=True)
        result.update(impact(path))
        result["sender"] = sender(path, size)
        result["ingest_with_backlog"] = ingest_with_backlog(path, size, cache / f"copy-{size}.db")
        result.update(exports(path, result["rows"]["messages"]))
        result["peak_rss_mb_bench"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
