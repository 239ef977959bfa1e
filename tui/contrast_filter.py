"""The last word on contrast: every segment the app draws reads at 4.5:1 (WCAG AA), whatever the
theme, on true-colour and 256-colour terminals, and under NO_COLOR (issue 27).

Textual's built-in themes pair some colours below that (their text on `$panel`, a button's label
on `$error`, the table cursor's text on `$block-cursor-background`), and NO_COLOR turns a red
error into a dark grey on a dark grey. Fixing each widget's CSS per theme would be a list without
end; this filter runs after Textual's own (ANSI to true colour, Monochrome under NO_COLOR) on
every line of every widget, through the public `App.get_line_filters`, and moves a foreground
that does not read toward black or white (whichever reads better on its background) until it
does, keeping its hue as long as it can; where even black or white does not read, the background
is moved away from it too. `dim` is dropped where it would not read. A pair that reads is left
alone, and so are borders and blocks. Attributes (bold, italic, underline, reverse) are kept.

On an ANSI theme the 16 colours are the terminal's: a foreground that does not read (with
Textual's palette for them) becomes the one of black, white, bright white or the default that
reads; where none does, the pair becomes the terminal's default pair.
tests/tui/test_tui_contrast.py and tests/tui/test_tui_contrast_states.py measure it.
"""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import TerminalTheme
from textual.color import Color
from textual.filter import LineFilter

from smsdesk.tui.contrast import WCAG_AA, contrast, rgb_of

RGB = tuple[int, int, int]
RGB_SYSTEMS = (ColorSystem.TRUECOLOR, ColorSystem.EIGHT_BIT)
ANSI_CHOICES = ("default", "bright_white", "white", "black")
STEPS = 10


def _drawn(fg: RichColor, bg: RichColor, palette: TerminalTheme, system: ColorSystem, dim: bool) -> float:
    f = rgb_of(fg.downgrade(system), palette, foreground=True)
    b = rgb_of(bg.downgrade(system), palette, foreground=False)
    if dim:
        f = (round((f[0] + b[0]) / 2), round((f[1] + b[1]) / 2), round((f[2] + b[2]) / 2))
    return contrast(f, b)


def _worst(fg: RichColor, bg: RichColor, palette: TerminalTheme, systems: tuple[ColorSystem, ...],
           dim: bool = False) -> float:
    return min(_drawn(fg, bg, palette, system, dim) for system in systems)


def _toward(rgb: RGB, target: int, step: float) -> RichColor:
    r, g, b = (round(v + (target - v) * step) for v in rgb)
    return RichColor.from_rgb(r, g, b)


def _readable_pair(fg: RichColor, bg: RichColor, palette: TerminalTheme, ansi: bool
                   ) -> tuple[RichColor, RichColor]:
    """(foreground, background), the foreground moved (and if need be the background) to read."""
    if ansi and fg.triplet is None:
        # The terminal's own colours: the choice that reads best, by Textual's palette and in 16 colours.
        systems = (ColorSystem.TRUECOLOR, ColorSystem.STANDARD)
        choices = [RichColor.parse(name) for name in ANSI_CHOICES]
        best = max(choices, key=lambda c: _worst(c, bg, palette, systems))
        if _worst(best, bg, palette, systems) >= WCAG_AA:
            return best, bg
        # None reads on this colour (Textual's dark palette has no text for its red): the
        # terminal's own default pair, which reads by construction; reverse and bold remain.
        return RichColor.default(), RichColor.default()
    systems = RGB_SYSTEMS
    fg_rgb = rgb_of(fg, palette, foreground=True)
    bg_rgb = rgb_of(bg, palette, foreground=False)
    black, white = RichColor.from_rgb(0, 0, 0), RichColor.from_rgb(255, 255, 255)
    target = 255 if _worst(white, bg, palette, systems) >= _worst(black, bg, palette, systems) else 0
    for step in range(1, STEPS + 1):
        candidate = _toward(fg_rgb, target, step / STEPS)
        if _worst(candidate, bg, palette, systems) >= WCAG_AA:
            return candidate, bg
    # Not even black or white reads on this background (a mid grey): move it away as well.
    extreme = white if target == 255 else black
    for step in range(1, STEPS + 1):
        background = _toward(bg_rgb, 255 - target, step / STEPS)
        if _worst(extreme, background, palette, systems) >= WCAG_AA:
            return extreme, background
    return extreme, RichColor.from_rgb(*((0,) * 3 if target == 255 else (255,) * 3))


@lru_cache(4096)
def readable_style(style: Style, background: RichColor, palette: TerminalTheme, ansi: bool) -> Style:
    """`style` as drawn on `background` (its own background first), made to read (see above)."""
    if style.color is None and style.bgcolor is None:
        return style  # the terminal's own default pair
    slot_fg = style.color or RichColor.default()
    slot_bg = style.bgcolor or background
    fg, bg = (slot_bg, slot_fg) if style.reverse else (slot_fg, slot_bg)  # as drawn
    systems = (ColorSystem.TRUECOLOR,) if ansi else RGB_SYSTEMS
    if _worst(fg, bg, palette, systems, dim=bool(style.dim)) >= WCAG_AA:
        return style
    fixed = style + Style(dim=False) if style.dim else style
    if _worst(fg, bg, palette, systems) >= WCAG_AA:
        return fixed  # only the dimming took it below
    new_fg, new_bg = _readable_pair(fg, bg, palette, ansi)
    if style.reverse:
        new_fg, new_bg = new_bg, new_fg  # back into the style's slots
    moved_bg = style.bgcolor is not None or new_bg != slot_bg
    return fixed + Style(color=new_fg, bgcolor=new_bg if moved_bg else None)


class ReadableFilter(LineFilter):
    """Applies `readable_style` to every segment (cached per style and background)."""

    def __init__(self, palette: TerminalTheme, ansi: bool, enabled: bool = True) -> None:
        super().__init__(enabled)
        self.palette = palette
        self.ansi = ansi

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        back = background.rich_color
        palette, ansi = self.palette, self.ansi
        return [Segment(text, readable_style(style, back, palette, ansi), control)
                if style is not None and not control and is_text(text) else Segment(text, style, control)
                for text, style, control in segments]


@lru_cache(4096)
def is_text(cells: str) -> bool:
    """Something to read: not only blanks, box lines and blocks (borders, separators, scrollbars
    and sparklines keep the theme's colours; WCAG asks 3:1 of those, not 4.5:1)."""
    return any(not ch.isspace() and not 0x2500 <= ord(ch) <= 0x259F for ch in cells)
