"""A one-line footer of key bindings drawn as a single widget, on every screen.

Textual's Footer mounts one widget per binding and re-mounts them all whenever the bindings
change, which happens several times while a screen starts (focus moves, the table mounts): a
large share of the first paint (bench/startup.py). This bar renders the same information
as one line, refreshed on the screen's bindings signal. A click on a key presses it.

At 80 columns not everything fits: `q` and `F1` (PINNED) are always drawn, at the right, and
the screen's own keys fill the rest in binding order, whole items only; F1 lists them all. The
command palette (`ctrl+p`) is listed in F1, not here.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

from smsdesk.tui.widgets.style_cache import CachedStyles


class KeyBar(CachedStyles, Widget, can_focus=False):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-bar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
        & > .key-bar--description {
            color: $footer-description-foreground; background: $footer-description-background;
        }
        & > .key-bar--separator { color: $foreground 20%; }
    }
    """
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--description", "key-bar--separator"}
    ALLOW_SELECT = False
    PINNED = ("app.quit", "app.help")  # binding ids drawn at the right whatever the width

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of each drawn binding

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.refresh()

    def _items(self) -> tuple[list[tuple[str, str, str, bool]], list[tuple[str, str, str, bool]]]:
        """(key, shown key, description, enabled) of the screen's shown bindings, and the pinned ones."""
        app = self.app
        items: list[tuple[str, str, str, bool]] = []
        pinned: dict[str, tuple[str, str, str, bool]] = {}
        seen_actions: set[str] = set()
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.id in self.PINNED:
                if binding.id not in pinned:
                    pinned[binding.id] = (binding.key, app.get_key_display(binding), binding.description, enabled)
            elif binding.show and binding.action not in seen_actions:
                seen_actions.add(binding.action)  # one entry per action, like the Footer
                items.append((binding.key, app.get_key_display(binding), binding.description, enabled))
        return items, [pinned[i] for i in self.PINNED if i in pinned]

    def _draw(self, items: list[tuple[str, str, str, bool]], key_style: Style,
              description_style: Style) -> list[tuple[list[Segment], int, str]]:
        drawn = []
        for key, shown, description, enabled in items:
            dim = Style(dim=True) if not enabled else None
            key_text, description_text = f" {shown} ", f"{description} "
            drawn.append(([Segment(key_text, key_style + dim if dim else key_style),
                           Segment(description_text, description_style + dim if dim else description_style)],
                          cell_len(key_text) + cell_len(description_text), key))
        return drawn

    def render_line(self, y: int) -> Strip:
        # Drawn as segments (the line API) rather than a rich Text: the Text went through Rich's
        # console rendering on every repaint, twice during startup (bench/startup.py).
        width = self.size.width
        base = self.cached_style()
        if y != 0:
            return Strip.blank(width, base)
        key_style = base + self.cached_style("key-bar--key")
        description_style = base + self.cached_style("key-bar--description")
        items, pinned = self._items()
        right = self._draw(pinned, key_style, description_style)
        right_width = sum(w for _, w, _ in right)
        right_segments: list[Segment] = []
        if right:
            right_segments.append(Segment("▏", base + self.cached_style("key-bar--separator")))
            right_width += 1
            for segments, _, _ in right:
                right_segments.extend(segments)
        room = max(0, width - right_width)
        left: list[Segment] = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        for segments, item_width, key in self._draw(items, key_style, description_style):
            if x + item_width > room:
                break  # whole items only: a cut-off "Verif" helps nobody
            left.extend(segments)
            spans.append((x, x + item_width, key))
            x += item_width
        left = Segment.adjust_line_length(left, room, base, pad=True)
        x = room + (1 if right else 0)
        for _, item_width, key in right:
            spans.append((x, x + item_width, key))
            x += item_width
        self._spans = [span for span in spans if span[0] < span[1]]
        return Strip([*left, *right_segments], width).crop(0, width)

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
