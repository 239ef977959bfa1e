"""SVG snapshots of the live views at 80x24 on fixed data.

Stable by construction: the seed messages have fixed receive times, `stored_at` is pinned to
them, and the traffic strip is given a fixed clock (`LogScreen(clock=...)`), so its sparkline
and "today" counts do not depend on when the test runs. Update after a deliberate visual change
with `pytest tests/tui/test_snapshots_live.py --snapshot-update`, and look at the SVGs first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input

import smsdesk.tui.app as app_module
from smsdesk.tui.app import SmsDeskApp, View
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.profiles import ProfilesScreen
from smsdesk.tui.widgets.traffic import TrafficStrip
from tests.support.live import FIXED_NOW, seed_db, wait_until
from tests.support.tui_steps import type_in_tester

SIZE = (80, 24)


def _fixed_clock_log(app: SmsDeskApp) -> Screen:
    return LogScreen(app.data, clock=lambda: FIXED_NOW)


class FixedClockApp(SmsDeskApp):
    """The real app; only its log view's traffic strip reads a fixed clock."""

    CSS_PATH = str(Path(app_module.__file__).parent / SmsDeskApp.CSS_PATH)  # relative to tui/, not tests/

    VIEWS = tuple(View(v.mode, v.key, v.title, _fixed_clock_log) if v.mode == "log" else v
                  for v in SmsDeskApp.VIEWS)


@pytest.fixture
def snap_db(tmp_path: Path) -> Path:
    return seed_db(tmp_path / "smsdesk.db", stored_at_received=True)


async def _settle(pilot: Pilot[None]) -> None:
    busy = [w for w in pilot.app.workers if w.is_running]
    if busy:
        await pilot.app.workers.wait_for_complete(busy)
    await pilot.pause()


def test_live_log(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, LogScreen)
        strip = screen.query_one(TrafficStrip)
        await wait_until(pilot, lambda: screen.log_view.loaded and strip.latest is not None
                         and "time" in str(screen.query_one("#log-header").render())
                         and "replies" in str(screen.query_one("#log-status").render()), what="log ready")
        await _settle(pilot)

    assert snap_compare(FixedClockApp(snap_db, initial_mode="log"), terminal_size=SIZE, run_before=run_before)


def test_live_log_paused_with_filter(snap_compare: Callable[..., bool], snap_db: Path,
                                     no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.query_one(TrafficStrip).latest is not None
                         and "replies" in str(screen.query_one("#log-status").render()), what="log ready")
        await pilot.press("slash")
        screen.query_one("#log-filter", Input).value = "cred:Shop"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.log_view.total == 5, what="filtered")
        await pilot.press("down")
        await wait_until(pilot, lambda: "PAUSED" in str(screen.query_one("#log-status").render()), what="paused")
        await _settle(pilot)

    assert snap_compare(FixedClockApp(snap_db, initial_mode="log"), terminal_size=SIZE, run_before=run_before)


def test_live_log_oldest_first(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    """`s`: the oldest message on top, the status line says so and how to go back."""
    async def run_before(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.query_one(TrafficStrip).latest is not None
                         and "replies" in str(screen.query_one("#log-status").render()), what="log ready")
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.log_view.loaded and screen.log_view.oldest_first
                         and "OLDEST FIRST" in str(screen.query_one("#log-status").render()), what="oldest first")
        await _settle(pilot)

    assert snap_compare(FixedClockApp(snap_db, initial_mode="log"), terminal_size=SIZE, run_before=run_before)


def test_profiles(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        assert isinstance(screen, ProfilesScreen)
        await wait_until(pilot, lambda: screen.query_one(DataTable).row_count == 5, what="profiles loaded")
        await _settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, initial_mode="profiles"), terminal_size=SIZE, run_before=run_before)


def test_tester_with_a_typed_message(snap_compare: Callable[..., bool], snap_db: Path,
                                     no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await type_in_tester(pilot)
        await _settle(pilot)

    assert snap_compare(SmsDeskApp(snap_db, initial_mode="tester"), terminal_size=SIZE, run_before=run_before)


# ---- readable in every terminal (issue 14): no colour, and 16 colours -----------------------------

async def _log_ready(pilot: Pilot[None]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, LogScreen)
    await wait_until(pilot, lambda: screen.log_view.loaded and screen.query_one(TrafficStrip).latest is not None
                     and "replies" in str(screen.query_one("#log-status").render()), what="log ready")
    await pilot.press("down", "down")  # the cursor on a row: it must stay readable too
    await _settle(pilot)


def test_live_log_without_colour(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR=1: each action keeps its own weight, slant, underline or reverse."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(FixedClockApp(snap_db, initial_mode="log"), terminal_size=SIZE, run_before=_log_ready)


def test_live_log_in_16_colours(snap_compare: Callable[..., bool], snap_db: Path, no_cursor_blink: None) -> None:
    """The ANSI theme (what TERM=xterm gets): borders and accents are not the red of errors."""
    assert snap_compare(FixedClockApp(snap_db, initial_mode="log", theme="ansi-dark"), terminal_size=SIZE,
                        run_before=_log_ready)


def test_credentials_in_16_colours_light(snap_compare: Callable[..., bool], snap_db: Path,
                                         no_cursor_blink: None) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False), what="credentials")
        await _settle(pilot)

    assert snap_compare(FixedClockApp(snap_db, theme="ansi-light"), terminal_size=SIZE, run_before=run_before)
