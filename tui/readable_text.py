"""Rich Text whose colour hints read where a widget draws them (the traffic strip's action words).

Each span's colour is made to read on the widget's background (tui/contrast.py: `readable`: 4.5:1
on true-colour and 256-colour terminals, never red unless the hint is red); without colour
(NO_COLOR) only the weight, slant, underline, reverse or strike is kept.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Span, Text
from textual.widget import Widget

from smsdesk.tui.contrast import readable


def readable_text(text: Text, widget: Widget) -> Text:
    """`text` with every style made to read where `widget` draws it."""
    app = widget.app
    base = widget.rich_style

    def fix(style: str | Style) -> Style:
        parsed = Style.parse(style) if isinstance(style, str) else style
        if app.no_color:
            return Style(bold=parsed.bold, italic=parsed.italic, underline=parsed.underline,
                         reverse=parsed.reverse, strike=parsed.strike)
        return readable(parsed, base, app.ansi_theme, ansi=app.native_ansi_color)

    shown = text.copy()
    if text.style:
        shown.style = fix(text.style)
    shown.spans = [Span(span.start, span.end, fix(span.style)) for span in text.spans]
    return shown
