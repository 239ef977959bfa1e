"""Opting a number out by hand: the revocation that reached the operator by phone, email or
letter (store/operator_opt_out.py). Asks for the reason the ledger will keep; dismisses with it,
or with None when cancelled."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from smsdesk.domain.inert import make_inert
from smsdesk.store.operator_opt_out import MAX_REASON
from smsdesk.tui.key_hints import label_buttons
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.key_bar import KeyBar


class OptOutScreen(ModalScreen[str | None]):
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Opt a number out"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="opt_out.cancel"),
        Binding("f2", "confirm", "Opt out", id="opt_out.confirm"),
        HELP_BINDING,
    ]

    def __init__(self, sandbox: str, number: str) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.number = number

    def compose(self) -> ComposeResult:
        with Vertical(id="opt-out-dialog", classes="dialog") as dialog:
            dialog.border_title = "Opt out"
            # Text, not markup, and inert: a number stored as received may hold anything.
            yield Static(Text(make_inert(
                f"Opt {self.number} out of sandbox {self.sandbox}, now. Queued replies are cancelled; "
                "the ledger keeps your OS user and the reason. It always applies.")), id="opt-out-question")
            yield Input(placeholder="how it reached you: phone call, email, letter…", max_length=MAX_REASON,
                        id="opt-out-reason")
            yield Static("", id="opt-out-error")
            with Horizontal(classes="buttons"):
                yield Button("Opt out", variant="error", id="opt-out-yes")
                yield Button("Cancel", id="opt-out-no")
        yield KeyBar()  # its own keys, not the list's behind it

    def on_mount(self) -> None:
        label_buttons(self, {"#opt-out-yes": "Opt out ({key:opt_out.confirm})",
                             "#opt-out-no": "Cancel ({key:opt_out.cancel})"})
        self.query_one("#opt-out-reason", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_confirm(self) -> None:
        reason = self.query_one("#opt-out-reason", Input).value.strip()
        if not reason or not reason.isprintable():
            self.query_one("#opt-out-error", Static).update(
                "Give the reason in printable characters (the ledger keeps it)." if reason else
                "Give the reason: how the opt-out reached you.")
            return
        self.dismiss(reason)

    @on(Input.Submitted, "#opt-out-reason")
    def _submitted(self) -> None:
        self.action_confirm()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "opt-out-yes":
            self.action_confirm()
        else:
            self.dismiss(None)
