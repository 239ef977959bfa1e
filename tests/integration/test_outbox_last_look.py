"""The sender's last look: a STOP that commits between the claim and the request is not overtaken.

The claim checks consent in its own transaction; a STOP committed after it cannot cancel a reply
already `sending`. Just before each /sms/3/messages request leaves, the sender reads its replies'
consent again (one read) and drops those an opt-out now forbids, recording them `cancelled`
(engine/outbox_sender.py, `_last_look`; issue 23, points 5 and 7). Real SQLite file, the real
inbound rules, the simulator over loopback holding the first request.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from smsdesk.engine.outbox_sender import OPTED_OUT_AS_IT_LEFT, OutboxSender
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.credentials import get_credential, update_credential
from smsdesk.store.db import connect
from smsdesk.store.inbound import InboundMessage
from smsdesk.writer.thread_writer import GroupCommitWriter
from tests.support.store import rows, store_directly

SHOP_KEY = "shop-key-0001"
A, X, B, C = (f"+4179002350{i}" for i in range(4))
HELLO = shop_credential().default_reply_message
CONFIRMATION = shop_credential().opt_out_message


@pytest.fixture
def sim():
    with SimulatorThread(SimulatorState(keys={SHOP_KEY})) as simulator:
        yield simulator


def store(db: Path, number: str, text: str, received_at: str) -> None:
    store_directly(db, [InboundMessage(f"m-{time.monotonic_ns()}", number, "+" + SHOP_NUMBER, text, received_at)])


def edit_sandbox(db: Path, sandbox: str) -> None:
    handle = connect(db)
    try:
        cred = get_credential(handle, "Shop")
        update_credential(handle, cred.id, shop_credential(cred.base_url, sandbox=sandbox), cred.version)
    finally:
        handle.close()


def sent_to(sim: SimulatorThread, number: str) -> list[str]:
    return [m.text for m in sim.state.sent if m.to == number.removeprefix("+")]


async def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("between", ["a STOP", "a sandbox edit, then a STOP"])
async def test_a_stop_committed_between_claim_and_send_stops_the_reply(tmp_path: Path, sim: SimulatorThread,
                                                                      between: str) -> None:
    """Two requests of two replies, one in flight at a time; Infobip holds the first for 2 s.
    B texts STOP meanwhile: its claimed reply is dropped from the second request, which still
    carries C's, and B's confirmation goes in the next round."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    for number in (A, X, B, C):
        store(db, number, "hello", "2026-11-26T10:00:01.000+00:00")
    sim.state.inject("slow", 1, delay=2.0, path_prefix="/sms/3/messages")
    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer, messages_per_request=2, requests_in_flight=1)
    sender.claim_limit = 4  # a round of more requests than may be in flight (many credentials do that)
    try:
        first_round = asyncio.ensure_future(sender.run_once())
        await wait_for(lambda: rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sending'") == [(4,)])
        assert sim.state.sent == []  # claimed; the first request is held, the second waits for it
        if between != "a STOP":
            await asyncio.to_thread(edit_sandbox, db, "staging")
        await asyncio.to_thread(store, db, B, "STOP", "2026-11-26T10:00:02.000+00:00")
        assert not first_round.done() and sim.state.sent == []  # committed before any request was answered
        assert await first_round == 4
        assert [m.to for m in sim.state.sent] == [A[1:], X[1:], C[1:]]
        assert sent_to(sim, B) == []
        assert rows(db, "SELECT status, last_error FROM outbox WHERE to_number = ? AND kind = 'default'", B) == [
            ("cancelled", OPTED_OUT_AS_IT_LEFT)]
        assert sender.cancelled == 1 and sender.requests == 2
        await sender.run_once()  # the next round: the opt-out confirmation itself still goes
    finally:
        await sender.aclose()
        writer.stop()
    assert sent_to(sim, B) == [CONFIRMATION]
    assert rows(db, "SELECT kind, status FROM outbox WHERE to_number = ? ORDER BY id", B) == [
        ("default", "cancelled"), ("opt-out", "sent")]
    assert {number: sent_to(sim, number) for number in (A, X, C)} == {number: [HELLO] for number in (A, X, C)}


async def test_a_request_retried_after_a_transient_error_takes_its_own_last_look(
        tmp_path: Path, sim: SimulatorThread) -> None:
    """Infobip throttles the request (429, Retry-After: 1 s) and B texts STOP meanwhile: the
    retry is a request leaving too, and it must not carry B's reply (the client's own retry
    would have sent it after the STOP's 200)."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, B, "hello", "2026-11-26T10:00:01.000+00:00")
    sim.state.inject("429", 1, retry_after=1.0, path_prefix="/sms/3/messages")
    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer)
    try:
        first_round = asyncio.ensure_future(sender.run_once())
        await wait_for(lambda: sim.state.count_requests("/sms/3/messages") == 1)  # the 429
        await asyncio.to_thread(store, db, B, "STOP", "2026-11-26T10:00:02.000+00:00")
        assert await first_round == 1
        assert sim.state.count_requests("/sms/3/messages") == 1 and sim.state.sent == []
        assert rows(db, "SELECT kind, status, last_error FROM outbox ORDER BY id") == [
            ("default", "cancelled", OPTED_OUT_AS_IT_LEFT), ("opt-out", "queued", "")]
        await sender.run_once()
    finally:
        await sender.aclose()
        writer.stop()
    assert sent_to(sim, B) == [CONFIRMATION]


async def test_a_transient_error_is_still_retried_within_the_request(tmp_path: Path, sim: SimulatorThread) -> None:
    """The sender's own attempts keep the client's policy: one 500, then the same request again
    at once (no wait for a later round), each message once."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    for number in (A, X):
        store(db, number, "hello", "2026-11-26T10:00:01.000+00:00")
    sim.state.inject("500", 1, path_prefix="/sms/3/messages")
    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer)
    try:
        assert await sender.run_once() == 2
    finally:
        await sender.aclose()
        writer.stop()
    assert [r.status for r in sim.state.requests if r.path == "/sms/3/messages"] == [500, 200]
    assert rows(db, "SELECT status, attempts FROM outbox") == [("sent", 1), ("sent", 1)]
    assert sender.requests == 2 and sender.retried == 0


