"""Each private Textual API smsdesk uses still exists and still means what smsdesk relies on.

When a Textual release changes one of them, this fails naming it (tui/textual_private.py), before
a screen silently stops being styled or a scrollbar stops scrolling.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from smsdesk.tui import textual_private


class _Probe(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("probe line", id="inner")


async def test_stylesheet_counter_is_on_app_and_screen() -> None:
    app = _Probe()
    async with app.run_test(size=(40, 6)):
        screen = Screen()
        assert isinstance(app._css_update_count, int), "App._css_update_count is gone"
        assert isinstance(screen._css_update_count, int), "Screen._css_update_count is gone"
        textual_private.mark_styled_already(screen, app)
        assert screen._css_update_count == app._css_update_count


async def test_notifications_are_listed() -> None:
    app = _Probe()
    async with app.run_test(size=(40, 6)) as pilot:
        app.notify("first note")
        await pilot.pause()
        assert textual_private.notification_texts(app) == ["first note"]


async def test_the_compositor_paints_lines_and_updates() -> None:
    app = _Probe()
    async with app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        lines = textual_private.screen_lines(app.screen)
        assert len(lines) == 6 and lines[0].startswith("probe line")
        assert textual_private.screen_update(app.screen) is not None
        segments = textual_private.screen_segments(app.screen)
        assert len(segments) == 6 and "".join(s.text for s in segments[0]).startswith("probe line")
        assert all(s.style is not None for s in segments[0])  # styled: what contrast is measured on


async def test_the_keymap_in_force_is_readable() -> None:
    app = _Probe()
    async with app.run_test(size=(40, 6)):
        assert textual_private.app_keymap(app) == {}
        app.set_keymap({"probe.go": "?"})
        assert textual_private.app_keymap(app) == {"probe.go": "question_mark"}  # long names, as normalised
