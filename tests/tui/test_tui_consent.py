"""Consent in the TUI, through the real app at 80x24 on a real SQLite file: Profiles `o` opts a
number out by hand (a call, an email; the ledger keeps the reason and the OS user), and a
receivedAt the receiver did not believe is flagged in the log and the message detail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from smsdesk.store.consent_audit import verify_consent
from smsdesk.store.consent_history import digest_of
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.message_detail import MessageDetailScreen
from smsdesk.tui.screens.opt_out import OptOutScreen
from smsdesk.tui.screens.profiles import ProfileDetailScreen, ProfilesScreen
from tests.support.live import ALICE, SHOP, inbound, screen_text, seed_db, store, wait_until
from tests.support.store import rows

SIZE = (80, 24)


async def test_o_opts_the_highlighted_number_out_with_a_reason(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) >= 2, what="profiles")
        target = next(p for p in profiles.profiles if p.consent == "y")
        await pilot.press("/")
        await pilot.press(*f"sandbox:{target.sandbox} num:{target.number.lstrip('+')}", "enter")
        await wait_until(pilot, lambda: [p.number for p in profiles.profiles] == [target.number], what="filtered")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, OptOutScreen), what="the dialog")
        dialog = app.screen
        await pilot.press("f2")  # no reason yet: refused, said in the dialog
        assert isinstance(app.screen, OptOutScreen)
        assert "Give the reason" in str(dialog.query_one("#opt-out-error", Static).render())
        dialog.query_one("#opt-out-reason", Input).value = "phone call to support"
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen), what="back on the list")
        await wait_until(pilot, lambda: [p.consent for p in profiles.profiles] == ["n"], what="consent n shown")
    [(old, new, effect, cause, reason)] = rows(
        db, "SELECT old, new, effect, cause, reason FROM consent_ledger WHERE cause = 'operator'")
    assert (old, new, effect, cause) == (target.consent, "n", "changed", "operator")
    assert reason.endswith("phone call to support")
    conn = sqlite3.connect(db)
    assert verify_consent(conn).ok
    conn.close()


async def test_esc_cancels_and_records_nothing(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        profiles = app.screen
        await wait_until(pilot, lambda: len(profiles.profiles) >= 1, what="profiles")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, OptOutScreen), what="the dialog")
        await pilot.press(*"call", "escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen), what="back on the list")
    assert rows(db, "SELECT COUNT(*) FROM consent_ledger WHERE cause = 'operator'") == [(0,)]


async def test_a_receivedat_ahead_of_the_clock_is_flagged_in_the_log_and_the_detail(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    store(db, inbound(ALICE, SHOP, "START from the future", "2099-01-01T00:00:00.000+00:00"))
    [(decided_at,)] = rows(db, "SELECT decided_at FROM messages WHERE received_at LIKE '2099%'")
    assert decided_at.startswith("20")
    app = SmsDeskApp(db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log = screen.log_view
        await wait_until(pilot, lambda: log.loaded and log.cursor_row is not None, what="the log")
        assert "!" + decided_at[11:16] in screen_text(pilot)  # the newest row, at the top
        assert log.cursor_row.text == "START from the future"
        await pilot.press("enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, MessageDetailScreen)
        shown = str(detail.query_one("#message-detail", Static).render())
        assert "Received 2099-01-01T00:00:00.000+00:00" in shown
        assert f"Clock receivedAt is ahead of the receiver's clock: consent decided at its arrival, {decided_at}" \
            in shown


async def test_x_in_a_profile_writes_its_evidence_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    app = SmsDeskApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) >= 1, what="profiles")
        first = profiles.profiles[0]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileDetailScreen), what="the profile")
        await pilot.press("x")
        await wait_until(pilot, lambda: any(out.iterdir()), what="the evidence file")
    [written] = list(out.iterdir())
    assert written.name.startswith("smsdesk-evidence-") and written.stat().st_mode & 0o777 == 0o600
    record = json.loads(written.read_text())
    assert (record["sandbox"], record["number"]) == (first.sandbox, first.number)
    assert record["digest"] == "sha256:" + digest_of(record)
