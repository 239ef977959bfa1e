"""SVG snapshots at 80x24, the size the app must work at over SSH.

Update after a deliberate visual change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from smsdesk.domain.credential import StoredCredential
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.credentials import CredentialsScreen

SIZE = (80, 24)


async def _loaded(pilot: Pilot[None]) -> CredentialsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, CredentialsScreen)
    for _ in range(200):
        if screen.loaded:
            break
        await pilot.pause(0.02)
    busy = [w for w in pilot.app.workers if w.group != "default"]
    if busy:
        await pilot.app.workers.wait_for_complete(busy)
    await pilot.pause()
    return screen


@pytest.fixture
def credentials_app(db_path: Path, sample_credentials: list[StoredCredential], no_cursor_blink: None) -> SmsDeskApp:
    # A long poll interval: nothing changes underneath a snapshot anyway, and fewer timers
    # firing mid-capture keeps runs identical.
    return SmsDeskApp(db_path, poll_seconds=30)


def test_credentials_list(snap_compare: Callable[..., bool], credentials_app: SmsDeskApp) -> None:
    assert snap_compare(credentials_app, terminal_size=SIZE, run_before=_loaded)


def test_credentials_list_revealed_and_filtered(
    snap_compare: Callable[..., bool], credentials_app: SmsDeskApp
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _loaded(pilot)
        await pilot.press("r", "slash", *"shop")
        await pilot.pause()

    assert snap_compare(credentials_app, terminal_size=SIZE, run_before=run_before)


def test_credential_edit_form(snap_compare: Callable[..., bool], credentials_app: SmsDeskApp) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _loaded(pilot)
        await pilot.press("down", "e")  # "Shop UK": has an inbound number and an opt-out message
        await pilot.pause()
        assert isinstance(pilot.app.screen, CredentialEditScreen)

    assert snap_compare(credentials_app, terminal_size=SIZE, run_before=run_before)


def test_credential_new_form_with_errors(snap_compare: Callable[..., bool], credentials_app: SmsDeskApp) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _loaded(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-name", Input).value = "Promo"
        form.query_one("#f-base_url", Input).value = "ftp://promo.example.com"
        await pilot.press("f2")  # a save attempt shows every field's problem
        await pilot.pause()

    assert snap_compare(credentials_app, terminal_size=SIZE, run_before=run_before)
