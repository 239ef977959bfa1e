"""Fencing (issue 24, point 3): every claim carries the sender's generation, a sender that starts
moves the generation on before it touches what an earlier one left, and work of an older
generation writes nothing (writer/fencing.py). Real SQLite file, the writer process, `serve`
in-process against the simulator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.db import connect, transaction
from smsdesk.store.inbound import InboundMessage
from smsdesk.store.outbox import SendOutcome, claim_due, record_outcomes
from smsdesk.writer.fencing import FencedWriter, SenderFenced, begin_generation, current_sender
from smsdesk.writer.jobs import job
from smsdesk.writer.parent import ProcessWriter
from tests.support.serve import running_serve, wait_until
from tests.support.store import rows, store_directly

SHOP_KEY = "shop-key-0001"


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorState(keys={SHOP_KEY})) as simulator:
        yield simulator


def hello(db: Path, *numbers: str) -> None:
    store_directly(db, [InboundMessage(f"m-{time.monotonic_ns()}-{i}", number, "+" + SHOP_NUMBER, "HELP",
                                       "2026-11-26T10:00:00.000+00:00") for i, number in enumerate(numbers)])


def take_over(db: Path, pid: int = 4242) -> int:
    """What a later sender's start commits first."""
    handle = connect(db)
    try:
        with transaction(handle) as conn:
            return begin_generation(conn, pid)
    finally:
        handle.close()


def test_work_of_a_replaced_sender_writes_nothing(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    hello(db, "+41790000001", "+41790000002")
    writer = ProcessWriter(db).start()
    try:
        fenced: list[str] = []
        old = FencedWriter(writer, on_fenced=lambda: fenced.append("called"))
        with pytest.raises(SenderFenced):  # no generation yet: nothing is written
            old.submit(job(claim_due, 1)).result(10)
        assert old.begin(os.getpid()).result(10) == old.generation == 1
        [claimed] = old.submit(job(claim_due, 1, time.time())).result(10)
        assert rows(db, "SELECT id, status, sender_generation FROM outbox ORDER BY id") == [
            (claimed[0], "sending", 1), (claimed[0] + 1, "queued", 0)]

        assert take_over(db) == 2  # a later sender started
        with pytest.raises(SenderFenced, match="generation 1 was replaced by generation 2"):
            old.submit(job(claim_due, 10, time.time())).result(10)
        with pytest.raises(SenderFenced):
            old.submit(job(record_outcomes, [tuple(SendOutcome(claimed[0], "sent", "ib-1", "PENDING"))])).result(10)
        assert rows(db, "SELECT status, sender_generation FROM outbox ORDER BY id") == [("sending", 1), ("queued", 0)]
        assert old.fenced_out and fenced == ["called"]  # said once

        new = FencedWriter(writer)
        assert new.begin(os.getpid()).result(10) == 3
        assert [row[0] for row in new.submit(job(claim_due, 10, time.time())).result(10)] == [claimed[0] + 1]
        assert rows(db, "SELECT sender_generation FROM outbox ORDER BY id") == [(1,), (3,)]
    finally:
        writer.stop()


def test_serve_takes_the_next_generation_and_stops_sending_once_another_took_over(
        tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    take_over(db, pid=1)  # a sender ran on this file before
    hello(db, "+41790000011")
    with running_serve(db, run_outbox=True) as serve:
        assert sim.wait_until(lambda: len(sim.state.sent) == 1, timeout=20)
        generation, pid, started_at = current_sender(connect(db).conn)
        assert (generation, pid) == (2, os.getpid()) and started_at
        assert wait_until(lambda: rows(db, "SELECT status, sender_generation FROM outbox") == [("sent", 2)], 10)

        take_over(db)  # what only a sender that started while this one runs could do
        hello(db, "+41790000012")
        sender_writer = serve.service.sender_writer
        assert wait_until(lambda: sender_writer.fenced_out, timeout=10)
        assert rows(db, "SELECT to_number, status FROM outbox ORDER BY id") == [
            ("+41790000011", "sent"), ("+41790000012", "queued")]  # never claimed by the replaced sender
    assert len(sim.state.sent) == 1
