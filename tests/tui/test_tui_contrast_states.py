"""Readable, measured (issue 27): every widget that shows an error or a state, under every theme
the app offers, on 16-colour terminals and under NO_COLOR, reads at 4.5:1 (WCAG AA).

Measured on what is drawn (the compositor's segments, after Textual's colour filters), widget by
widget: the form's field errors and status line, the discard question (a dialog), the Test SMS
refusal, the opt-out dialog's error, the review view, the problem line and a filter's error.

The RGB themes are measured in true colour and on 256 colours (each colour the nearest of the
palette); the ANSI themes in the 16 colours, with the palette Textual uses for them
(`App.ansi_theme`). A 16-colour terminal gets an ANSI theme whatever theme was chosen
(tui/terminal_colours.py), so every theme under 16 colours is one of the two ANSI themes,
measured here. The opt-out word must not be drawn red, the colour of errors: not in the ANSI
themes, and not even where an RGB theme is forced onto 16 colours.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.style import Style
from textual.theme import BUILTIN_THEMES
from textual.widget import Widget
from textual.widgets import Input

from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.confirm import ConfirmScreen
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.opt_out import OptOutScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.screens.send_test import SendTestScreen
from smsdesk.tui.terminal_colours import theme_for_terminal
from smsdesk.tui.textual_private import screen_segments
from tests.support.live import ALICE, BOB, SHOP, inbound, seed_db, store, wait_until
from tests.tui.test_tui_contrast import WCAG_AA, contrast, drawn, set_fuzzy_mode

SIZE = (80, 24)
THEMES = tuple(BUILTIN_THEMES)  # every theme the settings accept (tui/config.py)
RGB_SYSTEMS = ((ColorSystem.TRUECOLOR, ""), (ColorSystem.EIGHT_BIT, " (256 colours)"))


def states_db(path: Path) -> Path:
    """The seed (BOB opted out: a Test SMS to him is refused) and a near miss in review."""
    seed_db(path)
    set_fuzzy_mode(path, "review")
    store(path, inbound(ALICE, SHOP, "STPO"))
    return path


def text_in(cells: str) -> bool:
    """Whether `cells` hold something to read: not only blanks, box lines and blocks (a border or
    a button's edge is drawn in a colour of its own, not read)."""
    return any(not ch.isspace() and not 0x2500 <= ord(ch) <= 0x259F for ch in cells)


class Meter:
    def __init__(self, app: SmsDeskApp, theme: str) -> None:
        self.app = app
        self.theme = theme
        self.problems: list[str] = []
        self.measured: set[str] = set()
        ansi = BUILTIN_THEMES[theme].ansi
        self.systems = ((ColorSystem.TRUECOLOR, ""),) if ansi else RGB_SYSTEMS

    def style_problems(self, where: str, style: Style) -> None:
        for system, label in self.systems:
            fg, bg = drawn(style, self.app.ansi_theme, system)
            ratio = contrast(fg, bg)
            if ratio < WCAG_AA:
                self.problems.append(f"{self.theme}: {where}{label} {ratio:.2f}:1 (fg {fg} on bg {bg})")

    def widget(self, where: str, widget: Widget) -> None:
        """Every visible character inside the widget's region, once per distinct style."""
        region = widget.region
        assert region.area, f"{where} is not on screen"
        lines = screen_segments(self.app.screen)
        seen: set[Style] = set()
        text = ""
        for y in range(region.y, min(region.bottom, len(lines))):
            x = 0
            for segment in lines[y]:
                end = x + cell_len(segment.text)
                inside = segment.text[max(0, region.x - x):max(0, region.right - x)]
                x = end
                style = segment.style or Style()
                if not text_in(inside) or style in seen:
                    continue
                seen.add(style)
                text += inside
                self.style_problems(f"{where} {inside.strip()[:24]!r}", style)
        assert text.strip(), f"{where} shows nothing"
        self.measured.add(where)


async def measure_states(db: Path, theme: str) -> Meter:
    app = SmsDeskApp(db, theme=theme, poll_seconds=30)
    meter = Meter(app, theme)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        # The form: a save attempt shows each field's error and the status line counts them.
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-name", Input).value = "Promo"
        form.query_one("#f-base_url", Input).value = "ftp://promo.example.com"
        await pilot.press("f2")
        await pilot.pause()
        notes = [n for n in form.query(".field-note").results(Widget) if n.display and "✗" in str(n.render())]
        assert notes, "no field error shown"
        for note in notes[:3]:
            meter.widget(f"field error {note.id}", note)
        meter.widget("form status", form.query_one("#edit-status"))
        await pilot.press("escape")  # edits made: asks before throwing them away
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the discard question")
        meter.widget("dialog", app.screen.query_one("#confirm-dialog"))
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, (ConfirmScreen, CredentialEditScreen)),
                         what="the form closed")
        # The Test SMS refusal: BOB opted out.
        await pilot.press("down", "t")
        await wait_until(pilot, lambda: isinstance(app.screen, SendTestScreen), what="the Test SMS dialog")
        send = app.screen
        send.query_one("#send-to", Input).value = BOB
        await pilot.press("f2")
        await wait_until(pilot, lambda: "Not sent" in str(send.query_one("#send-result").render()),
                         what="the refusal")
        await pilot.pause()
        meter.widget("Test SMS refusal", send.query_one("#send-result"))
        await pilot.press("escape")
        # The opt-out dialog's error: no reason given.
        await pilot.press("3")
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", True) and bool(app.screen.query("DataTable"))
                         and app.screen.query_one("DataTable").row_count > 0, what="profiles")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, OptOutScreen), what="the opt-out dialog")
        await pilot.press("f2")
        reason = app.screen.query_one("#opt-out-error")
        await wait_until(pilot, lambda: reason.region.height > 0, what="the opt-out dialog's error")
        meter.widget("opt-out dialog error", reason)
        await pilot.press("escape")
        # The review view, and the problem line over it.
        await pilot.press("5")
        await wait_until(pilot, lambda: isinstance(app.screen, ReviewScreen) and bool(app.screen.items),
                         what="the review queue")
        review = app.screen
        meter.widget("review rows", review.query_one("#review-table"))
        meter.widget("review status", review.query_one("#review-status"))
        review.show_problem("could not read the database: database is locked (retrying)")
        await pilot.pause()
        meter.widget("problem line", review.query_one("#view-problem"))
        # A filter's error.
        await pilot.press("2")
        await wait_until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_view.loaded, what="log")
        log = app.screen
        await pilot.press("slash", *"action:zzz")
        error = log.query_one(".filter-error")
        await wait_until(pilot, lambda: "✗" in str(error.render()) and error.region.height > 0, what="filter error")
        meter.widget("filter error", log.query_one(".filter-error"))
        opt_out_in_16_colours(meter, log)
    return meter


