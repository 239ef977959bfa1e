"""A yes/no question as a modal: dismisses with True only on an explicit yes.

It has its own key bar (its keys, not the list's behind it), and its buttons name the keys the
keymap gives `confirm.yes` and `confirm.no`."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from smsdesk.tui.key_hints import label_buttons
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.key_bar import KeyBar


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Question"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
        HELP_BINDING,
    ]

    def __init__(self, title: str, question: str, *, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            # Text, not markup: the question usually quotes a user-chosen credential name.
            yield Static(Text(self.question), id="confirm-question")
            with Horizontal(classes="buttons"):
                yield Button(self.yes_label, variant="error", id="confirm-yes")
                yield Button(self.no_label, id="confirm-no")
        yield KeyBar()

    def on_mount(self) -> None:
        label_buttons(self, {"#confirm-yes": f"{self.yes_label} ({{key:confirm.yes}})",
                             "#confirm-no": f"{self.no_label} ({{key:confirm.no}})"})
        # Focus starts on the safe answer: Enter on an accidental `d` must not delete.
        self.query_one("#confirm-no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")
