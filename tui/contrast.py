"""Colours that read: the WCAG contrast ratio, and a foreground chosen to reach 4.5:1 (WCAG AA)
against the background it is drawn on, whatever the theme.

The log's action and reply colours, and the colours of errors and states (field errors, status
lines, results: tui/contrast_filter.py lifts what is drawn), are hints (the word or the ✗ is always there,
with a weight, slant, underline or reverse of its own); a colour that would not read on a theme's
background is lightened or darkened until it does on true-colour, 256-colour and 16-colour
terminals, or, where the terminal's own 16 colours must be kept (the ANSI themes), replaced by
the bright or plain variant that reads, or dropped. Red is for errors: any other colour that a
16-colour terminal would draw red is moved until it is not. tests/tui/test_tui_contrast.py and
tests/tui/test_tui_contrast_states.py measure what is drawn.
"""

from __future__ import annotations

from rich.color import Color, ColorSystem
from rich.style import Style
from rich.terminal_theme import TerminalTheme

WCAG_AA = 4.5
RGB = tuple[int, int, int]


def luminance(rgb: RGB) -> float:
    """WCAG 2 relative luminance."""
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rgb_of(color: Color | None, palette: TerminalTheme, *, foreground: bool) -> RGB:
    """What the terminal paints for `color` (None: its default), ANSI colours by `palette`."""
    triplet = (color or Color.default()).get_truecolor(palette, foreground=foreground)
    return (triplet.red, triplet.green, triplet.blue)


# The terminals an RGB theme is drawn on: true colour, 256 colours and 16 colours (each colour the
# nearest of the terminal's palette; the 16 are drawn with Textual's palette for them).
SYSTEMS = (ColorSystem.TRUECOLOR, ColorSystem.EIGHT_BIT, ColorSystem.STANDARD)
RED_NUMBERS = frozenset({1, 9})  # red and bright red of the 16 colours: errors


def worst_contrast(fg: Color, bg: Color, palette: TerminalTheme) -> float:
    """The contrast of fg on bg in true colour, on a 256-colour and on a 16-colour terminal (each
    colour the nearest of its palette), whichever is lowest: RGB themes are drawn on all three."""
    return min(contrast(rgb_of(fg.downgrade(system), palette, foreground=True),
                        rgb_of(bg.downgrade(system), palette, foreground=False))
               for system in SYSTEMS)


def turns_red(color: Color) -> bool:
    """Whether a 16-colour terminal draws `color` as red or bright red (orange does)."""
    return color.downgrade(ColorSystem.STANDARD).number in RED_NUMBERS


def is_red_hint(color: Color) -> bool:
    """A hint meant as red (an error): the hints are named colours (tui/vocabulary.py)."""
    return color.name.removeprefix("bright_") == "red"


def text_on(background: Color, palette: TerminalTheme) -> Color:
    """Black or white, whichever reads better on `background` in true colour and 256 colours."""
    black, white = Color.from_rgb(0, 0, 0), Color.from_rgb(255, 255, 255)
    return max((black, white), key=lambda fg: worst_contrast(fg, background, palette))


def _toward(rgb: RGB, target: int, step: float) -> RGB:
    r, g, b = (round(v + (target - v) * step) for v in rgb)
    return (r, g, b)


def readable(style: Style, base: Style, palette: TerminalTheme, *, ansi: bool) -> Style:
    """`style` (a colour hint plus attributes) drawn over `base`, its colour made to read at
    WCAG_AA against base's background; attributes are kept as they are."""
    attributes = Style(bold=style.bold, italic=style.italic, underline=style.underline, reverse=style.reverse,
                       strike=style.strike)
    if style.color is None:
        return attributes
    background = rgb_of(base.bgcolor, palette, foreground=False)
    dark = luminance(background) < 0.18
    if ansi:
        # Keep the terminal's own colours: the variant that reads here, else none (the words and
        # attributes still tell them apart).
        name = style.color.name.removeprefix("bright_")
        for candidate in ((f"bright_{name}", name) if dark else (name, f"bright_{name}")):
            color = Color.parse(candidate)
            if contrast(rgb_of(color, palette, foreground=True), background) >= WCAG_AA:
                return attributes + Style(color=color)
        return attributes
    rgb = rgb_of(style.color, palette, foreground=True)
    back = base.bgcolor or Color.from_rgb(*background)
    # Only an error may land on red: an orange warning or opt-out turns bright red on 16 colours.
    may_be_red = is_red_hint(style.color)
    for step in range(11):
        candidate = Color.from_rgb(*_toward(rgb, 255 if dark else 0, step / 10))
        if not may_be_red and turns_red(candidate):
            continue
        if worst_contrast(candidate, back, palette) >= WCAG_AA:
            return attributes + Style(color=candidate)
    return attributes