async def test_the_last_look_keeps_help_answers_and_confirmations(tmp_path: Path, sim: SimulatorThread) -> None:
    """Replies an opted-out number may still get are not even looked up: an opt-out committed
    after the claim lets a HELP answer already claimed go."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, A, "hello", "2026-11-26T10:00:01.000+00:00")
    store(db, B, "HELP", "2026-11-26T10:00:01.000+00:00")
    sim.state.inject("slow", 1, delay=2.0, path_prefix="/sms/3/messages")
    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer, messages_per_request=1, requests_in_flight=1)
    sender.claim_limit = 2
    try:
        first_round = asyncio.ensure_future(sender.run_once())
        await wait_for(lambda: rows(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sending'") == [(2,)])
        await asyncio.to_thread(store, db, B, "STOP", "2026-11-26T10:00:02.000+00:00")
        assert await first_round == 2
        await sender.run_once()
    finally:
        await sender.aclose()
        writer.stop()
    assert sent_to(sim, B) == ["Shop help: shop.example", CONFIRMATION]
    assert sender.cancelled == 0


def test_the_last_look_is_one_read_by_consents_key(tmp_path: Path) -> None:
    """One statement per request, whatever its size, and a lookup by (sandbox, number) for each
    number: never a pass over the consent table, which holds every subscriber."""
    from smsdesk.store.outbox import opted_out_numbers
    from tests.support.query_plans import plans, table_scans, traced

    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    numbers = [f"+417900240{i:02d}" for i in range(100)]
    store_directly(db, [InboundMessage(f"m-{i}", number, "+" + SHOP_NUMBER, "STOP" if i % 2 else "START",
                                       "2026-11-26T10:00:01.000+00:00") for i, number in enumerate(numbers)])
    shop_id = rows(db, "SELECT id FROM credentials")[0][0]
    found, statements = traced(db, lambda conn: opted_out_numbers(conn, shop_id, "gone", numbers), write=False)
    assert found == set(numbers[1::2])
    assert len(statements) == 1
    assert "SEARCH consent USING INDEX sqlite_autoindex_consent_1 (sandbox=? AND number=?)" in plans(
        db, statements)[statements[0]]  # the primary key (sandbox, number), a rowid table's unique index
    assert table_scans(db, statements) == {}


async def test_a_stop_acknowledged_while_the_last_look_reads_holds_the_reply_back(tmp_path: Path,
                                                                                   sim: SimulatorThread) -> None:
    """The last look reads on a thread; a STOP serve commits and acknowledges meanwhile (on the
    loop) is not in what it read. The receiver's note of that STOP, checked on the loop just
    before the request leaves, holds the reply back; the next claim reads consent and cancels it.
    Without the note the reply would leave after the STOP's 200."""
    from smsdesk.engine.opt_out_notices import OptOutNotices

    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    store(db, B, "hello", "2026-11-26T10:00:01.000+00:00")
    notices = OptOutNotices()
    writer = GroupCommitWriter(db).start()
    sender = OutboxSender(db, writer, opt_outs=notices)
    read_consent = sender._opted_out

    def read_while_a_stop_is_acknowledged(credential_id: int, sandbox: str, numbers: list[str]) -> set[str]:
        found = read_consent(credential_id, sandbox, numbers)  # the read sees no STOP yet
        store(db, B, "STOP", "2026-11-26T10:00:02.000+00:00")  # committed meanwhile...
        notices.note([B])  # ...and noted by the receiver before its 200
        return found

    sender._opted_out = read_while_a_stop_is_acknowledged  # type: ignore[method-assign]
    try:
        await sender.run_once()
        assert sent_to(sim, B) == []
        assert rows(db, "SELECT kind, status FROM outbox ORDER BY id") == [("default", "queued"),
                                                                           ("opt-out", "queued")]
        sender._opted_out = read_consent  # type: ignore[method-assign]
        for _ in range(3):
            await sender.run_once()
        assert sent_to(sim, B) == [CONFIRMATION]
        assert rows(db, "SELECT kind, status FROM outbox ORDER BY id") == [("default", "cancelled"),
                                                                           ("opt-out", "sent")]
    finally:
        await sender.aclose()
        writer.stop()


