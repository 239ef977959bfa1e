"""F1 / ? help: the keys of the screen it was opened from, as currently mapped (with each
binding's id, which the keymap in the settings file uses), then that screen's notes: its filter
syntax and the legend of its words and styles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from textual.app import App

NOTES = (
    ("{palette}", "command palette: every action by name"),
    ("settings", "theme and keymap: `smsdesk config path` names the file, `smsdesk config example` shows one"),
)

Row = tuple[str, str]


def help_keys(app: App[object], screen: Screen[object]) -> list[tuple[str, str, str]]:
    """(keys, description, binding id): one line per binding id (so "f1" and "?" share a line),
    only the bindings this app defines: widget internals such as an Input's cursor keys would
    drown the list."""
    by_id: dict[str, tuple[list[str], str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.id is None or binding.id.startswith("app.view.") or not binding.description:
            continue
        keys_shown, _ = by_id.setdefault(binding.id, ([], binding.description))
        shown = app.get_key_display(binding)
        if shown not in keys_shown:
            keys_shown.append(shown)
    return [(" / ".join(shown), description, binding_id) for binding_id, (shown, description) in by_id.items()]


class HelpScreen(ModalScreen[None]):
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Help"
    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close", id="help.close")]

    def __init__(self, title: str, keys: list[tuple[str, str, str]] | list[Row],
                 notes: tuple[Row, ...] = ()) -> None:
        super().__init__()
        self.help_title = title
        self.keys: list[Row] = [(k[0], k[1]) for k in keys]
        self.ids = {k[0]: k[2] for k in keys if len(k) > 2}  # keys -> binding id (the keymap's name)
        self.notes = notes

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        # Text cells, never markup: an inbound word or "[x]" is text, not a style tag.
        for key, description in self.keys:
            binding_id = self.ids.get(key)
            cell = Text(description)
            if binding_id:
                cell.append(f"  {binding_id}", style="italic")  # the name to remap it by
            table.add_row(Text(key), cell)
        for heading, text in self.notes:
            if not text:  # a heading line
                table.add_row(Text(""), Text(""))
                table.add_row(Text(heading, style="bold underline"), Text(""))
            else:
                table.add_row(Text(heading), Text(text))
        table.add_row(Text(""), Text(""))
        palette = self.app.get_key_display(Binding(self.app.COMMAND_PALETTE_BINDING, ""))
        for key, description in NOTES:
            table.add_row(Text(key.replace("{palette}", palette)), Text(description))
        with VerticalScroll(id="help-body", classes="dialog") as body:
            body.border_title = f"Help: {self.help_title}"
            yield Static(table, id="help-table")
        yield KeyBar()
