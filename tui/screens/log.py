"""The live inbound log screen: traffic strip, filter line, the log, and a status line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from smsdesk.store.heartbeat import HEARTBEAT_SECONDS
from smsdesk.store.outbox import backlog
from smsdesk.store.queries import receiver_heartbeat_at
from smsdesk.tui.adapters import export_file_name, export_messages
from smsdesk.tui.data import DatabaseChanged, DataService, HeartbeatSeen
from smsdesk.tui.filter_parser import FilterSyntaxError
from smsdesk.tui.key_hints import with_keys
from smsdesk.tui.log_filter import SYNTAX, describe, parse_filter
from smsdesk.tui.protocols import DeskApp
from smsdesk.tui.screens.message_detail import MessageDetailScreen
from smsdesk.tui.screens.view import ViewScreen
from smsdesk.tui.vocabulary import legend
from smsdesk.tui.widgets.filter_line import FilterLine
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.widgets.message_log import MessageLog
from smsdesk.tui.widgets.traffic import TrafficStrip, system_clock

# A running `smsdesk serve` records a heartbeat every HEARTBEAT_SECONDS: three missed beats and
# the empty log says no receiver is running.
RUNNING_SECONDS = 3 * HEARTBEAT_SECONDS


def empty_log_text(heartbeat: str | None, now: datetime, location: str) -> Text:
    """What an operator facing an empty log needs: how messages get here, and whether a receiver
    (`smsdesk serve`) is running on this database now, judged from its heartbeat."""
    text = Text("No messages yet.\n\n", style="bold")
    text.append("Inbound SMS arrive when `smsdesk serve` receives Infobip's webhook (POST /infobip/inbound), "
                "or pulls the inbox for credentials in pull mode. Point the number's forwarding in the "
                "Infobip portal at your receiver's URL. `smsdesk demo` shows it working with simulated "
                "traffic.\n\n")
    if heartbeat is None:
        text.append(f"No receiver has run on {location}: `smsdesk serve` has never recorded a heartbeat here.")
        return text
    ago = max(0, int((now - datetime.fromisoformat(heartbeat)).total_seconds()))
    when = f"{heartbeat[:19].replace('T', ' ')} UTC, {_ago(ago)} ago"
    if ago < RUNNING_SECONDS:
        text.append(f"A receiver is running on this database: `smsdesk serve` last checked in {when}.")
    else:
        text.append(f"No receiver is running on this database: `smsdesk serve` last checked in {when}.")
    return text


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def match_count(state: MessageLog.StateChanged) -> str:
    """How many match, as honestly as the read knows it: exact, "more than" where the count
    stopped (the list holds the first of them), or within the newest messages a short search read."""
    of = f"{state.all_total:,}"
    if state.searched:
        of = f"the newest {state.searched:,} (1-2 characters: not all searched) of {of}"
    if state.more:
        return f"first {state.total:,} of more than {state.total:,} matching {of}"
    return f"{state.total:,} of {of} match"


class LogScreen(ViewScreen):
    VIEW_MODE = "log"
    HELP_TITLE = "Inbound log"
    HELP_NOTES = (
        ("Filter ({key:log.filter})", ""),
        *SYNTAX,
        ("Actions and replies", ""),
        *legend(),
        ("Time", ""),
        ("!12:03", "receivedAt was over 5 minutes ahead of this clock: consent decided at its arrival "
                   "({key:log.details})"),
    )
    DEFAULT_CSS = """
    LogScreen #log-status { height: 1; background: $boost; padding: 0 1; }
    LogScreen #log-status.paused { background: $warning 30%; text-style: bold; }
    LogScreen #log-header { height: 1; text-style: bold underline; }
    LogScreen #log-empty { display: none; padding: 1 2; height: auto; }
    LogScreen #log-empty.shown { display: block; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="log.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="log.clear_filter"),
        Binding("y", "copy", "Copy number", id="log.copy"),
        Binding("p", "profile", "Profile", id="log.profile"),
        Binding("x", "export", "Export", id="log.export"),
        Binding("s", "sort", "Sort oldest/newest first", id="log.sort"),
        Binding("Y", "copy_id", "Copy message id", show=False, id="log.copy_id"),
    ]

    def __init__(self, data: DataService, *, name: str | None = None,
                 clock: Callable[[], datetime] = system_clock, export_dir: Path | None = None) -> None:
        super().__init__(data, name=name)
        self.clock = clock  # the traffic strip's "now"
        self.export_dir = export_dir  # None: the current directory
        self.filter_text = ""
        self.backlog_text = ""
        self.heartbeat: str | None = None  # when a receiver last checked in
        self._last_state: MessageLog.StateChanged | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield TrafficStrip(self.data, clock=self.clock)
        yield FilterLine(input_id="log-filter", id="log-filter-line",
                         placeholder="cred:NAME action:opt-out num:DIGITS text  "
                                     "(Enter: list, {key:log.clear_filter}: clear)")
        yield Static("", id="log-status")
        yield Static("", id="log-header")
        yield Static("", id="log-empty")
        yield MessageLog(self.data, id="message-log")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(MessageLog).focus()
        self._check_backlog()

    def refresh_data(self, event: DatabaseChanged | None) -> None:
        if event is None or not event.clock:
            self.log_view.refresh_data()
        self._check_backlog()  # on the clock too: a receiver that stopped writes no more heartbeats
        self.query_one(TrafficStrip).reload()

    def on_heartbeat_seen(self, event: HeartbeatSeen) -> None:
        """Only the receiver's heartbeat moved: the empty log's line about it, nothing read."""
        self._take_heartbeat(event.at)

    def on_screen_resume(self) -> None:
        # Heartbeats seen while another view was shown (ViewScreen's handler runs as well).
        if self.data.heartbeat is not None:
            self._take_heartbeat(self.data.heartbeat)

    def _take_heartbeat(self, at: str | None) -> None:
        if at != self.heartbeat:
            self.heartbeat = at
            self._update_status()

    def on_resize(self) -> None:
        self.call_after_refresh(self._update_header)

    def _update_header(self) -> None:
        # Also called after a refresh, which may come when the screen is already torn down.
        for header, log in zip(self.query("#log-header").results(Static), self.query(MessageLog).results(MessageLog),
                               strict=False):
            header.update(log.header())

    @property
    def log_view(self) -> MessageLog:
        return self.query_one(MessageLog)

    @property
    def filter_line(self) -> FilterLine:
        return self.query_one(FilterLine)

    # ---- filter -------------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.filter_line.open()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":  # the way out, in the key bar while typing a filter or one applies
            line = self.filter_line
            return bool(self.filter_text) or line.has_class("visible") or line.input.has_focus
        return True

    def action_clear_filter(self) -> None:
        self.filter_line.clear()
        if self.filter_text:
            self.filter_text = ""
            self.log_view.set_filters(parse_filter(""))
        self.log_view.focus()

    @on(FilterLine.Apply)
    def _apply_filter(self, event: FilterLine.Apply) -> None:
        if (filters := event.parse(parse_filter, FilterSyntaxError)) is None:
            return
        if filters != self.log_view.filters:
            self.filter_text = event.text
            self.log_view.set_filters(filters)
        if event.final:
            event.line.close()
            self.log_view.focus()

    # ---- order ---------------------------------------------------------------------------------
    def action_sort(self) -> None:
        """Newest first (live) <-> oldest first; both are keyset-paged by the query."""
        log = self.log_view
        log.set_order(not log.oldest_first)
        log.focus()

    # ---- status -------------------------------------------------------------------------------
    @on(MessageLog.StateChanged)
    def _update_status(self, event: MessageLog.StateChanged | None = None) -> None:
        if event is not None:
            self._last_state = event
            # The scrollbar appears once rows arrive, columns widen: the header follows the rows.
            self._update_header()
        state = self._last_state
        if state is None:
            return
        status = self.query_one("#log-status", Static)
        filters = self.log_view.filters
        shown = describe(filters)
        if filters.active:
            count = match_count(state)
            where = f"  filter {shown}"
        else:
            count, where = f"{state.total:,} messages", ""
        if self.log_view.oldest_first:
            badge = f"{state.new_count:,} new at the end  " if state.new_count else ""
            status.update(with_keys(self, f"↑ OLDEST FIRST  {badge}({{key:log.sort}}: newest first)  ")
                          + f"{count}{where}{self.backlog_text}")
            status.add_class("paused")
        elif state.follow:
            status.update(f"● LIVE  {count}{where}{self.backlog_text}")
            status.remove_class("paused")
        else:
            badge = f"{state.new_count:,} new  " if state.new_count else ""
            status.update(with_keys(self, f"⏸ PAUSED  {badge}({{key:log.live}}: back to live)  ")
                          + f"{count}{where}{self.backlog_text}")
            status.add_class("paused")
        self._update_empty(state)

    def _update_empty(self, state: MessageLog.StateChanged) -> None:
        empty = self.query_one("#log-empty", Static)
        if state.all_total == 0 and state.total == 0 and self.log_view.loaded:
            empty.update(empty_log_text(self.heartbeat, datetime.now(UTC), self.data.location))
            empty.add_class("shown")
        else:
            empty.remove_class("shown")

    @work(exclusive=True, group="log-backlog", exit_on_error=False)
    async def _check_backlog(self) -> None:
        # Replies waiting for Infobip (an outage, a bad key) must be visible, not silent.
        counts = await self.data.read(backlog)
        self.heartbeat = await self.data.read(receiver_heartbeat_at)
        parts = [f"{counts[s]:,} {s}" for s in ("queued", "unknown", "failed") if counts.get(s)]
        text = f"  replies: {', '.join(parts)}" if parts else ""
        if text != self.backlog_text or (self._last_state is not None and self._last_state.all_total == 0):
            self.backlog_text = text
            self._update_status()

    # ---- a message ----------------------------------------------------------------------------
    @on(MessageLog.Selected)
    def _show_detail(self, event: MessageLog.Selected) -> None:
        self.app.push_screen(MessageDetailScreen(event.row, self.data))

    def action_copy(self) -> None:
        row = self.log_view.cursor_row
        if row is not None:
            self.app.copy_to_clipboard(row.from_number)  # OSC 52: reaches the local clipboard over SSH
            self.notify(f"Copied {row.from_number}", timeout=2, markup=False)

    def action_copy_id(self) -> None:
        row = self.log_view.cursor_row
        if row is not None:
            self.app.copy_to_clipboard(row.message_id)
            self.notify(f"Copied message id {row.message_id}", timeout=2, markup=False)

    def action_profile(self) -> None:
        row = self.log_view.cursor_row
        if row is None or not row.sandbox:
            self.notify("This message has no profile (unrouted: no credential owns the number)",
                        severity="warning")
            return
        if isinstance(self.app, DeskApp):
            self.app.show_profile(row.sandbox, row.from_number)

    @work(group="log-export", exit_on_error=False)
    async def action_export(self) -> None:
        folder = self.export_dir or Path.cwd()
        path = folder / export_file_name()
        filters = self.log_view.filters
        count = await self.data.read(export_messages, filters, path)
        what = f" matching {describe(filters)}" if filters.active else ""
        self.notify(f"Exported {count:,} messages{what} to {path}", timeout=6, markup=False)
