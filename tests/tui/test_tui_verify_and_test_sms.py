"""Verify (v) and test SMS (t) from the credentials screen, against the real simulator over loopback.

No HTTP is mocked: each credential points at a SimulatorThread (or at a closed port) and the
assertions read what the simulator itself recorded.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, LoadingIndicator, Static

from smsdesk.domain.credential import Credential, StoredCredential
from smsdesk.infobip.client import VerifyOutcome
from smsdesk.simulator.http_api import SimulatorThread
from smsdesk.store.credentials import create_credential
from smsdesk.store.db import connect
from smsdesk.store.send_override import opted_out
from smsdesk.tui.commands import CredentialCommands
from smsdesk.tui.screens.help import HelpScreen
from smsdesk.tui.screens.send_test import SendTestScreen
from smsdesk.tui.screens.verify import VerifyScreen
from smsdesk.usecases import guarded_send
from tests.support.live import inbound, store
from tests.support.sim import BAD_KEY, GOOD_KEY, SMS_ONLY_KEY, closed_port
from tests.support.tui import SIZE, make_app, ready, select_row, settle, wait_until


def add(db_path: Path, name: str, base_url: str, api_key: str, **extra: object) -> StoredCredential:
    db = connect(db_path)
    try:
        return create_credential(db, Credential.model_validate(
            {"name": name, "sandbox": "test", "base_url": base_url, "api_key": api_key, **extra}))
    finally:
        db.close()


def shown(screen: VerifyScreen | SendTestScreen, selector: str) -> str:
    widget = screen.query_one(selector, Static)
    return str(widget.render()) if widget.display else ""


async def open_dialog(pilot: Pilot[None], name: str, key: str) -> VerifyScreen | SendTestScreen:
    screen = await ready(pilot)
    select_row(screen, name)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, VerifyScreen | SendTestScreen))
    dialog = pilot.app.screen
    assert isinstance(dialog, VerifyScreen | SendTestScreen)
    return dialog


async def verify(pilot: Pilot[None], name: str) -> VerifyScreen:
    dialog = await open_dialog(pilot, name, "v")
    assert isinstance(dialog, VerifyScreen)
    await wait_until(pilot, lambda: dialog.result is not None)
    await pilot.pause()
    return dialog


# -- verify ----------------------------------------------------------------------------------

async def test_verify_good_key_shows_balance(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Good", sim.url, GOOD_KEY)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await verify(pilot, "Good")
        assert dialog.result is not None and dialog.result.outcome is VerifyOutcome.OK
        text = shown(dialog, "#verify-result")
        assert "Key valid" in text and "Balance: 47.79 EUR" in text
        assert not dialog.query_one(LoadingIndicator).display
        # The key itself never appears, only its masked tail.
        assert GOOD_KEY not in shown(dialog, "#verify-target") + text
        assert "••••cdef" in shown(dialog, "#verify-target")
        assert sim.state.count_requests("/account/1/balance", "GET") == 1
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, VerifyScreen)


async def verified_text(db_path: Path, name: str, base_url: str, key: str, outcome: VerifyOutcome) -> str:
    """Verify a fresh credential through the app; the result line, once its outcome is checked."""
    add(db_path, name, base_url, key)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await verify(pilot, name)
        assert dialog.result is not None and dialog.result.outcome is outcome
        return shown(dialog, "#verify-result")


async def test_verify_bad_key_says_401(db_path: Path, sim: SimulatorThread) -> None:
    text = await verified_text(db_path, "Wrong", sim.url, BAD_KEY, VerifyOutcome.BAD_KEY)
    assert "Bad API key" in text and "401" in text
    assert "Balance" not in text


async def test_verify_key_without_balance_scope_is_valid_but_403(db_path: Path, sim: SimulatorThread) -> None:
    text = await verified_text(db_path, "SMS only", sim.url, SMS_ONLY_KEY, VerifyOutcome.NO_SCOPE)
    assert "Key valid" in text and "balance not readable" in text and "403" in text
    assert "Balance:" not in text


async def test_verify_unreachable_host(db_path: Path) -> None:
    text = await verified_text(db_path, "Nowhere", f"http://127.0.0.1:{closed_port()}", GOOD_KEY,
                               VerifyOutcome.UNREACHABLE)
    assert "Unreachable" in text and "connection refused" in text


async def test_verify_keeps_the_interface_responsive(db_path: Path, sim: SimulatorThread) -> None:
    """A slow Infobip: the spinner shows, keys still work, and Esc leaves before the answer."""
    add(db_path, "Slow", sim.url, GOOD_KEY)
    sim.state.inject("slow", delay=3.0)  # well past the checks below, even on a loaded machine
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Slow", "v")
        assert isinstance(dialog, VerifyScreen)
        await pilot.pause(0.2)
        assert dialog.result is None
        assert dialog.query_one(LoadingIndicator).display
        assert "verifying" in shown(dialog, "#verify-result")
        assert dialog.query_one("#verify-again", Button).disabled
        await pilot.press("escape")  # handled at once: the request runs in a worker
        await pilot.pause()
        assert not isinstance(pilot.app.screen, VerifyScreen)


async def test_verify_again_repeats_the_check(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Good", sim.url, GOOD_KEY)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await verify(pilot, "Good")
        sim.state.balance = 12.5
        await pilot.press("v")
        await wait_until(pilot, lambda: "12.50 EUR" in shown(dialog, "#verify-result"))
        assert sim.state.count_requests("/account/1/balance", "GET") == 2


# -- test SMS --------------------------------------------------------------------------------

async def test_send_test_sms_reaches_the_simulator(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Shop", sim.url, GOOD_KEY, sender="ShopUK", validity_period_hours=6, callback_data="smoke")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Shop", "t")
        assert isinstance(dialog, SendTestScreen)
        assert "from ShopUK" in shown(dialog, "#send-options")
        assert GOOD_KEY not in shown(dialog, "#send-options")
        assert dialog.query_one("#send-to", Input).has_focus
        await pilot.press(*"+44 7491 163 999", "enter")  # Enter moves on to the text
        text = dialog.query_one("#send-text", Input)
        assert text.has_focus
        text.value = "Hello from the test"
        await pilot.pause()
        assert shown(dialog, "#send-parts") == "19 chars, GSM-7, 1 SMS part"
        await pilot.press("f2")
        await wait_until(pilot, lambda: dialog.result is not None)
        await pilot.pause()
        [sent] = sim.state.sent
        assert (sent.sender, sent.to, sent.text) == ("ShopUK", "447491163999", "Hello from the test")
        assert sent.callback_data == "smoke"
        assert sent.options == {"validityPeriod": {"amount": 6, "timeUnit": "HOURS"}}
        result = shown(dialog, "#send-result")
        assert "Accepted" in result
        assert f"message id {sent.message_id}" in result
        assert "PENDING_ACCEPTED" in result


async def test_part_count_follows_the_text(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Shop", sim.url, GOOD_KEY, sender="ShopUK")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Shop", "t")
        dialog.query_one("#send-text", Input).value = "✓" * 71
        await pilot.pause()
        assert shown(dialog, "#send-parts") == "71 chars, UCS-2, 2 SMS parts"


async def send_refused(pilot: Pilot[None], name: str, text: str | None = None) -> SendTestScreen:
    """Send a test SMS with credential `name` (optionally this text) and wait for Infobip's refusal."""
    dialog = await open_dialog(pilot, name, "t")
    assert isinstance(dialog, SendTestScreen)
    dialog.query_one("#send-to", Input).value = "+447491163999"
    if text is not None:
        dialog.query_one("#send-text", Input).value = text
        await pilot.pause()
    await pilot.press("f2")
    await wait_until(pilot, lambda: dialog.error is not None)
    await pilot.pause()
    return dialog


