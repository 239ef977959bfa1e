"""Steps several TUI tests take the same way (snapshot and Pilot tests alike)."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Select

from smsdesk.tui.screens.tester import TesterScreen
from tests.support.live import wait_until


async def type_in_tester(pilot: Pilot[None], text: str = "Stop please!", credential: str = "Shop") -> None:
    """On the keyword tester: pick `credential` once the list is loaded, then type `text`."""
    screen = pilot.app.screen
    assert isinstance(screen, TesterScreen)
    await wait_until(pilot, lambda: bool(screen.credentials), what="credentials loaded")
    chosen = next(c.id for c in screen.credentials.values() if c.name == credential)
    screen.query_one("#tester-credential", Select).value = chosen
    screen.query_one("#tester-text", Input).focus()
    await pilot.press(*text)


async def field_on_the_last_line(pilot: Pilot[None], form: Screen, field: str) -> Select:
    """Focus the edit form's dropdown `field` and scroll it to the frame's last line, where a
    dropdown has no room below it; the Select."""
    select = form.query_one(f"#f-{field}", Select)
    fields = form.query_one("#edit-fields")
    select.focus()
    await pilot.pause(0.5)

    def on_last_line() -> bool:
        bottom = select.region.y - fields.region.y + fields.scroll_offset.y - (fields.region.height - 1)
        fields.scroll_to(y=bottom, animate=False, immediate=True)
        return select.region.y == fields.region.bottom - 1

    await wait_until(pilot, on_last_line, what="the field on the frame's last line")
    return select