def test_opt_out_notices_since() -> None:
    from smsdesk.engine.opt_out_notices import OptOutNotices

    notices = OptOutNotices(keep=3)
    start = notices.sequence
    assert notices.since(start) == set()
    notices.note(["+1", "+2"])
    assert notices.since(start) == {"+1", "+2"}
    middle = notices.sequence
    notices.note(["+3", "+4"])
    assert notices.since(middle) == {"+3", "+4"}
    assert notices.since(start) is None  # "+1" was dropped: every number counts as noted


def test_serve_notes_each_stored_stop_before_its_200(tmp_path: Path) -> None:
    import httpx

    from smsdesk.simulator.sample_data import mo_body, mo_result
    from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve

    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    with running_serve(db) as server:
        notices = server.service.receiver.opt_outs
        assert server.service.sender.opt_outs is notices  # one object: what the receiver notes, the sender reads
        start = notices.sequence
        response = httpx.post(server.url + "/infobip/inbound", auth=(WEBHOOK_USER, WEBHOOK_PASSWORD),
                              json=mo_body(mo_result("STOP", sender=B.removeprefix("+")),
                                           mo_result("hello", sender=C.removeprefix("+"))))
        assert response.status_code == 200
        assert notices.since(start) == {B}


def test_a_stops_200_waits_for_a_reply_to_its_number_already_in_flight(tmp_path: Path) -> None:
    """A reply that passed the last word is in flight until Infobip answers; a STOP for its number
    is answered 200 only after that answer came back, so the reply cannot reach Infobip after the
    STOP's 200, whatever the HTTP client still awaited inside."""
    import concurrent.futures

    import httpx

    from smsdesk.simulator.sample_data import mo_body, mo_result
    from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve

    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    with running_serve(db) as server:
        notices = server.service.receiver.opt_outs
        leaving = notices.depart([B])  # as the sender does for a request with a reply to B

        def post_stop() -> int:
            return httpx.post(server.url + "/infobip/inbound", auth=(WEBHOOK_USER, WEBHOOK_PASSWORD), timeout=10,
                              json=mo_body(mo_result("STOP", sender=B.removeprefix("+")))).status_code

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(post_stop)
            time.sleep(0.5)
            assert not answer.done()  # stored, noted, and waiting for the reply in flight
            assert rows(db, "SELECT consent FROM consent") == [("n",)]
            loop = server.service.writer._loop  # serve's event loop
            loop.call_soon_threadsafe(notices.arrived, leaving)  # Infobip answered the request
            assert answer.result(timeout=10) == 200
