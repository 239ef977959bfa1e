"""A one-line footer of key bindings drawn as a single widget.

Textual's Footer mounts one widget per binding and re-mounts them all whenever the bindings
change, which happens several times while a screen starts (focus moves, the table mounts):
about 100 ms of the credentials screen's first paint. This bar renders the same information
(same colours, same order, `^p palette` on the right) as one Text, refreshed on the screen's
bindings signal. A click on a key presses it, as the Footer did.
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

    def _items(self) -> tuple[list[tuple[str, str, str, bool]], tuple[str, str, str, bool] | None]:
        """(key, shown key, description, enabled) for each shown binding, and the palette's."""
        app = self.app
        items: list[tuple[str, str, str, bool]] = []
        palette = None
        seen_actions: set[str] = set()
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.action == "command_palette" and app.ENABLE_COMMAND_PALETTE:
                palette = (binding.key, app.get_key_display(binding), binding.description, enabled)
            elif binding.show and binding.action not in seen_actions:
                seen_actions.add(binding.action)  # one entry per action, like the Footer
                items.append((binding.key, app.get_key_display(binding), binding.description, enabled))
        return items, palette

    def render_line(self, y: int) -> Strip:
        # Drawn as segments (the line API) rather than a rich Text: the Text went through Rich's
        # console rendering on every repaint, about 2.5 ms for one line, twice during startup.
        width = self.size.width
        base = self.cached_style()
        if y != 0:
            return Strip.blank(width, base)
        key_style = base + self.cached_style("key-bar--key")
        description_style = base + self.cached_style("key-bar--description")
        items, palette = self._items()
        right: list[Segment] = []
        if palette is not None:
            right = [Segment("▏", base + self.cached_style("key-bar--separator")), Segment(palette[1], key_style),
                     Segment(f" {palette[2]} ", description_style)]
        room = max(0, width - Segment.get_line_length(right))
        left: list[Segment] = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        for key, shown, description, enabled in items:
            dim = Style(dim=True) if not enabled else None
            key_text, description_text = f" {shown} ", f"{description} "
            left.append(Segment(key_text, key_style + dim if dim else key_style))
            left.append(Segment(description_text, description_style + dim if dim else description_style))
            end = x + cell_len(key_text) + cell_len(description_text)
            spans.append((x, min(end, room), key))
            x = end
        left = Segment.adjust_line_length(left, room, base, pad=True)
        if palette is not None:
            spans.append((room, width, palette[0]))
        self._spans = [span for span in spans if span[0] < span[1]]
        return Strip([*left, *right], width).crop(0, width)

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
