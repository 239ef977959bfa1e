"""Issue 29 in the TUI: `v` on a credential also says where its inbound number's messages go,
how many Blocklist pushes wait, and the last reconcile; the form edits blocklist_sync. Against the
real simulator over loopback; the Infobip calls run in the verify screen's async worker and the
store reads through the data service."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Select

from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.simulator.sample_data import SHOP_NUMBER
from smsdesk.store.blocklist_reconcile import ReconcileRecord, save_reconcile
from smsdesk.store.db import connect, transaction
from smsdesk.store.operator_opt_out import opt_out_number
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from tests.support.sim import GOOD_KEY
from tests.support.tui import SIZE, make_app, ready, select_row, wait_until
from tests.tui.test_tui_verify_and_test_sms import add, shown, verify


@pytest.fixture(autouse=True)
def desk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSDESK_PUBLIC_URL", "https://desk.example.com")


async def test_verify_shows_forwarding_queue_and_last_reconcile(db_path: Path, sim: SimulatorThread) -> None:
    cred = add(db_path, "Shop", sim.url, GOOD_KEY, inbound_number="+" + SHOP_NUMBER, blocklist_sync="two-way")
    sim.state.set_inbound_config(GOOD_KEY, SHOP_NUMBER, {"type": "HTTP_FORWARD", "format": "MO_JSON_2",
                                                         "url": "https://u:pw-in-url@old.example.com/in"})
    opt_out_number(connect(db_path), "test", "+41793026727", "phone call", by="tester")
    db = connect(db_path)
    with transaction(db) as conn:
        save_reconcile(conn, ReconcileRecord(cred.id, "2026-12-06T08:00:00.000+00:00", True, 1, 0, 0, 1, 0))
    db.close()
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await verify(pilot, "Shop")
        await wait_until(pilot, lambda: "inbound" in shown(dialog, "#verify-side"))
        side = shown(dialog, "#verify-side")
        assert "✗ inbound forwards elsewhere: https://old.example.com/in in MO_JSON_2" in side
        assert "pw-in-url" not in side
        assert "Blocklist sync two-way: 1 push waiting for serve" in side
        assert "last reconcile 2026-12-06T08:00: 1 blocked there only, 0 opted out here only" in side
        assert "Balance: 47.79 EUR" in shown(dialog, "#verify-result")


async def test_verify_names_the_missing_scope_and_keeps_the_balance(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Shop", sim.url, GOOD_KEY, inbound_number="+" + SHOP_NUMBER)
    sim.state.remove_scope(GOOD_KEY, "numbers:manage")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await verify(pilot, "Shop")
        await wait_until(pilot, lambda: "scope" in shown(dialog, "#verify-side"))
        assert shown(dialog, "#verify-side") == (
            "the API key lacks the scope numbers:manage needed to read the inbound configuration")
        assert "Balance: 47.79 EUR" in shown(dialog, "#verify-result")


async def test_the_form_edits_blocklist_sync(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Shop", sim.url, GOOD_KEY, inbound_number="+" + SHOP_NUMBER)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, CredentialEditScreen))
        form = pilot.app.screen
        select = form.query_one("#f-blocklist_sync", Select)
        assert select.value == "off"
        select.value = "push"
        await pilot.pause()
        await pilot.press("f2")
        await wait_until(pilot, lambda: not isinstance(pilot.app.screen, CredentialEditScreen))
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT blocklist_sync FROM credentials").fetchone() == ("push",)
    conn.close()
