"""Kill `smsdesk serve` with SIGKILL while it is under load, restart it, and account for every message.

Used by tests/system/test_crash.py (a short run) and bench/soak.py (a long one); it lives with the
tests' shared machinery. The load posts webhooks of `batch` messages; a message counts as
acknowledged only when the server answered 200. A webhook that got no 200 (refused connection,
503, timeout) is posted again, unchanged, until it gets one, as Infobip redelivers: so a webhook
stored just before a kill, whose answer was lost, comes
back as a duplicate. The messages come from a pool of numbers that text hello, HELP and
STOP in random order, and the run checks:
- every acknowledged message is stored once, and once the load stops every message posted is
  answered 200 in the end (`never_answered`);
- every acknowledged STOP did its whole job: the message is an opt-out, the ledger holds it (or,
  for a STOP older than the consent it found, the newer STOP's entry, stored before it), the
  number's consent is `n` at the end (the load never opts back in), and exactly one confirmation
  was queued for it and went out, or none for a STOP the rules did not answer (its ledger entry
  `overruled`) (`stops_not_applied`, `confirmations_not_one`);
- a redelivered message changed nothing: no message has two ledger entries (`ledger_twice`);
- nothing but the opt-out confirmation and HELP answers reaches Infobip for a number after its
  opt-out was answered 200 (`replies_after_opt_out`; `replies_during_opt_out_commit` counts those
  between its stored_at and its 200), and `max_send_after_stop_ms` says how long after the
  opt-out's stored_at the latest of them came;
- the consent ledger replays to the consent table (`consent_verify_ok`).

With `operator=True` (bench/soak.py) the run also does what an operator and a real Infobip do
meanwhile: some numbers opt back in (START), half of those STARTs dated in 2099 (a receivedAt
far ahead is decided at arrival), the credential's sandbox is edited back and forth (through the
store and through `smsdesk creds edit`) while Infobip fails for a moment, so that replies wait in
the queue, and now and then Infobip answers late (a kill then finds replies in flight).
The STOP checks then hold for the numbers that never opt in; the others are left to the
replay (`consent_verify_ok`) and the measure of replies after an opt-out, which follows each
number's consent in commit order in the credential's sandbox of the moment.

With `faults=True` (bench/soak.py --faults) Infobip also misbehaves the way the world does, on a
share of the send requests for the whole run (`FAULT_MIX`): it accepts and then loses the answer
(the connection closes), accepts and answers a 200 in a shape it never sends, answers 500, or
accepts and answers late. A send whose answer is lost is asked about in Infobip's message logs
(serve --logs-lag); the run says how many such answers there were (`answers_lost`), how many
replies the logs settled (`unknown_resolved_by_logs`: found there, recorded, not sent again) and
how many were sent twice anyway (`replies_sent_twice`).
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
from datetime import UTC, datetime
from pathlib import Path

import httpx

from smsdesk.domain.credential import Credential
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.credentials import get_credential, update_credential
from smsdesk.store.db import connect
from smsdesk.store.errors import StoreError
from smsdesk.store.outbox import ALWAYS_ALLOWED_KINDS
from tests.support.processes import free_port, wait_healthy

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
    replies_after_opt_out: int = 0  # anything but the confirmation or HELP reaching Infobip after an opt-out's 200
    # the same, in the order Infobip got them: after the number's opt-out confirmation (numbers that
    # never opt in; runs without an operator, whose sandbox edits move numbers between consents);
    # free of the clocks of two threads, so the crash test asserts it
    replies_after_confirmation: int = 0
    replies_after_opt_out_by_edit: int = 0  # of those: after an edit into a sandbox where the number was n
    unreadable_posted: int = 0  # results smsdesk cannot read, beside others (operator runs): kept aside, never a 400
    unreadable_kept: int = 0  # rows in unreadable_inbound at the end (a redelivered one is kept once)
    replies_during_opt_out_commit: int = 0  # such replies after its stored_at but not after its 200
    max_send_after_stop_ms: int = 0  # the latest of either, after the opt-out's stored_at (0: none)
    redelivered: int = 0  # messages posted again after a webhook got no 200
    stops_acknowledged: int = 0
    stops_not_applied: int = 0  # not an opt-out, not in the ledger, or the number not at consent n
    confirmations_not_one: int = 0  # acknowledged STOPs without exactly one sent confirmation (none if not answered)
    ledger_twice: int = 0  # messages with more than one ledger entry (a redelivery that counted)
    never_answered: int = 0  # still without a 200 after 30 s of redelivery once the load stopped
    opt_ins_posted: int = 0  # STARTs (operator runs only), of which
    future_dated_posted: int = 0  # with a receivedAt in 2099
    sandbox_edits: int = 0  # of the credential, while replies waited
    kills: int = 0
    send_requests: int = 0  # POST /sms/3/messages requests Infobip received
    answers_lost: int = 0  # send requests Infobip accepted and then lost the answer of, or answered strangely
    server_errors: int = 0  # send requests answered 500 (faults runs)
    slow_answers: int = 0  # send requests accepted and answered late (faults runs)
    unknown_resolved_by_logs: int = 0  # replies whose fate was unknown that Infobip's logs showed: not sent again
    integrity: str = ""
    consent_verify_ok: bool = True  # smsdesk consent verify on the final file
    acked_ids: set[str] = field(default_factory=set, repr=False)
    acked_at: dict[str, float] = field(default_factory=dict, repr=False)  # messageId: its first 200 (time.time())

    @property
    def mismatches(self) -> int:
        return (self.missing_acknowledged + self.duplicate_rows + self.replies_unsent + self.replies_after_opt_out
                + self.replies_after_confirmation
                + self.stops_not_applied + self.confirmations_not_one + self.ledger_twice + self.never_answered
                + (self.integrity != "ok") + (not self.consent_verify_ok))

    def as_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("acked_ids", "acked_at")}
        data["mismatches"] = self.mismatches
        return data


class ServeProcess:
    def __init__(self, db_path: Path, port: int, logs_lag: float = 1.0) -> None:
        self.db_path = db_path
        self.port = port
        self.logs_lag = logs_lag  # the simulator logs a message at once; a real Infobip later
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        env = dict(os.environ, SMSDESK_DB=str(self.db_path), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smsdesk", "serve", "--insecure-no-auth", "--port", str(self.port),
             "--poll-interval", "60", "--logs-lag", str(self.logs_lag)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
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
# Faults runs: (kind, share of the send requests, options), drawn per request in this order.
FAULT_MIX: tuple[tuple[str, float, dict[str, object]], ...] = (
    ("drop", 0.05, {"process": True}),  # accepted, then the answer is lost
    ("strange", 0.01, {}),  # accepted, then a 200 Infobip never sends
    ("500", 0.03, {}),  # refused: sent again (same messageId)
    ("slow", 0.05, {"process": True, "delay": 0.8}),  # accepted, answered late
)
OPTING_IN_TEXTS = ("hello", "HELP", "STOP please", "START")  # operator runs: every tenth number
SANDBOXES = ("prod", "prod-b")  # the shop's sandbox, edited back and forth in operator runs


async def _load(url_of: Callable[[], str], report: CrashReport, stop: asyncio.Event, prefix: str, workers: int,
                numbers: int = 2000, batch: int = 1, opt_ins: bool = False) -> None:
    """`workers` clients posting webhooks of `batch` results each until `stop`; a 200 acknowledges all of them.
    `opt_ins`: every tenth number may also text START, half of those dated in 2099."""
    counter = 0
    rng = random.Random(7)

    def new_webhook() -> list[dict[str, str]]:
        nonlocal counter
        results = []
        for _ in range(batch):
            counter += 1
            received = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{counter % 1000:03d}+0000"
            number = rng.randrange(numbers)
            text = rng.choice(OPTING_IN_TEXTS if opt_ins and number % 10 == 0 else TEXTS)
            if text == "START":
                report.opt_ins_posted += 1
                if rng.random() < 0.5:  # a phone whose clock is far ahead
                    received = f"2099-01-01T00:00:{counter % 60:02d}.{counter % 1000:03d}+0000"
                    report.future_dated_posted += 1
            results.append({"messageId": f"{prefix}-{counter}", "from": f"4179{number:07d}",
                            "to": SHOP_NUMBER, "text": text, "receivedAt": received})
            if opt_ins and rng.random() < 0.02:  # a neighbour smsdesk cannot read: it must hold back nothing
                report.unreadable_posted += 1
                results.append(rng.choice([
                    {"from": f"4179{number:07d}", "to": SHOP_NUMBER, "text": "no messageId", UNREADABLE: 1},
                    {"messageId": f"{prefix}-bad-{counter}", "from": "4179\x1b[2J", "to": SHOP_NUMBER,
                     "text": "a control character in from", UNREADABLE: 1},
                    {"messageId": f"{prefix}-bad-{counter}", "to": SHOP_NUMBER, UNREADABLE: 1},
                ]))
                if rng.random() < 0.5:  # and one whose only fault is its time: stored at its arrival
                    results.append({"messageId": f"{prefix}-time-{counter}", "from": f"4179{number:07d}",
                                    "to": SHOP_NUMBER, "text": "hello", "receivedAt": "2026-12-06 02:03:00 UTC"})
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
        readable = [result for result in results if UNREADABLE not in result]
        report.acknowledged += len(readable)
        report.acked_ids.update(result["messageId"] for result in readable)
        now = time.time()
        for result in readable:
            report.acked_at.setdefault(result["messageId"], now)
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
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending', 'unknown')")
                   .fetchone()[0])
    finally:
        conn.close()


def edit_sandbox(db_path: Path, sandbox: str, *, through_cli: bool) -> bool:
    """Set the shop's sandbox as an operator would: `smsdesk creds edit`, or the store's update
    (what the TUI's editor calls). True when it was saved."""
    if through_cli:
        done = subprocess.run([sys.executable, "-m", "smsdesk", "--db", str(db_path), "creds", "edit", "Shop",
                               "--sandbox", sandbox], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              capture_output=True, timeout=60)
        return done.returncode == 0
    db = connect(db_path)
    try:
        current = get_credential(db, "Shop")
        edited = Credential.model_validate(current.to_credential().model_dump(mode="json") | {"sandbox": sandbox})
        update_credential(db, current.id, edited, current.version)
        return True
    except (sqlite3.Error, StoreError):  # a lock held past the busy timeout: the operator tries later
        return False
    finally:
        db.close()


async def _operate(state: SimulatorState, db_path: Path, report: CrashReport, stop: asyncio.Event,
                   edits: list[tuple[str, float]]) -> None:
    """Until `stop`: Infobip fails for a moment (the replies wait, queued with backoff), the
    credential's sandbox is edited meanwhile; then Infobip answers a few requests late (the
    replies claimed behind them wait). `edits` gets each sandbox saved and when its edit
    returned, in order."""
    rng = random.Random(11)
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(1.0, 2.5))
        state.inject("500", None, duration=1.0, path_prefix="/sms/3/messages")
        await asyncio.sleep(0.5)
        sandbox = SANDBOXES[(len(edits) + 1) % len(SANDBOXES)]
        if await asyncio.to_thread(edit_sandbox, db_path, sandbox, through_cli=len(edits) % 2 == 1):
            edits.append((sandbox, time.time()))
            report.sandbox_edits += 1
        await asyncio.sleep(0.7)
        state.inject("slow", 4, delay=rng.uniform(0.2, 0.7), process=True, path_prefix="/sms/3/messages")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class SandboxEdit:
    """The shop's sandbox became `sandbox`: stored (the audit's time, taken just before the
    commit) and certainly committed (when the edit returned to the operator)."""

    sandbox: str
    stored: datetime
    committed: datetime


