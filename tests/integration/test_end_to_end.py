"""Simulator -> serve -> simulator over real HTTP: forward and pull, replies with every option, DLRs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from smsdesk.engine.poller import InboxPoller
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.writer.parent import ProcessWriter
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve
from tests.support.store import rows


@pytest.fixture
def sim():
    state = SimulatorState(keys={"shop-key-0001", "club-key-0002"}, webhook_retry_base=0.05)
    with SimulatorThread(state) as simulator:
        yield simulator




def test_forwarded_inbound_gets_its_reply_with_every_option(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url), club_credential(sim.url))
    with running_serve(db, run_outbox=True) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        sim.state.queue_inbound("41793026727", SHOP_NUMBER, "Stop please", message_id="e2e-1")
        sim.state.queue_inbound("41793026728", CLUB_NUMBER, "YES", message_id="e2e-2")
        assert sim.wait_until(lambda: len(sim.state.sent) == 2, timeout=15)
    by_to = {m.to: m for m in sim.state.sent}
    shop = by_to["41793026727"]
    assert (shop.sender, shop.text, shop.callback_data) == ("447491163443", "Shop: unsubscribed.", "shop-cb")
    assert shop.options == {"validityPeriod": {"amount": 12, "timeUnit": "HOURS"},
                            "regional": {"indiaDlt": {"principalEntityId": "1702157864390060348",
                                                      "contentTemplateId": "1107160000000000001"}}}
    club = by_to["41793026728"]
    assert (club.sender, club.text) == ("ClubInfo", "Reply CONFIRM to join Club.")
    assert club.options == {"validityPeriod": {"amount": 48, "timeUnit": "HOURS"}}  # no DLT ids: no regional
    assert rows(db, "SELECT status FROM outbox ORDER BY id") == [("sent",), ("sent",)]
    our_ids = {r[0] for r in rows(db, "SELECT our_message_id FROM outbox")}
    assert {m.message_id for m in sim.state.sent} == our_ids


def test_delivery_reports_flow_back(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with running_serve(db, run_outbox=True, delivery_url=None) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        sim.state.dlr_url = serve.url + "/infobip/delivery-reports"
        sim.state.queue_inbound("41793026727", SHOP_NUMBER, "HELP", message_id="dlr-1")
        assert sim.wait_until(lambda: len(sim.state.sent) == 1, timeout=15)
        sim.state.deliver()
        assert sim.wait_until(lambda: rows(db, "SELECT status FROM outbox") == [("delivered",)], timeout=15)


def test_pull_mode_stores_and_answers(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, inbound_mode="pull"))
    for i in range(1205):  # more than one pull of 1000
        sim.state.queue_inbound(f"4179{i:07d}", SHOP_NUMBER, "discount" if i % 2 else "HELP", message_id=f"p-{i}")
    with running_serve(db, run_outbox=True, run_poller=True):
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM messages") == [(1205,)], timeout=30)
        assert sim.wait_until(lambda: len(sim.state.sent) == 603, timeout=60)
    assert sim.state.inbox_size == 0
    assert rows(db, "SELECT COUNT(*) FROM profile_attributes WHERE name = 'DISCOUNT'") == [(602,)]
    assert rows(db, "SELECT DISTINCT source FROM messages") == [("pull",)]


def test_webhook_retries_do_not_double_anything(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    with running_serve(db, run_outbox=True) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        for n in range(1, 4):  # Infobip may deliver the same message more than once, in separate posts
            sim.state.queue_inbound("41793026727", SHOP_NUMBER, "STOP", message_id="same-id")
            assert sim.wait_until(lambda n=n: sum(p.ok for p in sim.state.webhook_posts) == n, timeout=15)
        assert sim.wait_until(lambda: len(sim.state.sent) >= 1, timeout=15)
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(1,)]
    assert rows(db, "SELECT COUNT(*) FROM outbox") == [(1,)]
    assert len(sim.state.sent) == 1


def test_replies_wait_out_an_outage_and_go_out_once(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
    sim.state.inject("500", duration=2.0, path_prefix="/sms/3/messages")
    with running_serve(db, run_outbox=True) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        for i in range(5):
            sim.state.queue_inbound(f"4179000000{i}", SHOP_NUMBER, "HELP", message_id=f"out-{i}")
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM messages") == [(5,)], timeout=10)
        assert sim.wait_until(lambda: len(sim.state.sent) == 5, timeout=40)
    assert rows(db, "SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", 5)]
    assert len({m.message_id for m in sim.state.sent}) == 5
    assert max(r[0] for r in rows(db, "SELECT attempts FROM outbox")) >= 1


async def test_a_pulled_batch_waits_for_a_dead_writer_instead_of_being_dropped(
        tmp_path: Path, sim: SimulatorThread, caplog: pytest.LogCaptureFixture) -> None:
    """Pulling consumes the messages at Infobip: with the writer process dead the poller keeps
    the batch and retries until a new writer (after the respawn interval) has stored it."""
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, inbound_mode="pull"))
    for i in range(5):
        sim.state.queue_inbound(f"4179{i:07d}", SHOP_NUMBER, "HELP", message_id=f"w-{i}")
    writer = ProcessWriter(db, respawn_interval=3.0).start()
    poller = InboxPoller(db, writer, interval=0.1)
    try:
        await asyncio.to_thread(writer.wait_ready)
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        with caplog.at_level(logging.ERROR, logger="smsdesk.poller"):
            assert await poller.run_once() == 0  # pulled, not stored: kept
            assert poller.unsaved == 5
            stored = 0
            for _ in range(100):  # the writer is replaced after 3 s; the retry backs off meanwhile
                stored += await poller.run_once()
                if stored:
                    break
                await asyncio.sleep(0.1)
            assert stored == 5 and poller.unsaved == 0
    finally:
        await poller.aclose()
        writer.stop()
    assert "retrying" in caplog.text  # the first store did fail: the batch waited, in memory
    assert sim.state.inbox_size == 0
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(5,)]
