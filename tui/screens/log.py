"""The live inbound log screen: traffic strip, filter line, the log, and a status line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from smsdesk.store.outbox import backlog
from smsdesk.tui.db_watch import ChangeWatcher
from smsdesk.tui.log_filter import FilterSyntaxError, describe, parse_filter
from smsdesk.tui.screens.message_detail import MessageDetailScreen
from smsdesk.tui.widgets.message_log import MessageLog, header_text
from smsdesk.tui.widgets.traffic import TrafficStrip, system_clock


class LogScreen(Screen[None]):
    DEFAULT_CSS = """
    LogScreen #log-filter { display: none; height: 3; }
    LogScreen #log-filter.visible { display: block; }
    LogScreen #log-status { height: 1; background: $boost; padding: 0 1; }
    LogScreen #log-status.paused { background: $warning 30%; }
    LogScreen #log-header { height: 1; color: $text-muted; text-style: bold; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="log.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="log.clear_filter"),
    ]

    def __init__(self, db_path: Path, *, poll_seconds: float = 0.25, name: str | None = None,
                 clock: Callable[[], datetime] = system_clock) -> None:
        super().__init__(name=name)
        self.db_path = db_path
        self.poll_seconds = poll_seconds
        self.clock = clock  # the traffic strip's "now"
        self.filter_text = ""
        self.backlog_text = ""
        self._last_state: MessageLog.StateChanged | None = None
        self._watcher = ChangeWatcher(db_path)

    def compose(self) -> ComposeResult:
        yield TrafficStrip(self.db_path, clock=self.clock)
        yield Input(placeholder="cred:NAME action:opt-out num:DIGITS free text   (Enter applies, Esc clears)",
                    id="log-filter")
        yield Static("", id="log-status")
        yield Static("", id="log-header")
        yield MessageLog(self.db_path, poll_seconds=self.poll_seconds, id="message-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(MessageLog).focus()
        self.set_interval(2.0, self._check_backlog)
        self._check_backlog()

    def on_resize(self) -> None:
        self.call_after_refresh(self._update_header)

    def _update_header(self) -> None:
        # Also called after a refresh, which may come when the screen is already torn down.
        headers = self.query("#log-header").results(Static)
        logs = self.query(MessageLog).results(MessageLog)
        for header, log in zip(headers, logs, strict=False):
            header.update(header_text(log.content_width))

    @property
    def log_view(self) -> MessageLog:
        return self.query_one(MessageLog)

    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.add_class("visible")
        box.value = self.filter_text
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.remove_class("visible")
        if self.filter_text:
            self.filter_text = ""
            self.log_view.set_filters(parse_filter(""))
        self.log_view.focus()

    @on(Input.Submitted, "#log-filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        try:
            filters = parse_filter(event.value)
        except FilterSyntaxError as exc:
            self.notify(str(exc), severity="error")
            return
        self.filter_text = event.value
        event.input.remove_class("visible")
        self.log_view.set_filters(filters)
        self.log_view.focus()

    @on(MessageLog.StateChanged)
    def _update_status(self, event: MessageLog.StateChanged | None = None) -> None:
        if event is not None:
            self._last_state = event
            # The scrollbar appears once rows arrive: the header must follow the rows' width.
            self._update_header()
        state = self._last_state
        if state is None:
            return
        status = self.query_one("#log-status", Static)
        shown = describe(self.log_view.filters)
        where = f"  filter {shown}" if shown else ""
        if state.follow:
            status.update(f"● LIVE  {state.total:,} messages{where}{self.backlog_text}")
            status.remove_class("paused")
        else:
            badge = f"{state.new_count:,} new  " if state.new_count else ""
            status.update(f"⏸ PAUSED  {badge}(l: back to live)  {state.total:,} messages{where}{self.backlog_text}")
            status.add_class("paused")

    @work(thread=True, exclusive=True, group="log-backlog")
    def _check_backlog(self) -> None:
        # Replies waiting for Infobip (an outage, a bad key) must be visible, not silent.
        if not self._watcher.changed():
            return
        counts = self._watcher.read(backlog)  # the watcher's open reader connection
        parts = [f"{counts[s]:,} {s}" for s in ("queued", "failed") if counts.get(s)]
        text = f"  replies: {', '.join(parts)}" if parts else ""
        self.app.call_from_thread(self._show_backlog, text)

    def _show_backlog(self, text: str) -> None:
        # The worker may finish while the screen is being torn down (quit, mode removed).
        if text != self.backlog_text and self.is_mounted and self.query("#log-status"):
            self.backlog_text = text
            self._update_status()

    def on_unmount(self) -> None:
        self._watcher.close()

    @on(MessageLog.Selected)
    def _show_detail(self, event: MessageLog.Selected) -> None:
        self.app.push_screen(MessageDetailScreen(event.row, self.db_path))