@dataclass
class LateReplies:
    after_commit: int = 0  # reached Infobip after the opt-out's 200 (or the edit's return): certainly after it
    during_commit: int = 0  # after its stored_at, not after its 200: perhaps before the commit
    latest_ms: int = 0  # the latest of either, after the opt-out's stored_at
    after_edit: int = 0  # of after_commit: those the later of the two was a sandbox edit, not a STOP


def replies_after_opt_out(conn: sqlite3.Connection, sent: list[tuple[str, str]], edits: list[SandboxEdit],
                          acked_at: dict[str, float]) -> LateReplies:
    """Replies other than the opt-out confirmation and HELP answers that reached Infobip (the
    simulator's `sent_at`, taken on arrival) while their number was opted out in the credential's
    sandbox of that moment, and how late the latest was.

    Opted out: the number's last consent change (the ledger's `changed` and `expired` entries, in
    commit order) stored before the arrival is `n`, in the sandbox the credential had then. It
    counts from the later of that opt-out and the edit that brought the credential into the
    sandbox, each at two moments: stored (the message's stored_at, the audit's time; taken just
    before the commit) and certainly committed (the webhook's first 200, the edit's return). A
    reply between the two may have left before the commit: counted apart. The simulator runs in
    this busy process, so its `sent_at` can lag the request by some milliseconds: the measure
    errs on the strict side."""
    replies = {our_id: (kind, number) for our_id, kind, number in
               conn.execute("SELECT our_message_id, kind, to_number FROM outbox")}
    changes: dict[tuple[str, str], list[tuple[datetime, datetime, str]]] = {}
    for sandbox, number, new, stored_at, message_id in conn.execute(
            "SELECT l.sandbox, l.number, l.new, COALESCE(m.stored_at, l.at), m.message_id FROM consent_ledger l "
            "LEFT JOIN messages m ON m.id = l.message_row_id WHERE l.effect IN ('changed', 'expired') ORDER BY l.id"):
        stored = _moment(stored_at)
        committed = _at(acked_at[message_id]) if message_id in acked_at else stored
        changes.setdefault((sandbox, number), []).append((stored, max(stored, committed), new))
    start = datetime.min.replace(tzinfo=UTC)
    history = [SandboxEdit(SANDBOXES[0], start, start), *edits]
    late = LateReplies()
    counted: set[str] = set()
    for our_id, sent_at in sent:
        kind, number = replies.get(our_id, ("", ""))
        if not number or kind in ALWAYS_ALLOWED_KINDS or our_id in counted:
            continue
        arrived = _moment(sent_at)
        edit = next(edit for edit in reversed(history) if edit.stored <= arrived)
        stored = [change for change in changes.get((edit.sandbox, number), []) if change[0] <= arrived]
        if not stored or stored[-1][2] != "n":
            continue
        since, certain = max(edit.stored, stored[-1][0]), max(edit.committed, stored[-1][1])
        if arrived <= since:
            continue  # the same millisecond: not after it
        counted.add(our_id)
        late.latest_ms = max(late.latest_ms, int((arrived - since).total_seconds() * 1000))
        if arrived > certain:
            late.after_commit += 1
            late.after_edit += edit.committed > stored[-1][1]  # the edit moved it into the opted-out sandbox
        else:
            late.during_commit += 1
    return late


