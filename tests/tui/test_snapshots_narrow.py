"""SVG snapshots at 60x20 of each main view and the form, and at 80x24 of what used to be cut or
drawn out of place (issue 27, point 5): the review queue's empty state, a filter's error, a
dropdown at the bottom of the form.

Update after a deliberate visual change with `pytest tests/tui/test_snapshots_narrow.py
--snapshot-update`, and look at the SVGs first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.widgets.traffic import TrafficStrip
from tests.support.live import ALICE, SHOP, inbound, seed_db, store, wait_until
from tests.support.tui_steps import field_on_the_last_line, type_in_tester
from tests.tui.test_snapshots_live import FixedClockApp
from tests.tui.test_tui_contrast import set_fuzzy_mode

NARROW = (60, 20)
SIZE = (80, 24)


@pytest.fixture
def snap_db(tmp_path: Path) -> Path:
    return seed_db(tmp_path / "smsdesk.db", stored_at_received=True)


@pytest.fixture
def review_db(snap_db: Path) -> Path:
    set_fuzzy_mode(snap_db, "review")
    store(snap_db, inbound(ALICE, SHOP, "please stop texting me", "2025-01-15T09:20:00.000+00:00"))
    return snap_db


async def _settle(pilot: Pilot[None]) -> None:
    busy = [w for w in pilot.app.workers if w.is_running]
    if busy:
        await pilot.app.workers.wait_for_complete(busy)
    await pilot.pause()


async def _credentials(pilot: Pilot[None]) -> None:
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False), what="credentials")
    await _settle(pilot)


async def _log(pilot: Pilot[None]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, LogScreen)
    await wait_until(pilot, lambda: screen.log_view.loaded and screen.query_one(TrafficStrip).latest is not None
                     and "replies" in str(screen.query_one("#log-status").render()), what="log ready")
    await _settle(pilot)


async def _form(pilot: Pilot[None]) -> None:
    await _credentials(pilot)
    await pilot.press("down", "e")  # Shop
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, CredentialEditScreen), what="the form")
    await _form_settle(pilot)


async def _form_settle(pilot: Pilot[None]) -> None:
    """The form validates as it is drawn (no worker to wait for; the list's poll behind it never ends)."""
    await pilot.pause(0.3)
    await pilot.pause()


def test_credentials_at_60x20(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    assert snap_compare(SmsDeskApp(snap_db, poll_seconds=30), terminal_size=NARROW, run_before=_credentials)


def test_log_at_60x20(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    assert snap_compare(FixedClockApp(snap_db, initial_mode="log", poll_seconds=30), terminal_size=NARROW,
                        run_before=_log)


def test_profiles_at_60x20(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: pilot.app.screen.query_one(DataTable).row_count == 5, what="profiles")
        await _settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, initial_mode="profiles", poll_seconds=30), terminal_size=NARROW,
                        run_before=run_before)


def test_tester_at_60x20(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await type_in_tester(pilot)
        await _settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, initial_mode="tester", poll_seconds=30), terminal_size=NARROW,
                        run_before=run_before)


def test_review_at_60x20(snap_compare: Callable[..., bool], review_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, ReviewScreen)
        await wait_until(pilot, lambda: bool(screen.items), what="the near miss")
        await _settle(pilot)

    assert snap_compare(SmsDeskApp(review_db, initial_mode="review", poll_seconds=30), terminal_size=NARROW,
                        run_before=run_before)


def test_form_at_60x20(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    assert snap_compare(SmsDeskApp(snap_db, poll_seconds=30), terminal_size=NARROW, run_before=_form)


def test_form_with_errors_at_60x20(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    """The status line wraps: both fields named."""
    async def run_before(pilot: Pilot[None]) -> None:
        await _credentials(pilot)
        await pilot.press("n")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-name", Input).value = "Promo"
        form.query_one("#f-base_url", Input).value = "ftp://promo.example.com"
        await pilot.press("f2")
        await _form_settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, poll_seconds=30), terminal_size=NARROW, run_before=run_before)


def test_review_empty_state(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: "Nothing to review" in str(pilot.app.screen.query_one("#review-status")
                                                                   .render()), what="the empty state")
        await _settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, initial_mode="review", poll_seconds=30), terminal_size=SIZE,
                        run_before=run_before)


def test_log_filter_error(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await _log(pilot)
        await pilot.press("slash", *"action:zzz")
        await wait_until(pilot, lambda: "✗" in str(pilot.app.screen.query_one(".filter-error").render()),
                         what="the filter error")
        await _settle(pilot)

    assert snap_compare(FixedClockApp(snap_db, initial_mode="log", poll_seconds=30), terminal_size=SIZE,
                        run_before=run_before)


def test_dropdown_at_the_bottom_of_the_form(snap_compare: Callable[..., bool], snap_db: Path,
                                            no_cursor_blink: None) -> None:
    """The fuzzy opt-out's dropdown, its field on the frame's last line: it opens above the edit bar."""
    async def run_before(pilot: Pilot[None]) -> None:
        await _form(pilot)
        await field_on_the_last_line(pilot, pilot.app.screen, "fuzzy_opt_out")
        await pilot.press("enter")
        await _form_settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, poll_seconds=30), terminal_size=SIZE, run_before=run_before)
