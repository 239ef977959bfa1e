"""The live inbound log: a line-API ScrollView that renders only the rows on screen.

Like Textualize/toolong's log view, the virtual height is the row count and `render_line`
serves rows from a small cache, so a log of a million rows costs the memory of a few pages.
Rows the cache lacks are drawn as placeholders while a thread worker fetches them.
"""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from smsdesk.store.queries import MessageFilter, MessageRow
from smsdesk.store.text import make_inert
from smsdesk.tui.log_reader import LogReader
from smsdesk.tui.widgets.style_cache import CachedStyles

ACTION_STYLES = {
    "opt-in": Style(color="green", bold=True),
    "opt-out": Style(color="red", bold=True),
    "help": Style(color="cyan"),
    "double-opt-in": Style(color="bright_green", bold=True),
    "custom": Style(color="magenta"),
    "default": Style(color="default"),
    "unrouted": Style(color="yellow", italic=True),
}
STATUS_STYLES = {
    "queued": Style(color="yellow"),
    "sent": Style(color="blue"),
    "delivered": Style(color="green"),
    "failed": Style(color="red", bold=True),
    "undeliverable": Style(color="red"),
    "expired": Style(color="red"),
    "rejected": Style(color="red"),
}
PAGE = 100
CACHE_LIMIT = 3000
POLL_SECONDS = 0.25


# Short labels keep the text column wide at 80 columns; the detail pane spells them out.
ACTION_LABELS = {"double-opt-in": "2x-opt-in", "custom": "keyword"}
ACTION_WIDTH = 10
STATUS_WIDTH = 10


def column_widths(width: int) -> tuple[int, ...]:
    """time, credential, from (and to, when the terminal is wide enough)."""
    return (9, 12, 14, 14) if width >= 110 else (9, 11, 14)


def header_text(width: int) -> str:
    names = ("time", "credential", "from", "to")
    head = "".join(fit(name, w) for name, w in zip(names, column_widths(width), strict=False))
    text_width = max(8, width - sum(column_widths(width)) - ACTION_WIDTH - STATUS_WIDTH)
    return head + fit("text", text_width) + fit("action", ACTION_WIDTH) + fit("reply", STATUS_WIDTH)


def fit(text: str, width: int) -> str:
    """Pad or cut to exactly `width` terminal cells (wide characters and emoji count two)."""
    if cell_len(text) < width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 2) + "… "


def reply_label(row: MessageRow) -> str:
    return row.reply_status or "-"


