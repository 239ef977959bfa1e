"""Every outcome Infobip leaves unknown is asked about, never guessed (issue 24, points 1 and 5).

A send is accepted, refused or unknown. A request whose answer was lost or cannot be read is
never sent again as it is: its replies become `unknown`, and the sender asks Infobip's message
logs about them while it runs, after `logs_lag`, then 2x and 4x as long after; those the logs show
with one of Infobip's statuses are recorded, and only those still missing after the last look are
sent again, with the same messageId. The answer journal writes whole records that check
themselves and name each reply by row id and messageId. Real SQLite file, the simulator over
loopback, its answers held by gates the tests release.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from smsdesk.engine import answer_journal
from smsdesk.engine.answer_journal import AnswerJournal, encode
from smsdesk.engine.outbox_sender import ASKING_THE_LOGS, OutboxSender
from smsdesk.infobip.client import LOGS_PATH, SEND_PATH, OutboundSms
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import Gate, SimulatorState
from smsdesk.store.credentials import get_credential, update_credential
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.outbox import SendOutcome, claim_due
from smsdesk.writer.thread_writer import GroupCommitWriter
from tests.support.serve import running_serve, wait_until
from tests.support.store import rows, store_directly

SHOP_KEY = "shop-key-0001"
NEW_KEY = "shop-key-rotated-0002"
IN_FLIGHT = "('queued', 'sending', 'unknown')"


@pytest.fixture
def sim():
    with SimulatorThread(SimulatorState(keys={SHOP_KEY, NEW_KEY})) as simulator:
        yield simulator


def store(db: Path, *messages: tuple[str, str]) -> None:
    """Store (from, text) messages to the shop's number, one transaction, one reply each."""
    store_directly(db, [InboundMessage(f"m-{time.monotonic_ns()}-{i}", number, "+" + SHOP_NUMBER, text,
                                       f"2026-11-26T10:00:{i % 60:02d}.000+00:00")
                        for i, (number, text) in enumerate(messages)])


def claim(db: Path) -> list[tuple]:
    """What a sender that then died claimed: `sending`, the request perhaps at Infobip."""
    handle = connect(db)
    try:
        with transaction(handle) as conn:
            return claim_due(conn, 1000)
    finally:
        handle.close()


def sent_twice(sim: SimulatorThread) -> list[str]:
    with sim.state.lock:
        return [our_id for our_id, count in Counter(m.message_id for m in sim.state.sent).items() if count > 1]


def settled(db: Path) -> bool:
    return rows(db, f"SELECT COUNT(*) FROM outbox WHERE status IN {IN_FLIGHT}") == [(0,)]


async def rounds_until_settled(sender: OutboxSender, db: Path, timeout: float = 20.0) -> int:
    """Run the sender's rounds as `serve` does until no reply is queued or in flight."""
    deadline = time.monotonic() + timeout
    count = 0
    while not await asyncio.to_thread(settled, db):
        assert time.monotonic() < deadline, rows(db, "SELECT id, status, last_error FROM outbox")
        await sender.run_once()
        count += 1
        await asyncio.sleep(0.02)
    return count


