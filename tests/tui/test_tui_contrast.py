"""Readable in every terminal (issue 14), measured: every action and reply state in the log, the
cursor row and the error line, under the default dark theme, the light theme, NO_COLOR and the
16-colour themes. The WCAG contrast ratio of each drawn foreground against its drawn background
(the segments the compositor sends, after Textual's colour filters) must be at least 4.5:1.

ANSI colours (the 16-colour themes) are resolved with the palette Textual itself uses for them
(`App.ansi_theme`); a terminal with another palette draws other colours.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.color import Color, ColorSystem
from rich.style import Style
from rich.terminal_theme import TerminalTheme

from smsdesk.domain.credential import Credential
from smsdesk.store.credentials import get_credential, update_credential
from smsdesk.store.db import connect
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.textual_private import screen_segments
from smsdesk.tui.vocabulary import ACTIONS, REPLY_STATUSES
from smsdesk.tui.widgets.message_log import layout
from tests.support.live import ALICE, SHOP, inbound, seed_db, store, wait_until

SIZE = (80, 24)
WCAG_AA = 4.5
THEMES = ("textual-dark", "textual-light", "ansi-dark", "ansi-light")


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def drawn(style: Style, palette: TerminalTheme, system: ColorSystem = ColorSystem.TRUECOLOR
          ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(foreground, background) as the terminal paints them: reverse swaps, dim halves; on a
    256-colour terminal each colour is first the nearest of its palette (Rich's downgrade)."""
    fg_color = (style.color or Color.default()).downgrade(system)
    bg_color = (style.bgcolor or Color.default()).downgrade(system)
    fg = tuple(fg_color.get_truecolor(palette, foreground=True))
    bg = tuple(bg_color.get_truecolor(palette, foreground=False))
    if style.reverse:
        fg, bg = bg, fg
    if style.dim:
        fg = tuple((f + b) // 2 for f, b in zip(fg, bg, strict=True))
    return fg, bg  # type: ignore[return-value]


@dataclass
class Cell:
    column: str
    word: str
    style: Style
    cursor: bool


def log_cells(app: SmsDeskApp) -> list[Cell]:
    """Every column cell of every log row on screen, with the style it is drawn in."""
    screen = app.screen
    assert isinstance(screen, LogScreen)
    log = screen.log_view
    region = log.scrollable_content_region  # not the scrollbars
    lines = screen_segments(screen)
    columns = layout(log.content_width, log.widths)
    cells = []
    for y in range(region.y, region.y + region.height):
        row = log.scroll_offset.y + (y - region.y)
        if row >= log.total:
            break
        chars: list[tuple[str, Style]] = []
        for segment in lines[y]:
            chars.extend((ch, segment.style or Style()) for ch in segment.text)  # 1 cell each here
        chars = chars[:region.x + log.content_width]  # not the scrollbar
        x = region.x
        for name, width in columns:
            part = chars[x:x + width]
            x += width
            word = "".join(ch for ch, _ in part).strip()
            styles = [st for ch, st in part if ch.strip()]
            if word:
                cells.append(Cell(name, word, styles[0], row == log.cursor))
    return cells


def every_action_and_status(path: Path) -> Path:
    """The seed (every stored action), near misses (one answered, `near-opt-out`; one waiting in
    the review queue, shown as `review`), and one reply in each state."""
    seed_db(path)
    store(path, *(inbound(ALICE, SHOP, f"hello {i}") for i in range(len(REPLY_STATUSES))))
    for mode, text in (("reply", "STOPP"), ("review", "STPO")):
        set_fuzzy_mode(path, mode)
        store(path, inbound(ALICE, SHOP, text))
    db = connect(path)
    with db.conn:
        ids = [r[0] for r in db.conn.execute(
            "SELECT o.id FROM outbox o JOIN messages m ON m.id = o.message_row_id WHERE m.text LIKE 'hello %' "
            "ORDER BY o.id")]
        for outbox_id, status in zip(ids, REPLY_STATUSES, strict=True):
            db.conn.execute("UPDATE outbox SET status = ? WHERE id = ?", (status, outbox_id))
    db.close()
    return path


def set_fuzzy_mode(path: Path, mode: str) -> None:
    db = connect(path)
    try:
        cred = get_credential(db, "Shop")
        changed = Credential.model_validate(cred.to_credential().model_dump(mode="json") | {"fuzzy_opt_out": mode})
        update_credential(db, cred.id, changed, cred.version)
    finally:
        db.close()


async def measure(db_path: Path, theme: str) -> tuple[list[str], dict[str, Style], dict[str, Style]]:
    """Problems found (each one line), and the style each action and reply state was drawn in."""
    problems: list[str] = []
    seen_problems: set[str] = set()
    actions: dict[str, Style] = {}
    statuses: dict[str, Style] = {}
    app = SmsDeskApp(db_path, initial_mode="log", theme=theme, poll_seconds=30)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log = screen.log_view
        await wait_until(pilot, lambda: log.loaded and log.total >= 19, what="log")
        palette = app.ansi_theme

        def check(where: str, style: Style) -> None:
            # RGB themes are also drawn on 256-colour terminals; ANSI themes use the 16 colours.
            systems = ((ColorSystem.TRUECOLOR, ""), (ColorSystem.EIGHT_BIT, " (256 colours)"))
            for system, label in systems if theme.startswith("textual") else systems[:1]:
                fg, bg = drawn(style, palette, system)
                ratio = contrast(fg, bg)
                if ratio < WCAG_AA and where + label not in seen_problems:
                    seen_problems.add(where + label)
                    problems.append(f"{theme}: {where}{label} {ratio:.2f}:1 (fg {fg} on bg {bg})")

        seen: set[int] = set()
        for _ in range(log.total):
            await pilot.pause()
            while not all(log.scroll_offset.y + i in log._rows
                          for i in range(min(log.size.height, log.total - log.scroll_offset.y))):
                await pilot.pause(0.02)
            await pilot.pause()
            for cell in log_cells(app):
                word = cell.word if cell.column in ("action", "reply") else "text"
                where = f"{cell.column} {word!r}{' (cursor row)' if cell.cursor else ''}"
                check(where, cell.style)
                if not cell.cursor:
                    if cell.column == "action":
                        actions.setdefault(cell.word, cell.style)
                    elif cell.column == "reply" and cell.word != "-":
                        statuses.setdefault(cell.word, cell.style)
                if cell.cursor:
                    seen.add(log.cursor)
                    _fg, bg = drawn(cell.style, palette)
                    r, g, b = (v / 255 for v in bg)
                    hue, _light, saturation = colorsys.rgb_to_hls(r, g, b)
                    if saturation > 0.35 and (hue < 0.05 or hue > 0.95) and cell.column == "time":
                        problems.append(f"{theme}: the cursor row is drawn on red {bg}, the colour of errors")
            await pilot.press("down")
        assert len(seen) == log.total  # the cursor visited every row
        # The error line under the tab line (a failed read).
        screen.show_problem("could not read the database: database is locked (retrying)")
        await pilot.pause()
        problem = screen.query_one("#view-problem")
        y = problem.content_region.y
        for segment in screen_segments(screen)[y]:
            if segment.text.strip() and segment.style is not None:
                check(f"error line {segment.text.strip()[:20]!r}", segment.style)
    return problems, actions, statuses


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
async def test_every_action_status_cursor_and_error_reads_at_4_5_to_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, theme: str, no_color: bool) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    db_path = every_action_and_status(tmp_path / "smsdesk.db")
    problems, actions, statuses = await measure(db_path, theme)
    assert set(actions) == set(ACTIONS) and set(statuses) == set(REPLY_STATUSES)  # all of them measured
    assert not problems, "\n".join(problems)
    if no_color:
        # Colour absent: each action still looks like no other (weight, slant, underline, reverse).
        looks = {a: (s.bold, s.italic, s.underline, s.reverse) for a, s in actions.items()}
        assert len(set(looks.values())) == len(looks), looks
