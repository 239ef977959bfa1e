"""The live inbound log screen: traffic strip, filter line, the log, and a status line."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui.log_filter import FilterSyntaxError, describe, parse_filter
from tui.screens.message_detail import MessageDetailScreen
from tui.widgets.message_log import MessageLog, header_text
from tui.widgets.traffic import TrafficStrip


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

    def __init__(self, db_path: Path, *, poll_seconds: float = 0.25, name: str | None = None) -> None:
        super().__init__(name=name)
        self.db_path = db_path
        self.poll_seconds = poll_seconds
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield TrafficStrip(self.db_path)
        yield Input(placeholder="cred:NAME action:opt-out num:DIGITS free text   (Enter applies, Esc clears)",
                    id="log-filter")
        yield Static("", id="log-status")
        yield Static("", id="log-header")
        yield MessageLog(self.db_path, poll_seconds=self.poll_seconds, id="message-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(MessageLog).focus()

    def on_resize(self) -> None:
        self.call_after_refresh(self._update_header)

    def _update_header(self) -> None:
        self.query_one("#log-header", Static).update(header_text(self.log_view.content_width))

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
    def _update_status(self, event: MessageLog.StateChanged) -> None:
        status = self.query_one("#log-status", Static)
        shown = describe(self.log_view.filters)
        where = f"  filter {shown}" if shown else ""
        if event.follow:
            status.update(f"● LIVE  {event.total:,} messages{where}")
            status.remove_class("paused")
        else:
            badge = f"{event.new_count:,} new  " if event.new_count else ""
            status.update(f"⏸ PAUSED  {badge}(l: back to live)  {event.total:,} messages{where}")
            status.add_class("paused")

    @on(MessageLog.Selected)
    def _show_detail(self, event: MessageLog.Selected) -> None:
        self.app.push_screen(MessageDetailScreen(event.row))
