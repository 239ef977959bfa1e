"""The tab line at the top of every view: `1 Credentials  2 Inbound log  3 Profiles  4 …`.

Names the current view (drawn reversed and bold, which survives NO_COLOR and 16 colours) and
shows the key of every other one, as the keymap has it (`app.view.*`). Every view stays named
down to 60 columns: where the full titles do not fit, the other views get their short title (the
title's last word: `Log`, `Tester`), then the current one too, then the others only their key.
A click on a name switches to it. Drawn with the line API, like the key bar, so it costs the
first paint next to nothing.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.strip import Strip
from textual.widget import Widget

from smsdesk.tui.key_hints import key_name
from smsdesk.tui.protocols import DeskApp
from smsdesk.tui.widgets.style_cache import CachedStyles

CURRENT = Style(reverse=True, bold=True)


class ViewTabs(CachedStyles, Widget, can_focus=False):
    DEFAULT_CSS = """
    ViewTabs {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        & > .view-tabs--key { text-style: bold; }
    }
    """
    COMPONENT_CLASSES = {"view-tabs--key"}
    ALLOW_SELECT = False

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current
        self._spans: list[tuple[int, int, str]] = []

    def _views(self) -> list[tuple[str, str, str]]:
        """(mode, key, title) of the app's views; none in an app without views."""
        views = self.app.VIEWS if isinstance(self.app, DeskApp) else ()
        return [(v.mode, key_name(self, f"app.view.{v.mode}"), v.title) for v in views]

    def _layouts(self, views: list[tuple[str, str, str]]) -> list[list[tuple[str, str, str]]]:
        """(mode, key, shown title) per view, widest first: full titles, the others short, all
        short, the others by their key alone."""
        def short(title: str) -> str:
            return title.split()[-1].capitalize()

        current_short = [(m, k, t if m == self.current else short(t)) for m, k, t in views]
        all_short = [(m, k, short(t)) for m, k, t in views]
        keys_only = [(m, k, short(t) if m == self.current else "") for m, k, t in views]
        return [views, current_short, all_short, keys_only]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.cached_style()
        if y != 0:
            return Strip.blank(width, base)
        key_style = base + self.cached_style("view-tabs--key")
        layouts = self._layouts(self._views())
        for views in layouts:
            segments, spans, used = self._draw(views, base, key_style)
            if used <= width:
                break
        self._spans = spans
        return Strip(Segment.adjust_line_length(segments, width, base, pad=True), width).crop(0, width)

    def _draw(self, views: list[tuple[str, str, str]], base: Style, key_style: Style
              ) -> tuple[list[Segment], list[tuple[int, int, str]], int]:
        segments: list[Segment] = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        for mode, key, title in views:
            label = f" {title}" if title else ""
            if mode == self.current:
                parts = [Segment(f" {key}{label} ", base + CURRENT)]
            else:
                parts = [Segment(f" {key}", key_style), Segment(f"{label} ", base)]
            item_width = sum(cell_len(s.text) for s in parts)
            if segments:
                segments.append(Segment(" ", base))
                x += 1
            segments.extend(parts)
            spans.append((x, x + item_width, mode))
            x += item_width
        return segments, spans, x

    def on_click(self, event: events.Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end and mode != self.current:
                self.app.switch_mode(mode)
                return