class Sender:
    """An OutboxSender on its own writer, as serve runs it, for a test's rounds."""

    def __init__(self, db: Path, **options: object) -> None:
        self.writer = GroupCommitWriter(db).start()
        self.sender = OutboxSender(db, self.writer, **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> OutboxSender:
        return self.sender

    async def __aexit__(self, *exc: object) -> None:
        await self.sender.aclose()
        self.writer.stop()


# --------------------------------------------------------------------------- lost answers


def test_one_lost_answer_over_a_backlog_sends_nothing_twice(tmp_path: Path, sim: SimulatorThread) -> None:
    """50 replies go in one request; Infobip accepts it and the connection closes before its
    answer. Nothing is sent again at once: the replies are `unknown` (shown so, with the reason),
    the logs are asked after the lag, and every reply ends `sent`, each sent exactly once."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179240{i:04d}", "hello") for i in range(50)])
    answer, logs = Gate(), Gate()
    sim.state.inject("drop", 1, gate=answer, path_prefix=SEND_PATH)  # accepted, then the answer is lost
    sim.state.inject("slow", 1, gate=logs, path_prefix=LOGS_PATH)  # the first look waits for the test
    with running_serve(db, run_outbox=True, logs_lag=0.2):
        assert answer.arrived.wait(20)
        assert len(sim.state.sent) == 50 and rows(db, "SELECT DISTINCT status FROM outbox") == [("sending",)]
        answer.release()
        assert logs.arrived.wait(20)  # the first look, the lag after the answer was lost
        shown = rows(db, "SELECT status, last_error FROM outbox")
        assert {status for status, _ in shown} == {"unknown"}, shown
        assert all(error.startswith("answer lost (dropped: connection dropped") and error.endswith(ASKING_THE_LOGS)
                   for _, error in shown), shown[0]
        logs.release()
        assert wait_until(lambda: settled(db), 20), rows(db, "SELECT status, last_error FROM outbox LIMIT 3")
    assert sent_twice(sim) == [] and len(sim.state.sent) == 50
    assert rows(db, "SELECT status, COUNT(*), MIN(infobip_message_id = our_message_id) FROM outbox GROUP BY 1") == [
        ("sent", 50, 1)]
    assert sim.state.count_requests(SEND_PATH) == 1 and len(sim.state.logs_found) == 50


@pytest.mark.parametrize("body", [0, 1, 3], ids=["messages not a list", "an HTML page", "a list"])
def test_a_strange_200_does_not_block_the_line(tmp_path: Path, sim: SimulatorThread, body: int) -> None:
    """Infobip answers the first request 200 in a shape it never sends: its replies are unknown,
    the logs find them, and each number's next reply (behind them in its line) goes after them."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    numbers = [f"+4179241{i:04d}" for i in range(5)]
    store(db, *[(number, "hello") for number in numbers])
    store(db, *[(number, "HELP") for number in numbers])
    sim.state.strange_answers = body
    sim.state.inject("strange", 1, path_prefix=SEND_PATH)
    with running_serve(db, run_outbox=True, logs_lag=0.2):
        assert wait_until(lambda: settled(db), 20), rows(db, "SELECT id, status, last_error FROM outbox")
    assert sent_twice(sim) == [] and len(sim.state.sent) == 10
    assert rows(db, "SELECT DISTINCT status FROM outbox") == [("sent",)]
    first = {our_id for (our_id,) in rows(db, "SELECT our_message_id FROM outbox WHERE id <= 5")}
    assert sim.state.logs_found == first  # resolved by the logs, not sent again
    for number in numbers:
        assert [m.text for m in sim.state.sent if m.to == number[1:]] == [
            shop_credential().default_reply_message, "Shop help: shop.example"]


async def test_a_logs_entry_without_a_status_is_not_proof_the_reply_is_sent_again(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """Replies left in flight; Infobip's logs answer entries for them without a status. That says
    nothing: each look finds nothing, and after the last they are sent (not recorded as sent)."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179242{i:04d}", "hello") for i in range(3)])
    claimed = claim(db)
    sim.state.logs_answer = {"results": [{"messageId": row[3], "destination": row[5][1:], "sentAt": "x"}
                                         for row in claimed]}
    async with Sender(db, logs_lag=0, logs_looks=2) as sender:
        await rounds_until_settled(sender, db)
        assert (sender.found_in_logs, sender.sent_again) == (0, 3)
    assert sorted(m.message_id for m in sim.state.sent) == sorted(row[3] for row in claimed)
    assert [r.status for r in sim.state.requests if r.path == LOGS_PATH] == [200, 200]  # two looks
    assert rows(db, "SELECT DISTINCT status FROM outbox") == [("sent",)]


async def test_a_reply_is_found_by_a_later_look_and_one_missing_after_the_last_is_sent_again(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """The window: Infobip shows a message in its logs some time after accepting it. Looks at
    the lag, 2x and 4x the lag after the answer was lost: a message shown before the last look is
    recorded and never sent again; one shown later than that is sent a second time (same id)."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, ("+41792430001", "hello"))
    sim.state.logs_lag = 0.5  # shown after the first look (0.2 s), before the last (0.8 s)
    sim.state.inject("drop", 1, process=True, path_prefix=SEND_PATH)
    async with Sender(db, logs_lag=0.2, logs_looks=3) as sender:
        await rounds_until_settled(sender, db)
        assert (sender.unknown, sender.found_in_logs, sender.sent_again) == (1, 1, 0)
    assert len(sim.state.sent) == 1
    assert 2 <= sim.state.count_requests(LOGS_PATH) <= 3

    store(db, ("+41792430002", "hello"))
    sim.state.logs_lag = 3600.0  # Infobip logs it later than the last look: the window
    sim.state.inject("drop", 1, process=True, path_prefix=SEND_PATH)
    async with Sender(db, logs_lag=0.05, logs_looks=3) as sender:
        await rounds_until_settled(sender, db)
        assert (sender.found_in_logs, sender.sent_again) == (0, 1)
    assert sent_twice(sim) == [rows(db, "SELECT our_message_id FROM outbox WHERE id = 2")[0][0]]
    assert rows(db, "SELECT status FROM outbox ORDER BY id") == [("sent",), ("sent",)]


async def test_replies_left_in_flight_wait_for_the_lag_before_any_is_sent_again(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """A dead sender's request reached Infobip just before the kill, and Infobip logs it a moment
    later: the next sender does not look at once (it would not find them and send them again),
    it waits for the lag after their claim; other lines are sent meanwhile."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, *[(f"+4179244{i:04d}", "hello") for i in range(2)])
    claimed = claim(db)
    messages = [OutboundSms(sender=SHOP_NUMBER, to=row[5], text=row[6], message_id=row[3]) for row in claimed]
    sim.state.accept_send({"messages": [m.to_payload() for m in messages]}, SHOP_KEY)
    sim.state.logs_lag = 0.3
    store(db, ("+41792449999", "hello"))  # another line: not held up
    async with Sender(db, logs_lag=1.0) as sender:
        await sender.run_once()
        assert rows(db, "SELECT status, last_error FROM outbox ORDER BY id") == [
            ("unknown", f"the sender stopped while this reply was in flight: {ASKING_THE_LOGS}")] * 2 + [("sent", "")]
        assert sim.state.count_requests(LOGS_PATH) == 0
        await rounds_until_settled(sender, db)
        assert (sender.found_in_logs, sender.sent_again) == (2, 0)
    assert sent_twice(sim) == [] and len(sim.state.sent) == 3


# --------------------------------------------------------------------------- the answer journal


async def test_a_journal_left_by_another_database_marks_no_reply(tmp_path: Path, sim: SimulatorThread) -> None:
    """Two databases whose replies have the same row ids; the journal of the first ends up
    beside the second (a backup restored over it). Its entries name other messageIds: the
    second's replies are not marked sent by it, they are looked up and sent."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_db(tmp_path / "a" / "smsdesk.db", shop_credential(sim.url))
    second = make_db(tmp_path / "b" / "smsdesk.db", shop_credential(sim.url))
    for db in (first, second):
        store(db, *[(f"+4179245{i:04d}", "hello") for i in range(3)])
    journal = AnswerJournal(first)
    journal.append([(row[3], *SendOutcome(row[0], "sent", f"ib-first-{row[0]}", "PENDING_ACCEPTED"))
                    for row in claim(first)])
    claimed = claim(second)
    shutil.copy(journal.path, AnswerJournal(second).path)
    async with Sender(second, logs_lag=0, logs_looks=1) as sender:
        await rounds_until_settled(sender, second)
    assert rows(second, "SELECT status, infobip_message_id = our_message_id FROM outbox ORDER BY id") == [
        ("sent", 1)] * 3
    assert sorted(m.message_id for m in sim.state.sent) == sorted(row[3] for row in claimed)


def test_a_torn_journal_line_does_not_hide_the_next(tmp_path: Path) -> None:
    """A kill (or a full disk) tore a record in the middle: the records before and after it are
    read; a line damaged in a way that still parses is refused by its checksum."""
    journal = AnswerJournal(tmp_path / "smsdesk.db")
    first = [("ours-1", 1, "sent", "ib-1", "PENDING_ACCEPTED", "", 0.0)]
    torn = [("ours-2", 2, "sent", "ib-2", "PENDING_ACCEPTED", "", 0.0)]
    last = [("ours-3", 3, "rejected", "ib-3", "REJECTED_NETWORK", "", 0.0)]
    assert journal.append(first)
    with open(journal.path, "ab") as file:
        file.write(encode(torn)[:30])  # what a kill mid-write leaves: no end, no newline
        file.write(encode(torn).replace(b"ib-2", b"ib-9"))  # parses, but not what was written
    assert journal.append(last)
    assert journal.read() == first + last
    assert journal.skipped == 2


def test_every_journal_write_writes_everything_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short writes are continued until the record is whole; a write that fails half-way (a full
    disk) is cut off again, so the file holds whole records only."""
    journal = AnswerJournal(tmp_path / "smsdesk.db")
    real_write = os.write
    entries = [(f"ours-{i}", i, "sent", f"ib-{i}", "PENDING_ACCEPTED", "", 0.0) for i in range(20)]

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(answer_journal.os, "write", short_write)
    assert journal.append(entries[:10])
    calls = 0

    def disk_full(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(answer_journal.os, "write", disk_full)
    size = journal.path.stat().st_size
    assert not journal.append(entries[10:])
    assert journal.path.stat().st_size == size  # the half record was cut off
    monkeypatch.setattr(answer_journal.os, "write", real_write)
    assert journal.append(entries[15:])
    assert journal.read() == entries[:10] + entries[15:] and journal.skipped == 0


# --------------------------------------------------------------------------- clients


async def test_a_rotated_key_closes_the_old_client(tmp_path: Path, sim: SimulatorThread) -> None:
    """The running sender reads the credential each round; when its key changes, the client of
    the old key is closed at the end of the round (none of its requests is in flight then)."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, ("+41792460001", "hello"))
    async with Sender(db) as sender:
        await sender.run_once()
        [old] = sender.clients.open_clients()
        assert not old.closed and [m.key for m in sim.state.sent] == [SHOP_KEY]
        handle = connect(db)
        cred = get_credential(handle, "Shop")
        update_credential(handle, cred.id, shop_credential(sim.url, api_key=NEW_KEY), cred.version)
        handle.close()
        store(db, ("+41792460002", "hello"))
        await sender.run_once()
        assert old.closed
        [new] = sender.clients.open_clients()
        assert new is not old and not new.closed
    assert [m.key for m in sim.state.sent] == [SHOP_KEY, NEW_KEY]
