"""Keyword engine 2 end to end: the simulator forwards texts to a real `serve`, which stores them
and sends the replies back to the simulator: near misses in each fuzzy mode, a review decision
in the ledger, a custom keyword's reply on the wire."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsdesk.cli.main import cli
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.store import review
from smsdesk.store.db import connect
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve
from tests.support.store import rows

SHOP_KEY = "shop-key-0001"


@pytest.fixture
def sim():
    state = SimulatorState(keys={SHOP_KEY}, webhook_retry_base=0.05)
    with SimulatorThread(state) as simulator:
        yield simulator




def at(second: int) -> str:
    return f"2026-11-26T10:00:{second:02d}.000+00:00"


@pytest.mark.parametrize(("mode", "wire", "reviews"), [
    ("off", ["Shop: thanks!"], 0),  # today's behaviour: the default reply
    ("reply", ["Reply STOP to unsubscribe."], 0),
    ("review", [], 1),
    ("reply+review", ["Reply STOP to unsubscribe."], 1),
])
def test_near_miss_through_serve(tmp_path: Path, sim: SimulatorThread, mode: str, wire: list[str],
                                 reviews: int) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, fuzzy_opt_out=mode))
    with running_serve(db, run_outbox=True) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        sim.state.queue_inbound("41791000001", SHOP_NUMBER, "please stop texting me", received_at=at(1))
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM messages") == [(1,)], timeout=10)
        if wire:
            assert sim.wait_until(lambda: len(sim.state.sent) == len(wire), timeout=10)
        time.sleep(0.5)  # anything still due would go out now
    assert [m.text for m in sim.state.sent] == wire
    assert rows(db, "SELECT action FROM messages") == [("default" if mode == "off" else "near-opt-out",)]
    assert rows(db, "SELECT COUNT(*) FROM review_queue WHERE status = 'open'") == [(reviews,)]
    assert rows(db, "SELECT COUNT(*) FROM consent WHERE consent = 'n'") == [(0,)]


def test_review_decision_reaches_the_ledger_and_the_wire(tmp_path: Path, sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, fuzzy_opt_out="review"))
    with running_serve(db, run_outbox=True) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        sim.state.queue_inbound("41791000002", SHOP_NUMBER, "START", received_at=at(1))
        sim.state.queue_inbound("41791000002", SHOP_NUMBER, "STPO", received_at=at(2))
        assert sim.wait_until(lambda: rows(db, "SELECT COUNT(*) FROM review_queue") == [(1,)], timeout=10)
        handle = connect(db)
        try:
            [item] = review.list_reviews(handle.conn)
            done = review.resolve(handle, item.id, "opt-out", by="operator-1")
        finally:
            handle.close()
        assert done.effect == "changed"
        # the opt-out confirmation goes out like a STOP's
        assert sim.wait_until(lambda: any(m.text == "Shop: unsubscribed." for m in sim.state.sent), timeout=10)
    # an operator's opt-out, timed at the decision (it always applies), not at the near miss
    last = rows(db, "SELECT old, new, effect, operator, cause, received_at = at FROM consent_ledger ORDER BY id")[-1]
    assert last == ("y", "n", "changed", "operator-1", "operator", 1)
    result = CliRunner().invoke(cli, ["--db", str(db), "consent", "verify"])
    assert result.exit_code == 0, result.output


def test_custom_keyword_reply_on_the_wire(tmp_path: Path, sim: SimulatorThread) -> None:
    cred = shop_credential(sim.url, inbound_keywords=["DISCOUNT", "BLACK FRIDAY"],
                           custom_keyword_replies={"BLACK FRIDAY": "Doors open at 8."})
    db = make_db(tmp_path / "smsdesk.db", cred)
    with running_serve(db, run_outbox=True) as serve:
        sim.state.forward_url = serve.url + "/infobip/inbound"
        sim.state.forward_auth = (WEBHOOK_USER, WEBHOOK_PASSWORD)
        sim.state.queue_inbound("41791000003", SHOP_NUMBER, "Black-Friday!", received_at=at(1))
        sim.state.queue_inbound("41791000004", SHOP_NUMBER, "discount", received_at=at(1))
        assert sim.wait_until(lambda: len(sim.state.sent) == 1, timeout=10)
        time.sleep(0.5)
    [sent] = sim.state.sent
    assert (sent.to, sent.text) == ("41791000003", "Doors open at 8.")
    assert rows(db, "SELECT name, COUNT(*) FROM profile_attributes GROUP BY 1 ORDER BY 1") == [
        ("BLACK FRIDAY", 1), ("DISCOUNT", 1)]
