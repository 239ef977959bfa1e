"""Styles of line-API widgets, looked up once per style change instead of once per line.

`Widget.rich_style` blends the background of every ancestor and `get_component_rich_style`
resolves CSS; asked for every drawn line, they were a third of the cost of painting a screen
of rows. Textual calls `notify_style_update` whenever focus, theme or CSS change what they
would answer, which is when the cache is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    _Base = object


class CachedStyles(_Base):
    """Mix in before the widget class: `class Table(CachedStyles, ScrollView)`."""

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache().clear()

    def _style_cache(self) -> dict[tuple[str, bool], Style]:
        try:
            return self.__cached_styles
        except AttributeError:
            self.__cached_styles: dict[tuple[str, bool], Style] = {}
            return self.__cached_styles

    def cached_style(self, name: str = "", *, partial: bool = False) -> Style:
        """The component style `name`, or the widget's own style for ""."""
        cache = self._style_cache()
        style = cache.get((name, partial))
        if style is None:
            style = cache[(name, partial)] = (
                self.get_component_rich_style(name, partial=partial) if name else self.rich_style)
        return style