class MessageLog(CachedStyles, ScrollView, can_focus=True):
    """Newest first. Follow mode keeps the newest row in view; scrolling away pauses it."""

    DEFAULT_CSS = """
    MessageLog { height: 1fr; }
    MessageLog > .message-log--cursor { background: $accent 40%; }
    MessageLog > .message-log--placeholder { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"message-log--cursor", "message-log--placeholder"}
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="log.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="log.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="log.pageup"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="log.pagedown"),
        Binding("home,g", "top", "Top", show=False, id="log.top"),
        Binding("end,G", "bottom", "Oldest", show=False, id="log.bottom"),
        Binding("enter", "select", "Details", id="log.details"),
        Binding("l", "live", "Live", id="log.live"),
    ]

    follow: reactive[bool] = reactive(True)
    new_count: reactive[int] = reactive(0)
    cursor: reactive[int] = reactive(0)
    total: reactive[int] = reactive(0)

    class Selected(Message):
        def __init__(self, row: MessageRow) -> None:
            super().__init__()
            self.row = row

    class StateChanged(Message):
        """Follow mode, the new-rows badge or the total moved: the screen updates its badge."""

        def __init__(self, follow: bool, new_count: int, total: int) -> None:
            super().__init__()
            self.follow = follow
            self.new_count = new_count
            self.total = total

    def __init__(self, db_path: Path, *, poll_seconds: float = POLL_SECONDS, id: str | None = None) -> None:
        super().__init__(id=id)
        self.db_path = db_path
        self.poll_seconds = poll_seconds
        self.filters = MessageFilter()
        self._reader: LogReader | None = None
        self._rows: dict[int, MessageRow] = {}
        self._top_id = 0
        self._epoch = 0  # bumps on filter change: results of older fetches are dropped
        self._shift = 0  # rows inserted at the top since start: re-bases in-flight fetches
        self._pending: set[int] = set()
        self._polling = False
        self.loaded = False

    # ---- lifecycle -------------------------------------------------------------------
    def on_mount(self) -> None:
        self._reload()
        self.set_interval(self.poll_seconds, self._poll)

    def on_unmount(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def _get_reader(self) -> LogReader:
        # Created on a worker thread: opening the database is I/O too.
        if self._reader is None:
            self._reader = LogReader(self.db_path)
        return self._reader

    def set_filters(self, filters: MessageFilter) -> None:
        self.filters = filters
        self._reload()

    def _reload(self) -> None:
        self._epoch += 1
        self._rows.clear()
        self._pending.clear()
        self.loaded = False
        self._load_first(self._epoch, self.filters)

    @work(thread=True, exclusive=True, group="log-reset")
    def _load_first(self, epoch: int, filters: MessageFilter) -> None:
        reader = self._get_reader()
        total, top = reader.count_and_top(filters)
        # Bounded by the top just counted: a commit in between shows up with the next poll, once.
        rows = reader.before(filters, top + 1, PAGE)
        self.app.call_from_thread(self._apply_reset, epoch, total, top, rows)

    def _apply_reset(self, epoch: int, total: int, top: int, rows: list[MessageRow]) -> None:
        if epoch != self._epoch:
            return
        self._top_id = top
        self._rows = dict(enumerate(rows))
        self.total = total
        self.cursor = min(self.cursor, max(0, total - 1))
        self.new_count = 0
        self.follow = True
        self._resize_virtual()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.loaded = True
        self.refresh()
        self._announce()

    # ---- live tail -------------------------------------------------------------------
    def _poll(self) -> None:
        # Skip a tick while a poll is still running: cancelling it after it consumed the
        # "something changed" signal would hide new rows until the next commit.
        if self.loaded and not self._polling:
            self._polling = True
            visible = [row.id for pos, row in self._rows.items() if self._is_near_view(pos)]
            self._poll_worker(self._epoch, self.filters, self._top_id, visible)

    @work(thread=True, group="log-poll")
    def _poll_worker(self, epoch: int, filters: MessageFilter, top_id: int, visible: list[int]) -> None:
        try:
            self._poll_once(epoch, filters, top_id, visible)
        finally:
            self._polling = False

    def _poll_once(self, epoch: int, filters: MessageFilter, top_id: int, visible: list[int]) -> None:
        reader = self._get_reader()
        if not reader.changed():
            return
        fresh = reader.newer(filters, top_id, CACHE_LIMIT)
        if len(fresh) >= CACHE_LIMIT:  # a flood: start over instead of shifting a partial view
            self.app.call_from_thread(self._reload)
            return
        updated = reader.rows_by_id(visible)
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._apply_new, epoch, fresh, updated)

    def _apply_new(self, epoch: int, fresh: list[MessageRow], updated: dict[int, MessageRow]) -> None:
        if epoch != self._epoch:
            return
        fresh = [row for row in fresh if row.id > self._top_id]  # never show a row twice
        if updated:
            for pos, row in self._rows.items():
                if row.id in updated:
                    self._rows[pos] = updated[row.id]
        if fresh:
            count = len(fresh)
            shifted = {pos + count: row for pos, row in self._rows.items() if pos + count < CACHE_LIMIT}
            shifted.update(enumerate(fresh))
            self._rows = shifted
            self._shift += count
            self._top_id = fresh[0].id
            self.total += count
            self._resize_virtual()
            if self.follow:
                self.scroll_to(y=0, animate=False, immediate=True)
                self.cursor = 0
            else:
                # Keep the rows the operator is reading where they are; count what arrived above.
                self.cursor += count
                self.scroll_to(y=self.scroll_offset.y + count, animate=False, immediate=True)
                self.new_count += count
            self._announce()
        self.refresh()

    # ---- fetching rows on demand --------------------------------------------------------
    def _is_near_view(self, pos: int) -> bool:
        top = self.scroll_offset.y
        return top - 5 <= pos <= top + self.size.height + 5

    def _request(self, pos: int) -> None:
        start = max(0, pos - pos % PAGE)
        if start in self._pending:
            return
        self._pending.add(start)
        anchor = self._rows.get(start - 1)
        self._fetch(self._epoch, self._shift, self.filters, start, anchor.id if anchor else None)

    @work(thread=True, group="log-fetch")
    def _fetch(self, epoch: int, shift: int, filters: MessageFilter, start: int, anchor_id: int | None) -> None:
        reader = self._get_reader()
        if anchor_id is not None or start == 0:
            rows = reader.before(filters, anchor_id, PAGE)
        else:
            rows = reader.at_offset(filters, start, PAGE)
        self.app.call_from_thread(self._apply_fetch, epoch, shift, start, rows)

    def _apply_fetch(self, epoch: int, shift: int, start: int, rows: list[MessageRow]) -> None:
        self._pending.discard(start)
        if epoch != self._epoch:
            return
        base = start + (self._shift - shift)
        for i, row in enumerate(rows):
            self._rows[base + i] = row
        if len(self._rows) > CACHE_LIMIT:
            centre = self.scroll_offset.y
            for far in sorted(self._rows, key=lambda p: -abs(p - centre))[: len(self._rows) - CACHE_LIMIT]:
                del self._rows[far]
        self.refresh()

    def _prefetch(self, top: int) -> None:
        """Fetch a screen ahead and behind, so a page key finds its rows already cached."""
        height = max(1, self.size.height)
        for pos in (top + height, top + 2 * height, top - height):
            if 0 <= pos < self.total and pos not in self._rows:
                self._request(pos)

    # ---- rendering ------------------------------------------------------------------------
    def _resize_virtual(self) -> None:
        self.virtual_size = Size(self.size.width, self.total)

    def on_resize(self) -> None:
        self._resize_virtual()

    @property
    def content_width(self) -> int:
        """Columns left for rows once the scrollbar has its share."""
        return self.scrollable_content_region.width or self.size.width

    def render_line(self, y: int) -> Strip:
        width = self.content_width
        pos = self.scroll_offset.y + y
        if y == 0:
            self._prefetch(pos)
        if pos >= self.total:
            return Strip.blank(width, self.cached_style())
        row = self._rows.get(pos)
        if row is None:
            self._request(pos)
            style = self.cached_style("message-log--placeholder")
            return Strip([Segment("…".ljust(width), style)], width)
        base = self.cached_style()
        if pos == self.cursor:
            base = base + self.cached_style("message-log--cursor")
        return Strip(self._segments(row, width, base), width).crop(0, width)

    def _segments(self, row: MessageRow, width: int, base: Style) -> list[Segment]:
        status = reply_label(row)
        # Every cell is inert: credential names are typed by operators or imported, and a number
        # that does not parse is kept as received (Segment text goes to the terminal verbatim).
        cells = [(make_inert(text), cell_width, None) for text, cell_width in zip(
            (row.received_at[11:19], row.credential or "-", row.from_number, row.to_number),
            column_widths(width), strict=False)]
        tail = [(make_inert(ACTION_LABELS.get(row.action, row.action)), ACTION_WIDTH, ACTION_STYLES.get(row.action)),
                (make_inert(status), STATUS_WIDTH, STATUS_STYLES.get(status))]
        fixed = sum(w for _, w, _ in cells) + ACTION_WIDTH + STATUS_WIDTH
        cells.append((make_inert(row.text).replace("\n", " "), max(8, width - fixed), None))
        return [Segment(fit(text, cell_width), base + style if style else base)
                for text, cell_width, style in (*cells, *tail)]

    # ---- navigation -----------------------------------------------------------------------
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if round(new) > 0 and self.follow and self.loaded:
            self.follow = False
            self._announce()
        elif round(new) == 0 and not self.follow and self.loaded:
            self.action_live()

    def _move_cursor(self, target: int) -> None:
        if self.total == 0:
            return
        self.cursor = max(0, min(self.total - 1, target))
        if self.cursor > 0 and self.follow:
            # The operator is reading a row: new arrivals must not pull it away.
            self.follow = False
            self._announce()
        top = self.scroll_offset.y
        height = max(1, self.size.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        height = max(1, self.size.height)
        self.scroll_to(y=max(0, self.scroll_offset.y + direction * height), animate=False)
        self._move_cursor(self.cursor + direction * height)

    def action_top(self) -> None:
        self._move_cursor(0)

    def action_bottom(self) -> None:
        self._move_cursor(self.total - 1)

    def action_live(self) -> None:
        """Back to the newest message, following new ones again."""
        self.follow = True
        self.new_count = 0
        self.cursor = 0
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        self._announce()

    def action_select(self) -> None:
        row = self._rows.get(self.cursor)
        if row is not None:
            self.post_message(self.Selected(row))

    def on_click(self, event: object) -> None:
        offset = getattr(event, "y", None)
        if isinstance(offset, int):
            self._move_cursor(self.scroll_offset.y + offset)

    def _announce(self) -> None:
        self.post_message(self.StateChanged(self.follow, self.new_count, self.total))

    @property
    def cursor_row(self) -> MessageRow | None:
        return self._rows.get(self.cursor)