def is_red(rgb: tuple[int, int, int]) -> bool:
    hue, light, saturation = colorsys.rgb_to_hls(*(v / 255 for v in rgb))
    return saturation > 0.35 and 0.15 < light < 0.9 and (hue < 0.04 or hue > 0.93)


def opt_out_in_16_colours(meter: Meter, log: LogScreen) -> None:
    """The log's opt-out word (and the traffic strip's) on a 16-colour terminal: not red."""
    for line in screen_segments(log)[:log.log_view.region.bottom]:
        for segment in line:
            if segment.text.strip() == "opt-out" and segment.style is not None:
                fg, bg = drawn(segment.style, meter.app.ansi_theme, ColorSystem.STANDARD)
                colour = bg if segment.style.reverse else fg
                if is_red(colour):
                    meter.problems.append(f"{meter.theme}: opt-out drawn in red {colour} on 16 colours")
                meter.measured.add("opt-out")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
async def test_every_error_and_state_reads_at_4_5_to_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme: str, no_color: bool) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    meter = await measure_states(states_db(tmp_path / "smsdesk.db"), theme)
    assert {"form status", "dialog", "Test SMS refusal", "opt-out dialog error", "review rows", "review status",
            "problem line", "filter error"} <= meter.measured
    assert any(m.startswith("field error") for m in meter.measured)
    assert "opt-out" in meter.measured
    assert not meter.problems, "\n".join(dict.fromkeys(meter.problems))


@pytest.mark.parametrize("theme", [None, *THEMES])
def test_a_16_colour_terminal_gets_an_ansi_theme(theme: str | None) -> None:
    """TERM=xterm or screen without COLORTERM (tmux's default): the ANSI theme of the same lightness."""
    dark = BUILTIN_THEMES[theme or "textual-dark"].dark
    for environ in ({"TERM": "xterm"}, {"TERM": "screen"},
                    {"TERM": "xterm-256color", "TEXTUAL_COLOR_SYSTEM": "standard"}):
        chosen = theme_for_terminal(theme, environ)
        assert chosen is not None and BUILTIN_THEMES[chosen].ansi, (theme, environ, chosen)
        assert BUILTIN_THEMES[chosen].dark == dark
    for environ in ({"TERM": "xterm-256color"}, {"TERM": "xterm", "COLORTERM": "truecolor"},
                    {"TERM": "xterm", "TEXTUAL_COLOR_SYSTEM": "truecolor"}):
        assert theme_for_terminal(theme, environ) == theme  # more colours: the theme as chosen
