"""The live inbound log: a line-API ScrollView that renders only the rows on screen.

Like Textualize/toolong's log view, the virtual height is the row count and `render_line`
serves rows from a small cache, so a log of a million rows costs the memory of a few pages.
Rows the cache lacks are drawn as placeholders while a worker fetches them through the app's
data service (tui/data.py); the screen calls `refresh_data` when the database changed.
"""

from __future__ import annotations

from dataclasses import dataclass

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

from smsdesk.domain.inert import make_inert
from smsdesk.store.queries import (
    LogPage,
    LogUpdate,
    MessageFilter,
    MessageRow,
    log_first_page,
    log_updates,
    messages_at_offset,
)
from smsdesk.tui.adapters import page_after, page_before
from smsdesk.tui.contrast import readable, text_on
from smsdesk.tui.data import DataService
from smsdesk.tui.vocabulary import ACTIONS, REPLY_STATUSES, action_style, status_style
from smsdesk.tui.widgets.list_navigation import LIST_BINDINGS, ListNavigation
from smsdesk.tui.widgets.style_cache import CachedStyles
from smsdesk.tui.workers import ReportsWorkerErrors

PAGE = 100
CACHE_LIMIT = 3000

# The stored words themselves (tui/vocabulary.py), so the column says what a filter and an
# export say. Columns are sized to what has been read (they only widen, so nothing jumps while
# scrolling): "double-opt-in" or "undeliverable" take their room only once one is on hand.
ACTION_WIDTH = max(len(a) for a in ACTIONS) + 1  # the most the action column takes
STATUS_WIDTH = max(len(s) for s in REPLY_STATUSES) + 1


@dataclass(frozen=True)
class Widths:
    credential: int = 10
    action: int = 8
    status: int = 6

    def grown(self, rows: list[MessageRow]) -> Widths:
        credential = max((cell_len(make_inert(r.credential or "-")) for r in rows), default=0)
        action = max((len(r.action) for r in rows), default=0)
        status = max((len(reply_label(r)) for r in rows), default=0)
        return Widths(max(self.credential, min(20, credential)), max(self.action, min(ACTION_WIDTH - 1, action)),
                      max(self.status, min(STATUS_WIDTH - 1, status)))


NARROW = 70  # below this many columns the credential column goes (Enter and `cred:` still name it)


def layout(width: int, widths: Widths = Widths()) -> list[tuple[str, int]]:
    """(column, cells) left to right for a row `width` cells wide; the text takes what is left.
    Never wider than `width` down to 60 columns: a narrow terminal drops the credential column
    rather than cutting the action or the reply."""
    head = [("time", 9), ("credential", widths.credential + 1), ("from", 14)]
    if width < NARROW:
        head.remove(("credential", widths.credential + 1))
    if width >= 110:
        head.append(("to", 14))
    tail = [("action", widths.action + 1), ("reply", widths.status + 1)]
    text = max(8, width - sum(w for _, w in head) - sum(w for _, w in tail))
    return [*head, ("text", text), *tail]


def header_text(width: int, widths: Widths = Widths()) -> str:
    """The column names, laid out exactly as `MessageLog` lays out its rows."""
    return "".join(fit(name, w) for name, w in layout(width, widths))


def fit(text: str, width: int) -> str:
    """Pad or cut to exactly `width` terminal cells (wide characters and emoji count two)."""
    if cell_len(text) < width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 2) + "… "


def reply_label(row: MessageRow) -> str:
    return row.reply_status or "-"


