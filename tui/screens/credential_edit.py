"""Create or edit one credential: grouped fields, validation as you type, save in a worker."""

from __future__ import annotations

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from smsdesk.domain.credential import Credential, StoredCredential, field_errors
from smsdesk.domain.inert import make_inert
from smsdesk.domain.presets import PRESETS
from smsdesk.domain.sms_parts import count_parts
from smsdesk.store.errors import ConflictError, DuplicateError, StoreError
from smsdesk.store.queries import impact_preview
from smsdesk.tui.data import DataService
from smsdesk.tui.key_hints import label_buttons, with_keys
from smsdesk.tui.screens.confirm import ConfirmScreen
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.impact import ImpactScreen
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.credential_form import (
    BLOCKLIST_CHOICES,
    FIELD_SPECS,
    FUZZY_CHOICES,
    GROUPS,
    MESSAGE_FIELDS,
    MODE_CHOICES,
    PRESET_CHOICES,
    PROVIDER_CHOICES,
    FieldSpec,
    cross_field_errors,
    dropped_opt_out_words,
    form_values,
    plain,
    reply_lines,
)
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.widgets.list_input import ListInput
from smsdesk.tui.workers import ReportsWorkerErrors, describe_error
from smsdesk.usecases.credentials import load_credential, save_credential


def _field_widget(spec: FieldSpec, value: str) -> Widget:
    widget_id = f"f-{spec.name}"
    if spec.kind == "provider":
        return Select(PROVIDER_CHOICES, value=value, allow_blank=False, compact=True, id=widget_id)
    if spec.kind == "mode":
        return Select(MODE_CHOICES, value=value, allow_blank=False, compact=True, id=widget_id)
    if spec.kind == "fuzzy":
        return Select(FUZZY_CHOICES, value=value, allow_blank=False, compact=True, id=widget_id)
    if spec.kind == "blocklist":
        return Select(BLOCKLIST_CHOICES, value=value, allow_blank=False, compact=True, id=widget_id)
    if spec.kind == "keywords":  # Tab into it leaves the list as it is; Ctrl+Z undoes an edit
        return ListInput(value, placeholder=spec.placeholder, compact=True, id=widget_id)
    if spec.kind in ("message", "replies"):
        area = TextArea(value, soft_wrap=True, compact=True, tab_behavior="focus", id=widget_id)
        area.show_line_numbers = False
        return area
    return Input(value, placeholder=spec.placeholder, password=spec.kind == "password", compact=True,
                 type="integer" if spec.kind == "number" else "text", id=widget_id)


