"""While webhooks arrive, a draining backlog takes only its share of the writer (issue 28).

serve with a backlog of replies and the simulator as Infobip: with webhooks arriving, the sender
holds its next claim back (engine/sender_pacing.py) and the backlog waits; once inbound is quiet it
drains at once. Real SQLite file, real HTTP over loopback, serve's own writer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, mo_body, mo_result, shop_credential
from smsdesk.simulator.state import SimulatorState
from smsdesk.store.inbound import InboundMessage
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER, running_serve, wait_until
from tests.support.store import rows, store_directly

KEY = "shop-key-0001"
BACKLOG = 2000  # two and a half claims (800 each)


def backlog(db: Path) -> None:
    store_directly(db, [InboundMessage(f"b-{i}", f"+4179250{i:04d}", "+" + SHOP_NUMBER, "hello",
                                       "2026-11-26T10:00:00.000+00:00") for i in range(BACKLOG)])


def sent(sim: SimulatorThread) -> int:
    with sim.state.lock:
        return len(sim.state.sent)


class Webhooks(threading.Thread):
    """One webhook every 20 ms until stopped: a programme's ordinary inbound traffic."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.count = url, threading.Event(), 0

    def run(self) -> None:
        with httpx.Client(auth=(WEBHOOK_USER, WEBHOOK_PASSWORD), timeout=30) as client:
            while not self.stop.is_set():
                body = mo_body(mo_result("when is my order coming", sender=f"4179251{self.count:04d}",
                                         message_id=f"w-{self.count}"))
                assert client.post(self.url + "/infobip/inbound", json=body).status_code == 200
                self.count += 1
                time.sleep(0.02)


def test_a_backlog_yields_the_writer_while_webhooks_arrive_and_drains_once_quiet(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorState(keys={KEY})) as sim:
        db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
        backlog(db)
        # 1% of the writer: a round of claim and records of a few ms is followed by a pause 99x as long.
        with running_serve(db, run_outbox=True, sender_share=0.01) as serve:
            webhooks = Webhooks(serve.url)
            webhooks.start()
            try:
                pacing = serve.service.sender.pacing
                assert wait_until(lambda: sent(sim) > 0, 30)
                assert wait_until(lambda: pacing.waited > 0, 30)  # a claim was held back
                assert sent(sim) < BACKLOG  # ... and the backlog waited, not the webhooks
                assert pacing.claim_size(800, 100) == 100  # one request's worth at a time meanwhile
            finally:
                webhooks.stop.set()
                webhooks.join(30)
            assert webhooks.count > 0  # every one answered 200 (the thread asserts it)
            # Quiet now: the rest drains without waiting out the pauses the share would ask for.
            assert wait_until(lambda: sent(sim) >= BACKLOG + webhooks.count, 30), sent(sim)
    assert rows(db, "SELECT status, COUNT(*) FROM outbox GROUP BY 1") == [("sent", BACKLOG + webhooks.count)]


def test_with_no_webhooks_a_backlog_drains_at_full_pace(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorState(keys={KEY})) as sim:
        db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url))
        backlog(db)
        with running_serve(db, run_outbox=True, sender_share=0.01) as serve:
            assert wait_until(lambda: sent(sim) >= BACKLOG, 30), sent(sim)
            assert serve.service.sender.pacing.waited == 0
    assert rows(db, "SELECT status, COUNT(*) FROM outbox GROUP BY 1") == [("sent", BACKLOG)]
