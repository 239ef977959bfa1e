"""Moving through a list with the keys every list of the TUI shares: ↑ ↓ / j k, PgUp PgDn /
space, Home End / g G. One keymap name each, `list.*`, so remapping `j` is one line of the
settings file whichever view it is for; what a view does with its rows keeps the view's names
(`log.live`, `profiles.opt_out`).

A list puts LIST_BINDINGS in its BINDINGS (Textual merges the BINDINGS of widget classes only, and
tui/keymap_check.py checks each class's own) and mixes in `ListNavigation`, answering where its
cursor is, how many rows it has and a page's height, and moving its cursor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.widgets import DataTable

if TYPE_CHECKING:
    from textual.dom import DOMNode

    _Base = DOMNode
else:
    _Base = object

LIST_BINDINGS = [
    Binding("up,k", "cursor(-1)", "Up", show=False, id="list.up"),
    Binding("down,j", "cursor(1)", "Down", show=False, id="list.down"),
    Binding("pageup", "page(-1)", "Page up", show=False, id="list.pageup"),
    Binding("pagedown,space", "page(1)", "Page down", show=False, id="list.pagedown"),
    Binding("home,g", "top", "Top", show=False, id="list.top"),
    Binding("end,G", "bottom", "Bottom", show=False, id="list.bottom"),
]


class ListNavigation(_Base):
    """The actions of LIST_BINDINGS; mix in before the widget or screen class."""

    def list_cursor(self) -> int:
        raise NotImplementedError

    def list_length(self) -> int:
        raise NotImplementedError

    def list_page_rows(self) -> int:
        raise NotImplementedError

    def list_move(self, row: int) -> None:
        """Put the cursor on `row`, kept within the list, and bring it into view."""
        raise NotImplementedError

    def action_cursor(self, delta: int) -> None:
        self.list_move(self.list_cursor() + delta)

    def action_page(self, direction: int) -> None:
        self.list_move(self.list_cursor() + direction * self.list_page_rows())

    def action_top(self) -> None:
        self.list_move(0)

    def action_bottom(self) -> None:
        self.list_move(self.list_length() - 1)


class TableNavigation(ListNavigation):
    """For a screen whose list is its one DataTable. The table keeps its own arrow and page keys
    (it has the focus, so they reach it first); j k, space and g G come here."""

    def list_table(self) -> DataTable[object]:
        return self.query_one(DataTable)

    def list_cursor(self) -> int:
        return self.list_table().cursor_row

    def list_length(self) -> int:
        return self.list_table().row_count

    def list_move(self, row: int) -> None:
        self.list_table().move_cursor(row=max(0, row))

    def action_page(self, direction: int) -> None:
        # As the table's own PgUp/PgDn, which measure a page by its rows' heights.
        table = self.list_table()
        if direction > 0:
            table.action_page_down()
        else:
            table.action_page_up()
