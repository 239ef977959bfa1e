"""F1 / ? help: the keys of the screen it was opened from, as currently mapped."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from smsdesk.tui.screens.dialog_css import DIALOG_CSS

NOTES = (
    ("ctrl+p", "command palette: every action by name"),
    ("edit form", "f2 or ctrl+g saves, f3 shows/hides the API key, tab moves, esc cancels"),
)


class HelpScreen(ModalScreen[None]):
    CSS_PATH = DIALOG_CSS
    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, title: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.help_title = title
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, description in [*self.keys, *NOTES]:
            table.add_row(key, description)
        with VerticalScroll(id="help-body", classes="dialog") as body:
            body.border_title = f"Help: {self.help_title}"
            yield Static(table)
        yield Footer()