class CredentialEditScreen(ReportsWorkerErrors, ModalScreen[StoredCredential | None]):
    """Dismisses with the saved credential, or None when cancelled."""
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Credential form"
    HELP_NOTES = (
        ("The form", ""),
        ("tab / shift+tab", "next / previous field"),
        ("errors", "each next to its field, checked as you type; {key:edit.save} goes to the first one"),
        ("keywords", "comma-separated, e.g. STOP, OPT OUT; a custom list replaces the defaults"),
        ("preset", "fills the opt-in, opt-out and help lists (ajo, us, fr, es, de); edit them after"),
        ("custom replies", "one line per custom keyword: DISCOUNT = 10% off today"),
        ("fuzzy opt-out", "off, reply (fuzzy reply), review (queue, view 5), reply+review"),
        ("blocklist sync", "Infobip's Blocklist: off, push (opt-outs here block there), two-way (reconcile "
                           "also brings blocks there here)"),
        ("{key:edit.impact} impact",
         "what the edited rules would have done to the last 30 days of messages; nothing is saved"),
        ("changed by someone else", "{key:edit.reload} reloads their version and keeps the fields you changed"),
    )

    BINDINGS = [
        Binding("f2,ctrl+g", "save", "Save", id="edit.save", priority=True),
        Binding("f3", "toggle_key", "Show key", id="edit.toggle_key"),
        Binding("f6", "impact", "Impact", id="edit.impact"),
        Binding("f5", "reload_theirs", "Reload, keep my edits", id="edit.reload", show=False),
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
        HELP_BINDING,
    ]

    class SaveFinished(Message):
        def __init__(self, saved: StoredCredential | None, field: str = "", error: str = "") -> None:
            super().__init__()
            self.saved = saved
            self.field = field
            self.error = error

    def __init__(self, data: DataService, credential: StoredCredential | None = None) -> None:
        super().__init__()
        self.data = data
        self.conflict = False
        self.original = credential
        self.initial = form_values(credential)
        self.touched: set[str] = set()
        self.submitted = False
        self.saving = False
        self.errors: dict[str, str] = {}
        self.store_errors: dict[str, str] = {}
        self.valid: Credential | None = None
        self.dropped: list[str] = []  # opt-out words this save would drop (a save asks first)
        self._validated: dict[str, str] | None = None
        self._notes: dict[str, Text] = {}

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-dialog", classes="dialog") as dialog:
            if self.original is None:
                dialog.border_title = "New credential"
            else:
                dialog.border_title = f"Edit {make_inert(self.original.name)} (version {self.original.version})"
            yield Static("", id="edit-problem")
            # One grid (label | widget, notes spanning both) rather than a container per row:
            # the form has ~90 widgets and every extra container costs opening time.
            with VerticalScroll(id="edit-fields"):
                for group, specs in GROUPS:
                    yield Static(group, classes="group-title")
                    with Grid(classes="field-grid"):
                        if group == "Keywords and replies":
                            yield Label("Preset", classes="field-label")
                            yield Select(PRESET_CHOICES, prompt="fill the lists from a preset…", compact=True,
                                         id="preset")
                        for spec in specs:
                            yield Label(spec.label, classes="field-label")
                            yield _field_widget(spec, self.initial[spec.name])
                            yield Static("", id=f"note-{spec.name}", classes="field-note")
            with Horizontal(id="edit-bar"):
                yield Static("", id="edit-status")
                yield Button("Save", variant="primary", id="edit-save")
                yield Button("Cancel", id="edit-cancel")
        yield KeyBar()

    def on_mount(self) -> None:
        label_buttons(self, {"#edit-save": "Save {key:edit.save}"})
        self.query_one("#f-name", Input).focus()
        self.validate()

    # -- reading the form ----------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in FIELD_SPECS:
            widget = self.query_one(f"#f-{name}")
            if isinstance(widget, TextArea):
                found[name] = widget.text
            elif isinstance(widget, Select):
                found[name] = "" if widget.value is Select.NULL else str(widget.value)
            elif isinstance(widget, Input):
                found[name] = widget.value
        return found

    @property
    def modified(self) -> bool:
        return self.values() != self.initial

    @on(Select.Changed, "#preset")
    def _apply_preset(self, event: Select.Changed) -> None:
        if event.value is Select.NULL or not isinstance(event.value, str):
            return
        for name, keywords in PRESETS[event.value].fields().items():
            self._set_value(name, ", ".join(keywords))

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def _changed(self, event: Input.Changed | TextArea.Changed | Select.Changed) -> None:
        widget_id = event.control.id or ""
        if not widget_id.startswith("f-"):
            return
        name = widget_id.removeprefix("f-")
        values = self.values()
        if values == self._validated:
            return  # widgets report their initial values on mount: nothing to re-check
        if values.get(name) != self.initial.get(name):
            self.touched.add(name)
        # A store complaint (duplicate name...) is about the value that was saved; editing clears it.
        self.store_errors.pop(name, None)
        self.validate(values)

    # -- validation ----------------------------------------------------------------------------

    def validate(self, data: dict[str, str] | None = None) -> bool:
        data = self.values() if data is None else data
        self._validated = data
        warnings: dict[str, str] = {}
        try:
            self.valid = Credential.model_validate(data)
            self.errors = {}
            warnings = self.valid.warnings()
        except ValidationError as exc:
            self.valid = None
            self.errors = {name: plain(message) for name, message in field_errors(exc).items()}
        # Cross-field rules (DLT template without entity, a keyword in two lists) with the rest,
        # not only once every field is valid.
        cross = {name: message for name, message in cross_field_errors(data).items() if name not in self.errors}
        if cross:
            self.valid = None
            self.errors.update(cross)
        errors = {**self.errors, **self.store_errors}
        self.dropped = [] if self.valid is None else dropped_opt_out_words(self.initial["opt_out_keywords"],
                                                                           self.valid)
        for name in FIELD_SPECS:
            self._show_note(name, data[name], errors.get(name), warnings.get(name))
        self._show_status(errors)
        return self.valid is not None and not self.store_errors

    def _show_note(self, name: str, value: str, error: str | None, warning: str | None) -> None:
        note = self.query_one(f"#note-{name}", Static)
        # Errors of untouched fields in a new form stay quiet until a save is attempted:
        # an empty form is not a mistake yet.
        show_error = error is not None and (self.submitted or name in self.touched or self.original is not None)
        line = Text()
        if show_error:
            line.append(f"✗ {make_inert(error or '')}", style="bold red")
        elif warning:
            line.append(f"! {make_inert(warning)}", style="yellow")
        if name in MESSAGE_FIELDS:
            if line:
                line.append("  ")
            line.append(count_parts(value.strip()).describe(), style="dim")
        elif name == "custom_keyword_replies":
            for keyword, reply in reply_lines(value):
                if line:
                    line.append("\n")
                line.append(make_inert(f"{keyword}: {count_parts(reply).describe()}"), style="dim")
        if self._notes.get(name) != line:  # skip no-op updates: each one costs a restyle
            self._notes[name] = line
            note.update(line)
            note.display = bool(line)

    def _show_status(self, errors: dict[str, str]) -> None:
        status = self.query_one("#edit-status", Static)
        save = self.query_one("#edit-save", Button)
        if self.saving:
            status.update(Text("saving…", style="italic"))
        elif errors:
            labels = ", ".join(FIELD_SPECS[f].label if f in FIELD_SPECS else f for f in self._in_form_order(errors))
            noun = "field needs" if len(errors) == 1 else "fields need"
            status.update(Text(f"✗ {len(errors)} {noun} attention: {labels}", style="red"))
        elif self.dropped:
            status.update(Text(with_keys(self, f"! drops {', '.join(self.dropped)} from the opt-out list: "
                                               "{key:edit.save} asks first"), style="yellow"))
        else:
            status.update(Text(with_keys(self, "✓ valid: {key:edit.save} saves"), style="green"))
        save.disabled = bool(errors) or self.saving

    @staticmethod
    def _in_form_order(errors: dict[str, str]) -> list[str]:
        return [name for name in FIELD_SPECS if name in errors] + [name for name in errors if name not in FIELD_SPECS]

    def _show_problem(self, message: str) -> None:
        problem = self.query_one("#edit-problem", Static)
        problem.update(Text(make_inert(message), style="bold"))
        problem.display = bool(message)

    # -- actions -------------------------------------------------------------------------------

    @work(group="credential-impact", exclusive=True, exit_on_error=False)
    async def action_impact(self) -> None:
        """Compare the edited rules with what was done to this credential's recent messages."""
        if self.original is None:
            self._show_problem("A new credential has no stored messages: nothing to preview.")
            return
        if not self.validate() or self.valid is None:
            self.app.bell()
            self._show_problem("Fix the fields marked ✗ first: the preview uses the edited rules.")
            return
        self._show_problem("")
        impact = await self.data.read(impact_preview, self.original.id, self.valid)
        self.app.push_screen(ImpactScreen(impact))

    def action_toggle_key(self) -> None:
        key = self.query_one("#f-api_key", Input)
        key.password = not key.password

    @on(Button.Pressed, "#edit-save")
    def action_save(self) -> None:
        if self.saving:
            return
        self.submitted = True
        if not self.validate() or self.valid is None:
            self.app.bell()
            order = self._in_form_order({**self.errors, **self.store_errors})
            first = next(iter(order), None)
            if first in FIELD_SPECS:
                widget = self.query_one(f"#f-{first}")
                widget.focus()
                # The note under it too: an error at the bottom of the form must be seen.
                self.query_one(f"#note-{first}").scroll_visible(animate=False)
            return
        if self.dropped:
            self._confirm_dropping(self.valid, list(self.dropped))
            return
        self._start_save(self.valid)

    def _confirm_dropping(self, cred: Credential, words: list[str]) -> None:
        """A save that drops STOP (or an FCC word on a +1 number) from the opt-out list asks first."""
        listed = ", ".join(words)

        def answered(yes: bool | None) -> None:
            if yes and not self.saving:
                self._start_save(cred)

        self.app.push_screen(ConfirmScreen(
            "Opt-out words dropped",
            f"This save drops {listed} from the opt-out list: a person who texts "
            f"{'it' if len(words) == 1 else 'one of them'} will no longer be opted out. Save anyway?",
            yes="Save anyway", no="Keep editing"), answered)

    def _start_save(self, cred: Credential) -> None:
        self.saving = True
        self._show_problem("")
        self.validate()
        self._save(cred)

    @work(group="credential-save", exit_on_error=False)
    async def _save(self, cred: Credential) -> None:
        try:
            saved = await self.data.write(save_credential, cred, self.original)
        except DuplicateError as exc:
            self.post_message(self.SaveFinished(None, exc.field, exc.message))
        except ConflictError:
            self.conflict = True
            self.refresh_bindings()
            self.post_message(self.SaveFinished(
                None, "", with_keys(self, "Not saved: changed by someone else since you opened it (another "
                                          "session or the command line). {key:edit.reload} reloads their version "
                                          "and keeps the fields you changed; {key:edit.cancel} discards your edits.")))
        except (StoreError, OSError, Exception) as exc:  # a locked database: said here, the form stays
            self.post_message(self.SaveFinished(None, "", f"Not saved: {describe_error(exc)}"))
        else:
            self.post_message(self.SaveFinished(saved))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reload_theirs":
            return self.conflict
        return True

    @work(group="credential-reload", exit_on_error=False)
    async def action_reload_theirs(self) -> None:
        """After a conflict: their version, with the fields this form changed kept as typed."""
        if self.original is None:
            return
        try:
            theirs = await self.data.read(load_credential, self.original.id)
        except Exception as exc:
            self._show_problem(f"Could not reload: {describe_error(exc)}")
            return
        mine = self.values()
        changed = {name for name, value in mine.items() if value != self.initial.get(name)}
        self.original = theirs
        self.initial = form_values(theirs)
        for name in FIELD_SPECS:
            if name not in changed:
                self._set_value(name, self.initial[name])
        self.conflict = False
        self.refresh_bindings()
        kept = ", ".join(FIELD_SPECS[n].label for n in FIELD_SPECS if n in changed) or "none"
        self._show_problem(with_keys(self, f"Reloaded version {theirs.version}; your edits kept: {kept}. "
                                            "{key:edit.save} saves."))
        self.query_one("#edit-dialog").border_title = f"Edit {make_inert(theirs.name)} (version {theirs.version})"
        self.validate()

    def _set_value(self, name: str, value: str) -> None:
        widget = self.query_one(f"#f-{name}")
        if isinstance(widget, TextArea):
            widget.load_text(value)
        elif isinstance(widget, Select | Input):
            widget.value = value

    @on(SaveFinished)
    def _save_finished(self, event: SaveFinished) -> None:
        self.saving = False
        if event.saved is not None:
            self.dismiss(event.saved)
            return
        if event.field in FIELD_SPECS:
            self.store_errors[event.field] = event.error
        else:
            self._show_problem(event.error)
        self.validate()

    @on(Button.Pressed, "#edit-cancel")
    def action_cancel(self) -> None:
        if not self.modified:
            self.dismiss(None)
            return

        def discard(answer: bool | None) -> None:
            if answer:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmScreen("Unsaved changes", "Discard your changes to this credential?", yes="Discard",
                          no="Keep editing"),
            discard,
        )
