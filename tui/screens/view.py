"""What every top-level view shares: the tab line, the problem line, the key bar, F1's notes,
and the reaction to `DatabaseChanged` (re-read what is shown).

A view holds the app's `DataService` (never a database path) and implements `refresh_data`.
A view that was not on screen when the data changed re-reads when it comes back.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from smsdesk.tui.data import DatabaseChanged, DataService
from smsdesk.tui.protocols import DeskApp, Notes
from smsdesk.tui.widgets.view_tabs import ViewTabs
from smsdesk.tui.workers import ReportsWorkerErrors


class ViewScreen(ReportsWorkerErrors, Screen[None]):
    VIEW_MODE = ""
    # F1 shows the screen's keys (from its bindings) and then these: (heading, text) lines,
    # such as the filter syntax and the legend of the styles the view uses.
    HELP_NOTES: Notes = ()

    def __init__(self, data: DataService, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.data = data
        self.seen_version = data.version
        self.problem = ""

    def compose_top(self) -> ComposeResult:
        yield ViewTabs(self.VIEW_MODE, id="view-tabs")
        yield Static("", id="view-problem")

    # ---- problems -----------------------------------------------------------------------------
    def show_problem(self, text: str) -> None:
        """Shown under the tab line until `clear_problem` (the app clears it once reads work)."""
        self.problem = text
        for line in self.query("#view-problem").results(Static):
            line.update(Text(f"✗ {text}", style="bold"))
            line.add_class("shown")

    def clear_problem(self) -> None:
        self.problem = ""
        for line in self.query("#view-problem").results(Static):
            line.update("")
            line.remove_class("shown")

    # ---- live data ----------------------------------------------------------------------------
    def on_database_changed(self, event: DatabaseChanged) -> None:
        self.seen_version = event.version
        self.refresh_data(event)

    def on_screen_resume(self) -> None:
        # A standing problem (the app's notice) that came or went while this view was away; a
        # passing problem ("... (retrying)") is the app's to clear.
        notice = self.app.notice if isinstance(self.app, DeskApp) else ""
        if self.problem != notice and not self.problem.endswith("(retrying)"):
            if notice:
                self.show_problem(notice)
            else:
                self.clear_problem()
        if self.seen_version != self.data.version:
            self.seen_version = self.data.version
            self.refresh_data(None)

    def refresh_data(self, event: DatabaseChanged | None) -> None:
        """Re-read what the view shows (in a worker). `event` is None on coming back into view."""


# Dialogs stop the app's bindings (Textual ignores bindings below the last modal screen), which
# left F1 dead in the form and the message detail: each dialog binds it again, under the app's
# binding id, so the key bar pins it and a keymap entry for `app.help` moves it everywhere.
HELP_BINDING = Binding("f1", "app.help", "Help", id="app.help", key_display="F1")

# The views and their keys (SmsDeskApp.VIEWS is built from these). Dialogs that only show
# something (a message, a profile, a verify result) bind the keys again, under the app's ids, so a
# digit switches views there as in a list (and follows the keymap); the dialog stays on its view's
# stack and is there again when that view is shown. Forms and questions do not: a digit there is
# text or no answer.
VIEW_KEYS: tuple[tuple[str, str, str], ...] = (
    ("credentials", "1", "Credentials"),
    ("log", "2", "Inbound log"),
    ("profiles", "3", "Profiles"),
    ("tester", "4", "Keyword tester"),
    ("review", "5", "Review"),
)
VIEW_BINDINGS = [Binding(key, f"app.view('{mode}')", title, show=False, id=f"app.view.{mode}")
                 for mode, key, title in VIEW_KEYS]