UNREADABLE = "smsdeskSoakUnreadable"  # marks a result the load knows is unreadable (an extra field, ignored)


def replies_after_confirmation(conn: sqlite3.Connection, sent: list[str]) -> int:
    """Replies, in the order Infobip got them, that reached a number after its opt-out confirmation
    and are neither another confirmation nor a HELP answer; numbers that ever opted (back) in are
    left out (their later replies may be allowed)."""
    replies = {our_id: (kind, number) for our_id, kind, number in
               conn.execute("SELECT our_message_id, kind, to_number FROM outbox")}
    opted_in = {number for (number,) in conn.execute(
        "SELECT DISTINCT number FROM consent_ledger WHERE new IN ('y', 'p') AND effect = 'changed'")}
    confirmed: set[str] = set()
    late = 0
    for our_id in sent:
        kind, number = replies.get(our_id, ("", ""))
        if not number or number in opted_in:
            continue
        if kind == "opt-out":
            confirmed.add(number)
        elif kind not in ALWAYS_ALLOWED_KINDS and number in confirmed:
            late += 1
    return late


def run_crash_scenario(workdir: Path, *, kills: int = 3, seconds_between: tuple[float, float] = (0.3, 1.2),
                       workers: int = 8, drain_timeout: float = 60, batch: int = 1,
                       operator: bool = False, faults: bool = False, logs_lag: float = 1.0) -> CrashReport:
    state = SimulatorState(keys={"shop-key-0001"}, record_bodies=False)
    report = CrashReport()
    edits: list[tuple[str, float]] = []
    mix = [state.inject(kind, probability=share, path_prefix="/sms/3/messages", **options)  # type: ignore[arg-type]
           for kind, share, options in FAULT_MIX] if faults else []
    with SimulatorThread(state) as sim:
        db_path = make_db(workdir / "smsdesk.db", shop_credential(sim.url, sandbox=SANDBOXES[0]))
        serve = ServeProcess(db_path, free_port(), logs_lag)
        serve.start()
        stop = asyncio.Event()

        async def scenario() -> None:
            load = asyncio.create_task(_load(lambda: serve.url, report, stop, "crash", workers, batch=batch,
                                             opt_ins=operator))
            operating = asyncio.create_task(_operate(state, db_path, report, stop, edits)) if operator else None
            for _ in range(kills):
                await asyncio.sleep(random.uniform(*seconds_between))
                serve.kill()
                report.kills += 1
                await asyncio.to_thread(serve.start)
            await asyncio.sleep(random.uniform(*seconds_between))
            stop.set()
            await load
            if operating is not None:
                await operating
            state.clear_faults()

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
            sent = [(m.message_id, m.sent_at) for m in state.sent]
        sent_ids = [message_id for message_id, _ in sent]
        sent_set = set(sent_ids)
        report.replies_sent = len(sent_set & set(outbox))
        report.replies_cancelled = sum(1 for status in outbox.values() if status == "cancelled")
        report.replies_unsent = sum(1 for mid, status in outbox.items()
                                    if mid not in sent_set and status != "cancelled")
        report.replies_sent_twice = len(sent_ids) - len(sent_set)
        fired = {fault.kind.value: fault.fired for fault in mix}
        report.send_requests = state.count_requests("/sms/3/messages", "POST")
        report.answers_lost = fired.get("drop", 0) + fired.get("strange", 0)
        report.server_errors, report.slow_answers = fired.get("500", 0), fired.get("slow", 0)
        with state.lock:
            report.unknown_resolved_by_logs = len(state.logs_found & set(outbox))
        edited_at = [_moment(at) for (at,) in conn.execute(
            "SELECT at FROM audit WHERE action = 'update' AND fields LIKE '%\"sandbox\"%' ORDER BY id")]
        assert len(edited_at) == len(edits), (edited_at, edits)  # each edit saved is in the audit, in order
        late = replies_after_opt_out(conn, sent, [SandboxEdit(sandbox, stored, _at(returned)) for stored, (
            sandbox, returned) in zip(edited_at, edits, strict=True)], report.acked_at)
        report.replies_after_opt_out = late.after_commit
        if not operator:  # with sandbox edits a number opted out in one sandbox may be texted in another
            report.replies_after_confirmation = replies_after_confirmation(conn, [our_id for our_id, _ in sent])
        report.replies_during_opt_out_commit = late.during_commit
        report.replies_after_opt_out_by_edit = late.after_edit
        report.max_send_after_stop_ms = late.latest_ms
        account_for_stops(conn, report, set(sent_ids))
        report.unreadable_kept = conn.execute("SELECT COUNT(*) FROM unreadable_inbound").fetchone()[0]
        report.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        report.consent_verify_ok = verify_consent(conn).ok
        conn.close()
    return report


