"""The tab line at the top of every view: `1 Credentials  2 Inbound log  3 Profiles  4 …`.

Names the current view (drawn reversed and bold, which survives NO_COLOR and 16 colours) and
shows the key of every other one. A click on a name switches to it. Drawn with the line API,
like the key bar, so it costs the first paint next to nothing.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.strip import Strip
from textual.widget import Widget

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
        return [(v.mode, v.key, v.title) for v in views]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.cached_style()
        if y != 0:
            return Strip.blank(width, base)
        key_style = base + self.cached_style("view-tabs--key")
        segments: list[Segment] = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        for mode, key, title in self._views():
            if mode == self.current:
                parts = [Segment(f" {key} {title} ", base + CURRENT)]
            else:
                parts = [Segment(f" {key}", key_style), Segment(f" {title} ", base)]
            item_width = sum(cell_len(s.text) for s in parts)
            segments.extend(parts)
            spans.append((x, x + item_width, mode))
            segments.append(Segment(" ", base))
            x += item_width + 1
        self._spans = spans
        return Strip(Segment.adjust_line_length(segments, width, base, pad=True), width).crop(0, width)

    def on_click(self, event: events.Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end and mode != self.current:
                self.app.switch_mode(mode)
                return
