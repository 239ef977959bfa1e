"""Copy a credential into another sandbox: same key and rules, a new name and inbound number."""

from __future__ import annotations

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from smsdesk.domain.credential import Credential, StoredCredential, field_errors
from smsdesk.domain.inert import make_inert
from smsdesk.store.errors import DuplicateError, StoreError
from smsdesk.tui.data import DataService
from smsdesk.tui.key_hints import label_buttons
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.credential_form import plain
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.workers import ReportsWorkerErrors, describe_error
from smsdesk.usecases.credentials import save_credential

FIELDS = (("name", "New name"), ("sandbox", "Sandbox"), ("inbound_number", "Inbound number"))


class DuplicateScreen(ReportsWorkerErrors, ModalScreen[StoredCredential | None]):
    """Dismisses with the new credential, or None when cancelled."""
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Copy to another sandbox"
    HELP_NOTES = (("The copy", ""), ("keeps", "the API key, keywords and replies of the original"),
                  ("needs", "its own name, and its own inbound number or none"))

    BINDINGS = [
        Binding("f2,ctrl+g", "save", "Create copy", id="duplicate.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="duplicate.cancel"),
        HELP_BINDING,
    ]

    class Finished(Message):
        def __init__(self, saved: StoredCredential | None, field: str = "", error: str = "") -> None:
            super().__init__()
            self.saved = saved
            self.field = field
            self.error = error

    def __init__(self, data: DataService, source: StoredCredential) -> None:
        super().__init__()
        self.data = data
        self.store_errors: dict[str, tuple[str, str]] = {}  # field -> (value refused, why)
        self.source = source
        self.saving = False

    def compose(self) -> ComposeResult:
        start = {"name": f"{self.source.name} copy", "sandbox": "", "inbound_number": ""}
        with Vertical(id="duplicate-dialog", classes="dialog") as dialog:
            dialog.border_title = "Copy to another sandbox"
            yield Static(Text(f"Copies {make_inert(self.source.name)} ({self.source.sandbox}) with the same "
                              "API key and keyword rules.", style="dim"))
            for name, label in FIELDS:
                with Horizontal(classes="field-row"):
                    yield Label(label, classes="field-label")
                    yield Input(start[name], compact=True, id=f"d-{name}")
                yield Static("", id=f"dnote-{name}", classes="field-note")
            with Horizontal(classes="buttons"):
                yield Button("Copy", variant="primary", id="duplicate-save")  # + its key, on mount
                yield Button("Cancel", id="duplicate-cancel")
        yield KeyBar()

    def on_mount(self) -> None:
        label_buttons(self, {"#duplicate-save": "Copy {key:duplicate.save}"})
        for name, _ in FIELDS:
            self.query_one(f"#dnote-{name}", Static).display = False
        self.query_one("#d-sandbox", Input).focus()

    def _build(self) -> tuple[Credential | None, dict[str, str]]:
        data = self.source.to_credential().model_dump(mode="json")
        for name, _ in FIELDS:
            data[name] = self.query_one(f"#d-{name}", Input).value
        try:
            return Credential.model_validate(data), {}
        except ValidationError as exc:
            return None, {name: plain(message) for name, message in field_errors(exc).items()}

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        """Validate as you type: a fixed field loses its error at once, none goes stale."""
        _, errors = self._build()
        for name, (value, why) in self.store_errors.items():
            if self.query_one(f"#d-{name}", Input).value == value:
                errors.setdefault(name, why)  # the store's refusal holds while the value is unchanged
        self._show_errors({f: m for f, m in errors.items() if f in dict(FIELDS)}, quiet=True)

    def _show_errors(self, errors: dict[str, str], *, quiet: bool = False) -> None:
        for name, _ in FIELDS:
            note = self.query_one(f"#dnote-{name}", Static)
            message = errors.get(name, "")
            note.update(Text(f"✗ {make_inert(message)}", style="bold red") if message else "")
            note.display = bool(message)
        other = {f: m for f, m in errors.items() if f not in dict(FIELDS)}
        if other and not quiet:
            self.notify("; ".join(f"{f}: {m}" for f, m in other.items()), severity="error", markup=False)

    @on(Input.Submitted)
    @on(Button.Pressed, "#duplicate-save")
    def action_save(self) -> None:
        if self.saving:
            return
        cred, errors = self._build()
        self._show_errors(errors)
        if cred is None:
            self.app.bell()
            return
        self.saving = True
        self._create(cred)

    @work(group="credential-duplicate", exit_on_error=False)
    async def _create(self, cred: Credential) -> None:
        try:
            saved = await self.data.write(save_credential, cred, None)
        except DuplicateError as exc:
            self.post_message(self.Finished(None, exc.field, exc.message))
        except (StoreError, Exception) as exc:
            self.post_message(self.Finished(None, "credential", f"Not copied: {describe_error(exc)}"))
        else:
            self.post_message(self.Finished(saved))

    @on(Finished)
    def _finished(self, event: Finished) -> None:
        self.saving = False
        if event.saved is not None:
            self.dismiss(event.saved)
        else:
            if event.field in dict(FIELDS):
                self.store_errors[event.field] = (self.query_one(f"#d-{event.field}", Input).value, event.error)
            self._show_errors({event.field: event.error})

    @on(Button.Pressed, "#duplicate-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