class MessageLog(ReportsWorkerErrors, ListNavigation, CachedStyles, ScrollView, can_focus=True):
    """Newest first: follow mode keeps the newest row in view; scrolling away pauses it.

    Oldest first (`oldest_first`, the screen's `s`): row 0 is the oldest match, rows are paged
    by keyset upwards in time, and messages that arrive are added at the end, counted in the
    "new" badge, without moving the view; `l` goes back to newest first, following."""

    DEFAULT_CSS = """
    MessageLog { height: 1fr; overflow-x: hidden; }  /* rows are cut to fit: never a horizontal bar */
    /* The cursor: the theme's own pair for a selected row (never the error red); on it, actions
       and replies keep their attributes and take its colour (tui/contrast.py). */
    MessageLog > .message-log--cursor { background: $block-cursor-background; color: auto; }
    App:ansi MessageLog > .message-log--cursor { color: $block-cursor-foreground; }
    MessageLog > .message-log--placeholder { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"message-log--cursor", "message-log--placeholder"}
    BINDINGS = [
        *LIST_BINDINGS,
        Binding("enter", "select", "Details", id="log.details"),
        Binding("l", "live", "Live", id="log.live"),
    ]
    loaded_epoch = 0

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

        def __init__(self, follow: bool, new_count: int, total: int, all_total: int = 0, more: bool = False,
                     searched: int = 0) -> None:
            super().__init__()
            self.follow = follow
            self.new_count = new_count
            self.total = total
            self.all_total = all_total  # every message, whatever the filter
            self.more = more  # more match than `total`: the list holds the first `total` (a count that stopped)
            self.searched = searched  # a short search read only the newest this many messages (0: all)

    def __init__(self, data: DataService, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = data
        self.filters = MessageFilter()
        # What the reads ask for: the filter, and the window a one- or two-character search reads
        # (store/queries.py log_first_page), fixed at the first read so every page agrees.
        self._scope = MessageFilter()
        self.more = False  # the count stopped at a bound: `total` is the first so many of more
        self.oldest_first = False
        self.all_total = 0
        self.widths = Widths()
        self._poll_again = False
        self._rows: dict[int, MessageRow] = {}
        self._top_id = 0
        self._all_top = 0  # the newest message of all counted in `all_total` (a filter hides some)
        self._epoch = 0  # bumps on filter change: results of older fetches are dropped
        self._shift = 0  # rows inserted at the top since start: re-bases in-flight fetches
        self._pending: set[int] = set()
        self._polling = False
        self._loading = False  # a first read is in flight
        self.loads = 0  # first reads started (the live-and-large tests count them)
        self.loaded = False

    # ---- lifecycle -------------------------------------------------------------------
    def on_mount(self) -> None:
        self._reload()

    def refresh_data(self) -> None:
        """The database changed (or a read failed and is due again): catch up.

        A first read in flight is never restarted (its SQL would keep running on the pool while a
        new one queued behind it, and at scale under live traffic no read would ever finish): it
        finishes, and one poll after it reads whatever was committed meanwhile."""
        if self._loading:
            self._poll_again = True
        elif not self.loaded:
            self._reload()  # the first read failed: try it again
        else:
            self._poll()

    def set_filters(self, filters: MessageFilter) -> None:
        self.filters = filters
        self._reload()

    def set_order(self, oldest_first: bool) -> None:
        """Newest first (live) or oldest first; the cursor goes to the first row."""
        if oldest_first != self.oldest_first:
            self.oldest_first = oldest_first
            self.cursor = 0
            self._reload()

    def _reload(self) -> None:
        self._epoch += 1
        self._rows.clear()
        self._pending.clear()
        self.loaded = False
        self._loading = True
        self._scope = self.filters  # until the first read says which window a short search reads
        self.loads += 1
        known = (self.all_total, self._all_top) if self._all_top else None
        self._load_first(self._epoch, self.filters, self.oldest_first, known)

    @work(exclusive=True, group="log-reset", exit_on_error=False)
    async def _load_first(self, epoch: int, filters: MessageFilter, oldest_first: bool,
                          known_all: tuple[int, int] | None) -> None:
        # exclusive: a new filter or order supersedes the read in flight (its result is dropped by
        # epoch anyway); a database change never does (refresh_data).
        try:
            page = await self.data.read(log_first_page, filters, PAGE, oldest_first, known_all)
        finally:
            if epoch == self._epoch:
                self._loading = False
        self._apply_reset(epoch, page)
        if epoch == self._epoch and self._poll_again:
            self.call_later(self._poll)

    def _apply_reset(self, epoch: int, page: LogPage) -> None:
        if epoch != self._epoch:
            return
        self._top_id = page.top
        self._all_top = page.all_top
        self._scope = page.filters or self.filters
        self.more = page.more
        self._rows = dict(enumerate(page.rows))
        self.all_total = page.all_total
        self._widen(page.rows)
        self.total = page.total
        total = page.total
        self.cursor = min(self.cursor, max(0, total - 1))
        self.new_count = 0
        self.follow = not self.oldest_first
        self._resize_virtual()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.loaded = True
        self.refresh()
        self._announce()

    # ---- live tail -------------------------------------------------------------------
    def _poll(self) -> None:
        # One poll at a time (a cancelled one could drop rows); a change announced meanwhile is
        # read right after it, not forgotten until the next commit.
        if not self.loaded:
            return
        if self._polling:
            self._poll_again = True
            return
        if self.loaded:
            self._polling = True
            self._poll_again = False
            visible = [row.id for pos, row in self._rows.items() if self._is_near_view(pos)]
            self._poll_worker(self._epoch, self._scope, self._top_id, self._all_top, visible)

    @work(group="log-poll", exit_on_error=False)
    async def _poll_worker(self, epoch: int, filters: MessageFilter, top_id: int, all_top: int,
                           visible: list[int]) -> None:
        try:
            # One read, one snapshot: the matching rows and the count of all new messages agree.
            update = await self.data.read(log_updates, filters, top_id, CACHE_LIMIT, visible, all_top)
            if len(update.fresh) >= CACHE_LIMIT:  # a flood: start over instead of shifting a partial view
                self._reload()
                return
            self._apply_new(epoch, update, top_id, all_top)
        finally:
            self._polling = False
            if self._poll_again:
                self.call_later(self._poll)

    def _apply_new(self, epoch: int, update: LogUpdate, top_id: int, all_top: int) -> None:
        if epoch != self._epoch or top_id != self._top_id or all_top != self._all_top:
            return  # read from an older starting point (a reload came between): the next poll reads again
        fresh, updated = update.fresh, update.updated
        # All messages, filter or not, counted from the same snapshot as the matching ones:
        # "N of M match" never shows N > M.
        self.all_total += update.all_new
        self._all_top = update.all_top
        if updated:
            for pos, row in self._rows.items():
                if row.id in updated:
                    self._rows[pos] = updated[row.id]
            self._widen(list(updated.values()))  # a reply went from queued to delivered: room for the word
        if fresh and self.oldest_first and self.more:
            # The list is the oldest `total` of more matches: newer ones are not its end.
            self._top_id = fresh[0].id
            self._announce()
        elif fresh and self.oldest_first:
            # Added at the end, oldest of them first; the rows in view stay where they are.
            for i, row in enumerate(reversed(fresh)):
                self._rows[self.total + i] = row
            self._top_id = fresh[0].id
            self.total += len(fresh)
            self.new_count += len(fresh)
            self._widen(fresh)
            self._resize_virtual()
            self._announce()
        elif fresh:
            count = len(fresh)
            shifted = {pos + count: row for pos, row in self._rows.items() if pos + count < CACHE_LIMIT}
            shifted.update(enumerate(fresh))
            self._rows = shifted
            self._shift += count
            self._top_id = fresh[0].id
            self.total += count
            self._widen(fresh)
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
        elif update.all_new:
            self._announce()  # none of them match: "N of M match" still counts them
        self.refresh()

    # ---- fetching rows on demand --------------------------------------------------------
    def _is_near_view(self, pos: int) -> bool:
        top = self.scroll_offset.y
        return top - 5 <= pos <= top + self.size.height + 5

    def _request(self, pos: int) -> None:
        if self._loading:
            return  # the first read brings these rows, read with the scope it decides
        start = max(0, pos - pos % PAGE)
        if start in self._pending:
            return
        self._pending.add(start)
        anchor = self._rows.get(start - 1)
        # A count that stopped at its bound is no total to count back from: the jump walks the offset.
        self._fetch(self._epoch, self._shift, self._scope, start, anchor.id if anchor else None,
                    self._top_id if self.oldest_first else None, None if self.more else self.total, self._top_id)

    @work(group="log-fetch", exit_on_error=False)
    async def _fetch(self, epoch: int, shift: int, filters: MessageFilter, start: int, anchor_id: int | None,
                     top: int | None = None, total: int | None = None, counted_top: int | None = None) -> None:
        # `top` is given oldest first: rows newer than it come with the live tail, at the end, once.
        try:
            if top is not None and (anchor_id is not None or start == 0):
                rows = await self.data.read(page_after, filters, anchor_id or 0, top, PAGE)
            elif anchor_id is not None or start == 0:
                rows = await self.data.read(page_before, filters, anchor_id, PAGE)
            else:
                # `total` rows up to `counted_top`: End counts back from the oldest, no OFFSET over all
                rows = await self.data.read(messages_at_offset, filters, start, PAGE, top is not None,
                                            counted_top, total)
        except BaseException:
            self._pending.discard(start)  # asked again when next drawn
            raise
        self._apply_fetch(epoch, shift, start, rows)

    def _apply_fetch(self, epoch: int, shift: int, start: int, rows: list[MessageRow]) -> None:
        self._pending.discard(start)
        if epoch != self._epoch:
            return
        base = start + (self._shift - shift)
        for i, row in enumerate(rows):
            self._rows[base + i] = row
        self._widen(rows)
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
        cursor = pos == self.cursor
        base = self.cached_style()
        if cursor:
            base = base + self.cached_style("message-log--cursor")
            if not (self.app.native_ansi_color or self.app.no_color) and base.bgcolor is not None:
                # `color: auto` reads in true colour only; a 256-colour terminal draws the
                # background's nearest colour, on which white can fall below 4.5:1.
                base = base + Style(color=text_on(base.bgcolor, self.app.ansi_theme))
        return Strip(self._segments(row, width, base, cursor), width).crop(0, width)

    def _widen(self, rows: list[MessageRow]) -> None:
        widths = self.widths.grown(rows)
        if widths != self.widths:
            self.widths = widths
            self.refresh()
            self._announce()  # the screen redraws the header to match

    def header(self) -> str:
        return header_text(self.content_width, self.widths)

    def _word_style(self, kind: str, word: str, base: Style, cursor: bool) -> Style | None:
        """The style of an action or reply word on this theme: its colour made to read on the row's
        background (tui/contrast.py), none on the cursor row or without colour (attributes only)."""
        cache = self._style_cache()
        key = (f"{kind}:{word}", cursor)
        if key not in cache:
            no_color = self.app.no_color or cursor
            hint = action_style(word, no_color) if kind == "action" else status_style(word, no_color)
            cache[key] = hint if hint is None else readable(hint, base, self.app.ansi_theme,
                                                            ansi=self.app.native_ansi_color)
        return cache.get(key)

    def _segments(self, row: MessageRow, width: int, base: Style, cursor: bool = False) -> list[Segment]:
        status = reply_label(row)
        # Every cell is inert: credential names are typed by operators or imported, and a number
        # that does not parse is kept as received (Segment text goes to the terminal verbatim).
        # A receivedAt not believed (ahead of the receiver's clock) is marked where the time is shown.
        time = row.received_at[11:19] if not row.decided_at else "!" + row.decided_at[11:16]
        values = {"time": time, "credential": row.credential or "-", "from": row.from_number,
                  "to": row.to_number, "text": row.text.replace("\n", " "), "action": row.action, "reply": status}
        styles = {"action": self._word_style("action", row.action, base, cursor),
                  "reply": self._word_style("reply", status, base, cursor)}
        segments = []
        for name, cell_width in layout(width, self.widths):
            style = styles.get(name)
            segments.append(Segment(fit(make_inert(values[name]).replace("\n", " "), cell_width),
                                    base + style if style else base))
        return segments

    # ---- navigation -----------------------------------------------------------------------
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.oldest_first:
            return  # nothing to follow at the top: the oldest message is there
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

    def list_cursor(self) -> int:
        return self.cursor

    def list_length(self) -> int:
        return self.total

    def list_page_rows(self) -> int:
        return max(1, self.size.height)

    def list_move(self, row: int) -> None:
        self._move_cursor(row)

    def action_page(self, direction: int) -> None:
        # The view moves a page first: the cursor keeps its line on the screen.
        self.scroll_to(y=max(0, self.scroll_offset.y + direction * self.list_page_rows()), animate=False)
        super().action_page(direction)

    def action_live(self) -> None:
        """Back to the newest message, following new ones again (newest first)."""
        if self.oldest_first:
            self.set_order(False)
            return
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
        searched = self._all_top - self._scope.after if self._scope.after else 0
        self.post_message(self.StateChanged(self.follow, self.new_count, self.total, self.all_total, self.more,
                                            searched))

    @property
    def cursor_row(self) -> MessageRow | None:
        return self._rows.get(self.cursor)

