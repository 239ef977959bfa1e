"""Issue 29: an opt-out reaches Infobip's Blocklist exactly once through a 500 and a SIGKILL of
`serve` while its block was at Infobip (the real `smsdesk serve` process, the simulator over
loopback). The killed serve left the push `sending`; the next one reads the Blocklist (GET with
destination and sender), finds the block and sends nothing again."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from smsdesk.simulator.http_api import FaultKind, SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, shop_credential
from smsdesk.simulator.state import Gate
from smsdesk.store.db import connect
from smsdesk.store.operator_opt_out import opt_out_number
from tests.support.serve_process import LiveServe
from tests.support.sim import GOOD_KEY

BLOCKLIST = "/platform/1/blocklists"
ALICE = "+41793026727"


def status(db: Path) -> tuple[str, int]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT status, attempts FROM blocklist_queue").fetchone()  # type: ignore[no-any-return]
    finally:
        conn.close()


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_an_opt_out_is_blocked_once_through_a_500_and_a_kill(tmp_path: Path, home: Path,
                                                              sim: SimulatorThread) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential(sim.url, api_key=GOOD_KEY, blocklist_sync="push"))
    gate = Gate()
    sim.state.inject(FaultKind.SERVER_ERROR, 1, path_prefix=BLOCKLIST)  # the first push: 500
    sim.state.inject(FaultKind.SLOW, 1, gate=gate, path_prefix=BLOCKLIST)  # the second: taken, answer held
    first = LiveServe(db, tmp_path / "first.log")
    try:
        opt_out_number(connect(db), "prod", ALICE, "phone call", by="tester")
        assert gate.arrived.wait(30), first.log()
        assert status(db) == ("sending", 2)  # committed before the request left
        writer = first.writer_pid()
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        if writer is not None:  # the writer child follows its parent out
            assert wait_for(lambda: not Path(f"/proc/{writer}").exists()
                            or "Z" in Path(f"/proc/{writer}/stat").read_text().rsplit(")", 1)[1][:3], 15)
    finally:
        first.stop()
    gate.release()
    assert [r.destination for r in sim.state.blocked(GOOD_KEY)] == ["41793026727"]  # Infobip took it

    second = LiveServe(db, tmp_path / "second.log")
    try:
        assert wait_for(lambda: status(db)[0] == "done", 30), (status(db), second.log())
    finally:
        second.stop()
    with sim.state.lock:
        posts = [w for w in sim.state.blocklist_writes if w[0] == "POST"]
        gets = [r for r in sim.state.requests if r.path == BLOCKLIST and r.method == "GET"]
        five_hundreds = [r for r in sim.state.requests if r.path == BLOCKLIST and r.status == 500]
    assert len(posts) == 1 and len(five_hundreds) == 1  # the 500, then one block that took effect
    assert len(gets) == 1 and gets[0].status == 200  # the lost answer read back, not guessed
    assert [(r.destination, r.sender) for r in sim.state.blocked(GOOD_KEY)] == [("41793026727", SHOP_NUMBER)]
