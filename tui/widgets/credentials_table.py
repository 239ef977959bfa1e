"""The credentials list: a line-API ScrollView that renders only the rows on screen.

The stock DataTable measures and stores every cell of every row before its first frame (slow for
a thousand credentials: bench/startup.py). Here a row is a small `CredentialRow`; column widths come from
plain string lengths, and `render_line` builds the few strips the terminal shows, like the
inbound log (tui/widgets/message_log.py). Cursor, zebra stripes, a fixed header, horizontal
scrolling for revealed keys, filter and reveal behave as they did with the DataTable.

The vertical scrollbar is drawn by the table itself, in its last column. Textual's ScrollBar
widget (a child widget with its own styles, a Rich renderable, mouse metadata on every cell)
cost more of the first paint than the table's own rows (bench/startup.py).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from smsdesk.domain.inert import make_inert
from smsdesk.store.credential_rows import CredentialRow
from smsdesk.tui.widgets.list_navigation import LIST_BINDINGS, ListNavigation
from smsdesk.tui.widgets.style_cache import CachedStyles

COLUMNS = ("name", "sandbox", "host", "api key", "inbound", "mode", "valid")
KEY_COLUMN = COLUMNS.index("api key")
SCROLLBAR_WIDTH = 1  # the column the drawn scrollbar takes at the right edge
# Columns are sized to their content. Only when the line would not fit the table are name,
# host and sandbox cut, and never below these widths (all seven columns then fit 80 columns with
# the scrollbar); the full values are one keypress away (Enter) and `/` searches them whole.
NAME_WIDTH = 13
SANDBOX_WIDTH = 8
HOST_WIDTH = 15
CLIPPABLE = {0: NAME_WIDTH, 1: SANDBOX_WIDTH, 2: HOST_WIDTH}  # column -> the least it is cut to
# Narrower than 80 columns (down to 60), they are cut further before mode and valid are pushed out.
NARROW_CLIPPABLE = {0: 6, 1: 4, 2: 6}
SORTABLE = ("name", "sandbox", "host", "inbound", "mode", "valid")
MODE_LABEL = {"forward": "fwd", "pull": "pull"}
PAD = 1  # blank cells each side of a value, as the DataTable drew them


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: str, width: int | None = None) -> str:
    # Control characters show as visible escapes; strips are plain segments, so "[red]" is never markup.
    value = make_inert(text)
    return _clip(value, width) if width else value


def row_cells(row: CredentialRow, reveal: bool, widths: tuple[int, int, int] = (NAME_WIDTH, SANDBOX_WIDTH,
                                                                                   HOST_WIDTH)) -> tuple[str, ...]:
    """The text of each column for one credential (name, sandbox and host cut to `widths`)."""
    return (
        _cell(row.name, widths[0]),
        _cell(row.sandbox, widths[1]),
        _cell(row.host, widths[2]),
        _cell(row.api_key if reveal else row.masked_key),
        _cell(row.inbound_number or "-"),
        MODE_LABEL.get(row.inbound_mode, row.inbound_mode),
        f"{row.validity_period_hours}h",
    )


def matches(row: CredentialRow, filter_text: str) -> bool:
    return all(word in row.search_text for word in filter_text.casefold().split())


class CredentialsTable(ListNavigation, CachedStyles, ScrollView, can_focus=True):
    """Rows keyed by credential id, so the cursor stays on the same credential across reloads."""

    DEFAULT_CSS = """
    CredentialsTable {
        background: $surface;
        color: $foreground;
        overflow-y: hidden;  /* the table draws its own scrollbar: see the module docstring */
        &:focus {
            background-tint: $foreground 5%;
            & > .credentials-table--header { background-tint: $foreground 5%; }
        }
        & > .credentials-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .credentials-table--even-row { background: $surface-lighten-1 50%; }
        &:dark > .credentials-table--even-row { background: $surface-darken-1 40%; }
        & > .credentials-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .credentials-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .credentials-table--name { text-style: bold; }
        & > .credentials-table--key { color: $text-muted; }
        & > .credentials-table--key-revealed { color: $text-warning; }
        & > .credentials-table--scrollbar { background: $scrollbar-background; }
        & > .credentials-table--scrollbar-thumb { background: $scrollbar; }
    }
    """
    COMPONENT_CLASSES = {
        "credentials-table--header", "credentials-table--even-row", "credentials-table--cursor",
        "credentials-table--name", "credentials-table--key", "credentials-table--key-revealed",
        "credentials-table--scrollbar", "credentials-table--scrollbar-thumb",
    }
    BINDINGS = [*LIST_BINDINGS, Binding("enter", "select", "Open", show=False)]

    cursor_row: reactive[int] = reactive(0, always_update=True, init=False)

    class RowSelected(Message):
        """Enter (or a click on the current row): the screen opens the credential."""

        def __init__(self, row: CredentialRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.credentials: list[CredentialRow] = []
        self.shown: list[CredentialRow] = []
        self.filter_text = ""
        self.reveal = False
        self.sort_column = ""  # "": the database's order (by name, case-insensitive)
        self._natural: list[int] = [len(c) for c in COLUMNS]  # widths the content asks for
        self._widths: list[int] = [len(c) for c in COLUMNS]
        self._cells: dict[int, tuple[str, ...]] = {}  # by position in `shown`; only rows drawn

    # ---- data ------------------------------------------------------------------------------
    def show(self, credentials: list[CredentialRow], *, select_id: int | None = None) -> None:
        self.credentials = credentials
        self._rebuild(select_id)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._rebuild()

    def set_reveal(self, reveal: bool) -> None:
        self.reveal = reveal
        self._rebuild()

    def cycle_sort(self) -> None:
        """The next sort column (s): name, sandbox, host, inbound, mode, valid, then as stored."""
        order = ["", *SORTABLE]
        self.sort_column = order[(order.index(self.sort_column) + 1) % len(order)]
        self._rebuild()

    @property
    def row_count(self) -> int:
        return len(self.shown)

    @property
    def selected(self) -> CredentialRow | None:
        if not self.shown or not 0 <= self.cursor_row < len(self.shown):
            return None
        return self.shown[self.cursor_row]

    def cells_at(self, index: int) -> tuple[str, ...]:
        """The text of the row at this position, as drawn."""
        cells = self._cells.get(index)
        if cells is None:
            cells = self._cells[index] = row_cells(self.shown[index], self.reveal,
                                                   (self._widths[0], self._widths[1], self._widths[2]))
        return cells

    def _rebuild(self, select_id: int | None = None) -> None:
        if select_id is None and (current := self.selected) is not None:
            select_id = current.id
        self.shown = [c for c in self.credentials if matches(c, self.filter_text)] if self.filter_text \
            else list(self.credentials)
        if self.sort_column:
            key = {"name": lambda c: c.name.casefold(), "sandbox": lambda c: (c.sandbox, c.name.casefold()),
                   "host": lambda c: c.host, "inbound": lambda c: c.inbound_number or "~",
                   "mode": lambda c: (c.inbound_mode, c.name.casefold()),
                   "valid": lambda c: (c.validity_period_hours, c.name.casefold())}[self.sort_column]
            self.shown.sort(key=key)
        self._cells.clear()
        self._natural = self._measure()
        self._widths = self._fit(self._natural)
        index = 0
        if select_id is not None:
            index = next((i for i, c in enumerate(self.shown) if c.id == select_id), self.cursor_row)
        self._resize_virtual()
        self.move_cursor(row=min(index, max(0, len(self.shown) - 1)))
        self.refresh()

    def _measure(self) -> list[int]:
        # Widths from string lengths of every shown row, as the DataTable sized its columns
        # (so a revealed key widens its column), without building a cell for each row. The
        # clipped columns are bounded by their clip width; the others are measured.
        widths = [len(c) for c in COLUMNS]
        if not self.shown:
            return widths
        widths[0] = max(widths[0], max(len(c.name) for c in self.shown))
        widths[1] = max(widths[1], max(len(c.sandbox) for c in self.shown))
        widths[2] = max(widths[2], max(len(c.host) for c in self.shown))
        key = (lambda c: len(make_inert(c.api_key))) if self.reveal else (lambda c: len(c.masked_key))
        widths[3] = max(widths[3], max(key(c) for c in self.shown))
        widths[4] = max(widths[4], max(len(make_inert(c.inbound_number or "-")) for c in self.shown))
        widths[5] = max(widths[5], max(len(MODE_LABEL.get(c.inbound_mode, c.inbound_mode)) for c in self.shown))
        widths[6] = max(widths[6], max(len(f"{c.validity_period_hours}h") for c in self.shown))
        return widths

    def _fit(self, natural: list[int]) -> list[int]:
        """Cut name, host and sandbox (widest first) only as much as the table's width needs."""
        widths = list(natural)
        room = (self.size.width or 80) - SCROLLBAR_WIDTH
        excess = sum(w + 2 * PAD for w in widths) - room
        narrow = (self.size.width or 80) < 80 - SCROLLBAR_WIDTH
        for floors in (CLIPPABLE, NARROW_CLIPPABLE) if narrow else (CLIPPABLE,):
            while excess > 0:
                cuttable = [(widths[i] - floor, i) for i, floor in floors.items() if widths[i] > floor]
                if not cuttable:
                    break
                _, column = max(cuttable)
                widths[column] -= 1
                excess -= 1
        return widths

    # ---- rendering -------------------------------------------------------------------------
    @property
    def _line_width(self) -> int:
        return sum(w + 2 * PAD for w in self._widths)

    def _resize_virtual(self) -> None:
        # One line for the fixed header plus one per row; the scrollbar column after the rows.
        self.virtual_size = Size(self._line_width + SCROLLBAR_WIDTH, len(self.shown) + 1)

    @property
    def allow_vertical_scroll(self) -> bool:
        # overflow-y is hidden only because the scrollbar is drawn here: the wheel still scrolls.
        return not (self.disabled or self.loading) and self.max_scroll_y > 0

    def _thumb(self, height: int) -> range:
        """The lines of the drawn scrollbar that show the thumb (empty when all rows fit)."""
        total = len(self.shown) + 1
        if height <= 0 or total <= height:
            return range(0)
        size = max(1, round(height * height / total))
        top = round((height - size) * self.scroll_offset.y / (total - height))
        return range(top, top + size)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        content_width = max(0, width - SCROLLBAR_WIDTH)
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            base = self.cached_style() + self.cached_style("credentials-table--header")
            segments = self._segments(COLUMNS, base, None)
        else:
            index = scroll_y + y - 1
            base = self.cached_style()
            if index >= len(self.shown):
                segments = []
            else:
                if index % 2 == 0:  # the DataTable striped rows 0, 2, 4...
                    # Not partial: the stripe is a translucent colour blended over the background.
                    base += self.cached_style("credentials-table--even-row")
                cursor = None
                if index == self.cursor_row:
                    cursor = self.cached_style("credentials-table--cursor", partial=True)
                    base += cursor
                segments = self._segments(self.cells_at(index), base, cursor)
        # Header, stripes and cursor run the full width of the table, as they did. One Strip per
        # line in the usual case (nothing scrolled sideways): each Strip carries its own caches.
        line_width = self._line_width if segments else 0
        if scroll_x or line_width > content_width:
            segments = list(Strip(segments, line_width).crop_extend(scroll_x, scroll_x + content_width, base))
        elif line_width < content_width:
            segments.append(Segment(" " * (content_width - line_width), base))
        if width > content_width:
            thumb = y in self._thumb(self.size.height)
            segments.append(Segment(" " * (width - content_width), self.cached_style(
                "credentials-table--scrollbar-thumb" if thumb else "credentials-table--scrollbar")))
        return Strip(segments, width)

    def _segments(self, cells: tuple[str, ...], base: Style, cursor: Style | None) -> list[Segment]:
        header = cells is COLUMNS
        segments: list[Segment] = []
        for column, (text, column_width) in enumerate(zip(cells, self._widths, strict=True)):
            style = base
            if not header and column == 0:
                style = base + self.cached_style("credentials-table--name", partial=True)
            elif not header and column == KEY_COLUMN:
                name = "credentials-table--key-revealed" if self.reveal else "credentials-table--key"
                style = base + self.cached_style(name, partial=True)
            if cursor is not None:
                style += cursor  # the cursor's colours win over a cell's, as in the DataTable
            # Widths are measured on raw lengths; an escaped control character can make the
            # drawn text longer, so cut it to the column rather than shift the columns after it.
            segments.append(Segment(" " * PAD + text[:column_width].ljust(column_width) + " " * PAD, style))
        return segments

    def on_resize(self) -> None:
        widths = self._fit(self._natural)
        if widths != self._widths:
            self._widths = widths
            self._cells.clear()
            self.refresh()
        self._resize_virtual()

    # ---- cursor ----------------------------------------------------------------------------
    def watch_cursor_row(self) -> None:
        self.refresh()

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        """Same signature as DataTable.move_cursor, which callers and tests already use."""
        if not self.shown:
            self.cursor_row = 0
            return
        self.cursor_row = max(0, min(len(self.shown) - 1, row))
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        # Rows start one line below the header; keep the cursor row inside the viewport.
        visible = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def list_cursor(self) -> int:
        return self.cursor_row

    def list_length(self) -> int:
        return len(self.shown)

    def list_page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)  # the header stays

    def list_move(self, row: int) -> None:
        self.move_cursor(row=row)

    def action_select(self) -> None:
        if (row := self.selected) is not None:
            self.post_message(self.RowSelected(row))

    def _on_click(self, event: Click) -> None:
        if event.x >= self.size.width - SCROLLBAR_WIDTH:
            # The drawn scrollbar: a click above or below the thumb pages, as a track click does.
            thumb = self._thumb(self.size.height)
            if thumb and event.y < thumb.start:
                self.action_page(-1)
            elif thumb and event.y >= thumb.stop:
                self.action_page(1)
            return
        if event.y < 1:  # the header
            return
        index = round(self.scroll_offset.y) + event.y - 1
        if not 0 <= index < len(self.shown):
            return
        if index == self.cursor_row:
            self.action_select()  # a click on the current row opens it, as the DataTable did
        else:
            self.move_cursor(row=index)