def account_for_stops(conn: sqlite3.Connection, report: CrashReport, sent_ids: set[str]) -> None:
    """Each acknowledged STOP: an opt-out in the ledger (its own entry, or a newer STOP's stored
    before it), consent n, and one confirmation that went out when its entry says it was answered
    (`changed`, `reaffirmed`), none otherwise (`overruled`: domain/consent_decider.py answers
    nothing to it)."""
    stops = conn.execute(
        "SELECT m.id, m.message_id, m.from_number, m.action, "
        # its own entry, and whether it was answered (an older STOP's entry is `overruled`)
        "(SELECT COUNT(*) FROM consent_ledger l WHERE l.new = 'n' AND l.message_row_id = m.id), "
        "(SELECT COUNT(*) FROM consent_ledger l WHERE l.new = 'n' AND l.message_row_id = m.id "
        "AND l.effect IN ('changed', 'reaffirmed')), "
        # or, for a STOP older than the consent it found (it changes nothing), the entry of a
        # newer STOP stored before it
        "(SELECT COUNT(*) FROM consent_ledger l WHERE l.new = 'n' AND l.sandbox = m.sandbox "
        "AND l.number = m.from_number AND l.received_at > m.received_at AND l.message_row_id < m.id), "
        "(SELECT c.consent FROM consent c WHERE c.sandbox = m.sandbox AND c.number = m.from_number) "
        # a number that also opts in (operator runs) may have its STOP overruled by a newer START:
        # the replay (consent_verify_ok) checks those
        "FROM messages m WHERE m.text = 'STOP please' AND NOT EXISTS (SELECT 1 FROM messages i "
        "WHERE i.from_number = m.from_number AND i.action = 'opt-in')").fetchall()
    confirmations: dict[int, list[str]] = {}
    for row_id, our_id in conn.execute("SELECT message_row_id, our_message_id FROM outbox WHERE kind = 'opt-out'"):
        confirmations.setdefault(row_id, []).append(our_id)
    for row_id, message_id, _, action, own_entry, answered, newer_entry, consent in stops:
        if message_id not in report.acked_ids:
            continue
        report.stops_acknowledged += 1
        if action != "opt-out" or not (own_entry or newer_entry) or consent != "n":
            report.stops_not_applied += 1
        mine = confirmations.get(row_id, [])
        if (len(mine) != 1 or mine[0] not in sent_ids) if answered else mine:
            report.confirmations_not_one += 1
    report.ledger_twice = conn.execute(
        "SELECT COUNT(*) FROM (SELECT message_row_id FROM consent_ledger WHERE message_row_id IS NOT NULL "
        "GROUP BY message_row_id HAVING COUNT(*) > 1)").fetchone()[0]
