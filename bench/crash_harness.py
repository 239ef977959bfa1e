"""Kill `smsdesk serve` with SIGKILL while it is under load, restart it, and account for every message.

Used by tests/test_crash.py (a short run) and bench/soak.py (a long one). The load posts webhooks
of `batch` messages; a message counts as acknowledged only when the server answered 200. A
webhook that got no 200 (refused connection, 503, timeout) is posted again, unchanged, until it
gets one, as Infobip redelivers: so a webhook stored just before a kill, whose answer was lost,
comes back as a duplicate. The messages come from a pool of numbers that text hello, HELP and
STOP in random order, and the run checks:
- every acknowledged message is stored once, and once the load stops every message posted is
  answered 200 in the end (`never_answered`);
- every acknowledged STOP did its whole job: the message is an opt-out, the ledger holds it (or,
  for a STOP older than the consent it found, the newer STOP's entry, stored before it), the
  number's consent is `n` at the end (the load never opts back in), and exactly one confirmation
  was queued for it and went out (`stops_not_applied`, `confirmations_not_one`);
- a redelivered message changed nothing: no message has two ledger entries (`ledger_twice`);
- nothing but the opt-out confirmation and HELP answers reaches a number after its opt-out
  confirmation went out (`replies_after_opt_out`).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.processes import free_port, wait_healthy
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.server import SimulatorThread
from smsdesk.simulator.state import SimulatorState

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CrashReport:
    posted: int = 0
    acknowledged: int = 0
    stored: int = 0
    missing_acknowledged: int = 0
    duplicate_rows: int = 0
    replies_queued: int = 0
    replies_sent: int = 0
    replies_unsent: int = 0  # neither sent nor cancelled
    replies_cancelled: int = 0  # by an opt-out that came after them
    replies_sent_twice: int = 0  # same messageId reaching Infobip again after a kill: at-least-once
    replies_after_opt_out: int = 0  # anything but the confirmation or HELP after an opt-out went out
    redelivered: int = 0  # messages posted again after a webhook got no 200
    stops_acknowledged: int = 0
    stops_not_applied: int = 0  # not an opt-out, not in the ledger, or the number not at consent n
    confirmations_not_one: int = 0  # acknowledged STOPs without exactly one sent confirmation
    ledger_twice: int = 0  # messages with more than one ledger entry (a redelivery that counted)
    never_answered: int = 0  # still without a 200 after 30 s of redelivery once the load stopped
    kills: int = 0
    integrity: str = ""
    acked_ids: set[str] = field(default_factory=set, repr=False)

    @property
    def mismatches(self) -> int:
        return (self.missing_acknowledged + self.duplicate_rows + self.replies_unsent + self.replies_after_opt_out
                + self.stops_not_applied + self.confirmations_not_one + self.ledger_twice + self.never_answered
                + (self.integrity != "ok"))

    def as_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "acked_ids"}
        data["mismatches"] = self.mismatches
        return data


class ServeProcess:
    def __init__(self, db_path: Path, port: int) -> None:
        self.db_path = db_path
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        env = dict(os.environ, SMSDESK_DB=str(self.db_path), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smsdesk", "serve", "--insecure-no-auth", "--port", str(self.port),
             "--poll-interval", "60"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(self.url, self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


TEXTS = ("hello", "hello", "HELP", "STOP please")
OPT_OUT_REPLY = "Shop: unsubscribed."
HELP_REPLY = "Shop help: shop.example"


async def _load(url_of: Callable[[], str], report: CrashReport, stop: asyncio.Event, prefix: str, workers: int,
                numbers: int = 2000, batch: int = 1) -> None:
    """`workers` clients posting webhooks of `batch` results each until `stop`; a 200 acknowledges all of them."""
    counter = 0
    rng = random.Random(7)

    def new_webhook() -> list[dict[str, str]]:
        nonlocal counter
        results = []
        for _ in range(batch):
            counter += 1
            received = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{counter % 1000:03d}+0000"
            results.append({"messageId": f"{prefix}-{counter}", "from": f"4179{rng.randrange(numbers):07d}",
                            "to": SHOP_NUMBER, "text": rng.choice(TEXTS), "receivedAt": received})
        return results

    async def answered(client: httpx.AsyncClient, results: list[dict[str, str]]) -> bool:
        """Post one webhook; True when it got 200, which acknowledges every result in it."""
        report.posted += len(results)
        try:
            response = await client.post(url_of() + "/infobip/inbound", json={"results": results}, timeout=5)
        except httpx.HTTPError:
            return False  # the server is down: Infobip retries later
        if response.status_code != 200:
            return False
        report.acknowledged += len(results)
        report.acked_ids.update(result["messageId"] for result in results)
        return True

    async def worker(client: httpx.AsyncClient) -> None:
        unanswered: list[dict[str, str]] = []  # the webhook that got no 200: posted again as it was
        while not stop.is_set():
            if unanswered:
                report.redelivered += len(unanswered)
            results = unanswered or new_webhook()
            unanswered = [] if await answered(client, results) else results
            if unanswered:
                await asyncio.sleep(0.02)
        # Stopped: what is still unanswered is redelivered until it is answered, as Infobip would,
        # so that every message posted is accounted for (stored once, its STOP applied).
        deadline = time.monotonic() + 30
        while unanswered and time.monotonic() < deadline:
            report.redelivered += len(unanswered)
            if await answered(client, unanswered):
                unanswered = []
            else:
                await asyncio.sleep(0.1)
        report.never_answered += len(unanswered)

    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))


def _queued(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')").fetchone()[0])
    finally:
        conn.close()


def replies_after_opt_out(sent: list[tuple[str, str, str]]) -> int:
    """Replies, in the order Infobip got them, that reached a number after its opt-out confirmation
    and are neither another confirmation nor a HELP answer (the load never opts back in)."""
    opted_out: set[str] = set()
    after = 0
    for _, to, text in sent:
        if text == OPT_OUT_REPLY:
            opted_out.add(to)
        elif to in opted_out and text != HELP_REPLY:
            after += 1
    return after


def run_crash_scenario(workdir: Path, *, kills: int = 3, seconds_between: tuple[float, float] = (0.3, 1.2),
                       workers: int = 8, drain_timeout: float = 60, batch: int = 1) -> CrashReport:
    state = SimulatorState(keys={"shop-key-0001"}, record_bodies=False)
    report = CrashReport()
    with SimulatorThread(state) as sim:
        db_path = make_db(workdir / "smsdesk.db", shop_credential(sim.url))
        serve = ServeProcess(db_path, free_port())
        serve.start()
        stop = asyncio.Event()

        async def scenario() -> None:
            load = asyncio.create_task(_load(lambda: serve.url, report, stop, "crash", workers, batch=batch))
            for _ in range(kills):
                await asyncio.sleep(random.uniform(*seconds_between))
                serve.kill()
                report.kills += 1
                await asyncio.to_thread(serve.start)
            await asyncio.sleep(random.uniform(*seconds_between))
            stop.set()
            await load

        try:
            asyncio.run(scenario())
            # Let the restarted server drain the outbox, then account.
            deadline = time.monotonic() + drain_timeout
            while time.monotonic() < deadline and _queued(db_path):
                time.sleep(0.2)
        finally:
            serve.stop()
        conn = sqlite3.connect(db_path)
        stored_ids = [r[0] for r in conn.execute("SELECT message_id FROM messages")]
        report.stored = len(stored_ids)
        report.duplicate_rows = len(stored_ids) - len(set(stored_ids))
        report.missing_acknowledged = len(report.acked_ids - set(stored_ids))
        outbox = dict(conn.execute("SELECT our_message_id, status FROM outbox").fetchall())
        report.replies_queued = len(outbox)
        with state.lock:
            sent = [(m.message_id, m.to, m.text) for m in state.sent]
        sent_ids = [message_id for message_id, _, _ in sent]
        sent_set = set(sent_ids)
        report.replies_sent = len(sent_set & set(outbox))
        report.replies_cancelled = sum(1 for status in outbox.values() if status == "cancelled")
        report.replies_unsent = sum(1 for mid, status in outbox.items()
                                    if mid not in sent_set and status != "cancelled")
        report.replies_sent_twice = len(sent_ids) - len(sent_set)
        report.replies_after_opt_out = replies_after_opt_out(sent)
        account_for_stops(conn, report, set(sent_ids))
        report.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    return report


def account_for_stops(conn: sqlite3.Connection, report: CrashReport, sent_ids: set[str]) -> None:
    """Each acknowledged STOP: an opt-out in the ledger, consent n, one confirmation that went out."""
    stops = conn.execute(
        "SELECT m.id, m.message_id, m.from_number, m.action, "
        # its own entry; or, for a STOP older than the consent it found (it changes nothing), the
        # entry of a newer STOP stored before it
        "(SELECT COUNT(*) FROM consent_ledger l WHERE l.new = 'n' AND (l.message_row_id = m.id OR "
        "(l.sandbox = m.sandbox AND l.number = m.from_number AND l.received_at > m.received_at "
        "AND l.message_row_id < m.id))), "
        "(SELECT c.consent FROM consent c WHERE c.sandbox = m.sandbox AND c.number = m.from_number) "
        "FROM messages m WHERE m.text = 'STOP please'").fetchall()
    confirmations: dict[int, list[str]] = {}
    for row_id, our_id in conn.execute("SELECT message_row_id, our_message_id FROM outbox WHERE kind = 'opt-out'"):
        confirmations.setdefault(row_id, []).append(our_id)
    for row_id, message_id, _, action, in_ledger, consent in stops:
        if message_id not in report.acked_ids:
            continue
        report.stops_acknowledged += 1
        if action != "opt-out" or not in_ledger or consent != "n":
            report.stops_not_applied += 1
        mine = confirmations.get(row_id, [])
        if len(mine) != 1 or mine[0] not in sent_ids:
            report.confirmations_not_one += 1
    report.ledger_twice = conn.execute(
        "SELECT COUNT(*) FROM (SELECT message_row_id FROM consent_ledger WHERE message_row_id IS NOT NULL "
        "GROUP BY message_row_id HAVING COUNT(*) > 1)").fetchone()[0]