async def test_send_error_shows_infobip_violations(db_path: Path, sim: SimulatorThread) -> None:
    """The text is Infobip's to judge: a blank one comes back as a 400 with its violation."""
    add(db_path, "Shop", sim.url, GOOD_KEY, sender="ShopUK")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await send_refused(pilot, "Shop", "")
        assert dialog.error is not None and dialog.error.status == 400
        result = shown(dialog, "#send-result")
        assert "Not sent" in result and "HTTP 400 E400" in result
        assert "messages[0].content.text: must not be blank" in result
        assert sim.state.sent == []
        assert not dialog.query_one("#send-send", Button).disabled  # fix the text and try again


async def test_send_bad_key_is_explained(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Wrong", sim.url, BAD_KEY, sender="ShopUK")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await send_refused(pilot, "Wrong")
        assert "HTTP 401" in shown(dialog, "#send-result")
        assert BAD_KEY not in shown(dialog, "#send-result")


@pytest.mark.parametrize("number", ["", "12", "+44 CALL ME", "07491 163999x"])
async def test_invalid_to_is_rejected_before_sending(db_path: Path, sim: SimulatorThread, number: str) -> None:
    add(db_path, "Shop", sim.url, GOOD_KEY, sender="ShopUK")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Shop", "t")
        assert isinstance(dialog, SendTestScreen)
        dialog.query_one("#send-to", Input).value = number
        await pilot.press("f2")
        await settle(pilot)
        note = shown(dialog, "#send-to-note")
        assert note.startswith("✗ ") and ("phone number" in note)
        assert dialog.query_one("#send-to", Input).has_focus
        assert sim.state.count_requests() == 0  # nothing left the machine
        assert dialog.result is None and shown(dialog, "#send-result") == ""
        dialog.query_one("#send-to", Input).value = "+447491163999"  # editing clears the complaint
        await pilot.pause()
        assert shown(dialog, "#send-to-note") == ""


async def test_credential_without_sender_cannot_send(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Silent", sim.url, GOOD_KEY)  # no sender, no inbound number
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Silent", "t")
        assert dialog.query_one("#send-send", Button).disabled
        assert "no sender" in shown(dialog, "#send-result")
        dialog.query_one("#send-to", Input).value = "+447491163999"
        await pilot.press("f2")
        await settle(pilot)
        assert sim.state.count_requests() == 0


# -- test SMS to an opted-out number --------------------------------------------------------

OPTED_OUT = "+41793026727"
SHOP_INBOUND = "+447491163443"


def shop_with_an_opt_out(db_path: Path, sim: SimulatorThread) -> StoredCredential:
    """Shop (sandbox test); OPTED_OUT texted it STOP, through the real inbound pipeline."""
    cred = add(db_path, "Shop", sim.url, GOOD_KEY, sender="ShopUK", inbound_number=SHOP_INBOUND)
    store(db_path, inbound(OPTED_OUT, SHOP_INBOUND, "STOP", "2026-03-04T05:06:07.000+00:00"))
    return cred


def override_audits(db_path: Path) -> list[dict[str, object]]:
    db = connect(db_path)
    try:
        return [json.loads(fields) for (fields,) in db.conn.execute(
            "SELECT fields FROM audit WHERE action = 'send-override-opt-out' ORDER BY id")]
    finally:
        db.close()


async def test_test_sms_to_an_opted_out_number_is_refused_then_sent_with_the_override(
        db_path: Path, sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []

    def looked_up_where(*args: object) -> object:
        lookups.append(threading.current_thread().name)
        return opted_out(*args)  # type: ignore[arg-type]

    # The lookup (usecases/guarded_send.py) runs through the data service, on one of its threads.
    monkeypatch.setattr(guarded_send, "opted_out", looked_up_where)
    shop_with_an_opt_out(db_path, sim)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Shop", "t")
        assert isinstance(dialog, SendTestScreen)
        override = dialog.query_one("#send-override", Checkbox)
        assert not override.display
        dialog.query_one("#send-to", Input).value = "0041 79 302 67 27"  # spelled otherwise: the same number
        await pilot.press("f2")
        await wait_until(pilot, lambda: "refused" in shown(dialog, "#send-result") and not dialog.sending)
        assert (f"refused: {OPTED_OUT} opted out of sandbox 'test' on 2026-03-04 05:06 UTC"
                in shown(dialog, "#send-result"))
        assert sim.state.count_requests() == 0 and dialog.result is None
        assert override.display and override.has_focus and not override.value
        assert lookups and threading.main_thread().name not in lookups  # never on the UI thread

        await pilot.press("f2")  # again without the tick: refused again
        await wait_until(pilot, lambda: len(lookups) == 2 and not dialog.sending)
        assert sim.state.count_requests() == 0 and override_audits(db_path) == []

        await pilot.press("space")
        assert override.value
        await pilot.press("f2")
        await wait_until(pilot, lambda: dialog.result is not None)
        await pilot.pause()
        [sent] = sim.state.sent
        assert sent.to == "41793026727" and "Accepted" in shown(dialog, "#send-result")
        assert override_audits(db_path) == [{"to": OPTED_OUT, "sandbox": "test",
                                             "opted_out_at": "2026-03-04T05:06:07.000+00:00",
                                             "our_message_id": sent.message_id, "via": "tui"}]
        assert not override.value  # one tick, one send


async def test_another_number_clears_the_override(db_path: Path, sim: SimulatorThread) -> None:
    shop_with_an_opt_out(db_path, sim)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "Shop", "t")
        assert isinstance(dialog, SendTestScreen)
        dialog.query_one("#send-to", Input).value = OPTED_OUT
        await pilot.press("f2")
        await wait_until(pilot, lambda: "refused" in shown(dialog, "#send-result") and not dialog.sending)
        await pilot.press("space")
        dialog.query_one("#send-to", Input).value = "+41793026729"  # never opted out: sent, not audited
        await pilot.pause()
        override = dialog.query_one("#send-override", Checkbox)
        assert not override.display and not override.value
        await pilot.press("f2")
        await wait_until(pilot, lambda: dialog.result is not None)
        assert [m.to for m in sim.state.sent] == ["41793026729"]
        assert override_audits(db_path) == []


# -- reachable by palette and help -----------------------------------------------------------

async def test_verify_and_test_sms_in_palette_and_help(db_path: Path, sim: SimulatorThread) -> None:
    add(db_path, "Good", sim.url, GOOD_KEY, sender="ShopUK")
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        provider = CredentialCommands(screen)
        [verify_hit] = [hit async for hit in provider.search("verify")]
        verify_hit.command()
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, VerifyScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(pilot.app.screen, VerifyScreen))
        [send_hit] = [hit async for hit in provider.search("test sms")]
        send_hit.command()
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SendTestScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(pilot.app.screen, SendTestScreen))
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        keys = dict(pilot.app.screen.keys)
        assert "Verify" in keys["v"] and "test sms" in keys["t"].lower()
