"""Send one test SMS with a credential: its sender, validity, callback data and DLT ids.

The To number is checked locally (E.164) before anything goes out; the text is sent as typed,
with its SMS part count shown live, and Infobip (or the simulator) judges the content: a 400
shows Infobip's violations line by line. The send runs in an async worker.

A number that opted out in the credential's sandbox is refused, as `smsdesk send` refuses it;
the dialog then offers a "Send anyway" box, and a send with it ticked is recorded in the audit
first (usecases/guarded_send.py, as `smsdesk send` does). The consent lookup and the audit write
run on the data service's threads.
"""

from __future__ import annotations

import sqlite3
import uuid

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, LoadingIndicator, Static

from smsdesk.domain.credential import StoredCredential
from smsdesk.domain.inert import make_inert
from smsdesk.domain.phone import to_e164
from smsdesk.domain.sms_parts import count_parts
from smsdesk.infobip.client import OutboundSms, SendResult
from smsdesk.infobip.errors import InfobipError
from smsdesk.store.credential_rows import host_of
from smsdesk.store.send_override import OptedOut
from smsdesk.tui.adapters import error_lines, interactive_client
from smsdesk.tui.data import DataService
from smsdesk.tui.key_hints import label_buttons, with_keys
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.workers import ReportsWorkerErrors
from smsdesk.usecases.guarded_send import SendRefused, check_consent, record_override

DEFAULT_TEXT = "smsdesk test message"


def options_summary(cred: StoredCredential) -> str:
    """What the message will carry besides the text, in one line (never the key)."""
    parts = [f"from {cred.reply_sender or '(no sender)'}", f"validity {cred.validity_period_hours}h"]
    if cred.callback_data:
        parts.append("callback data")
    if cred.principal_entity_id:
        parts.append(f"DLT {cred.principal_entity_id}")
    parts.append(f"via {host_of(cred.base_url)}")
    return "  ·  ".join(make_inert(p) for p in parts)


def describe_result(result: SendResult) -> Text:
    text = Text("✓ Accepted by Infobip", style="bold green")
    for message in result.messages:
        text.append(f"\nmessage id {make_inert(message.message_id)}")
        text.append(f"\nstatus {make_inert(message.status_name)} ({make_inert(message.status_group)})")
        if message.status_description:
            text.append(f": {make_inert(message.status_description)}", style="dim")
    return text


def to_problem(raw: str) -> str:
    """Why `raw` cannot be sent to ('' when it can): the one wording of the check, as typed and on send."""
    try:
        to_e164(raw)
    except ValueError as exc:
        return str(exc)
    return ""


class SendTestScreen(ReportsWorkerErrors, ModalScreen[SendResult | None]):
    """Dismisses with the last successful result (None if nothing was sent)."""
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Test SMS"
    HELP_NOTES = (("The test SMS", ""), ("To", "the number in international form, e.g. +44 7700 900123"),
                  ("Text", "sent as typed; the part count is shown as you type"),
                  ("opted out", "refused; tick Send anyway to override (recorded in the audit)"))

    BINDINGS = [
        Binding("f2,ctrl+g", "send", "Send", id="test_send.send", priority=True),
        Binding("escape", "close", "Close", id="test_send.close"),
        HELP_BINDING,
    ]

    def __init__(self, credential: StoredCredential, data: DataService) -> None:
        super().__init__()
        self.credential = credential
        self.data = data  # for the consent check and the audit of an override
        self.refused: OptedOut | None = None  # the opt-out that refused the last send
        self.result: SendResult | None = None
        self.error: InfobipError | None = None
        self.sending = False
        self._rejected_to: str | None = None  # the To value last refused, while it is unchanged

    def compose(self) -> ComposeResult:
        cred = self.credential
        with Vertical(id="send-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Test SMS with {make_inert(cred.name)}"
            yield Static(Text(options_summary(cred), style="dim"), id="send-options")
            with Horizontal(classes="field-row"):
                yield Label("To", classes="field-label")
                # A reserved drama number (Ofcom's 07700 900xxx): an example, never a real phone.
                yield Input(placeholder="e.g. +44 7700 900123", compact=True, id="send-to")
            yield Static("", id="send-to-note", classes="field-note")
            with Horizontal(classes="field-row"):
                yield Label("Text", classes="field-label")
                yield Input(DEFAULT_TEXT, compact=True, id="send-text")
            yield Static("", id="send-parts", classes="field-note")
            yield Checkbox("Send anyway: override the opt-out (audited)", id="send-override", compact=True)
            yield LoadingIndicator(id="send-spinner")
            yield Static("", id="send-result")
            with Horizontal(classes="buttons"):
                yield Button("Send", variant="primary", compact=True, id="send-send")  # + keys, on mount
                yield Button("Close", compact=True, id="send-close")
        yield KeyBar()

    def on_mount(self) -> None:
        label_buttons(self, {"#send-send": "Send {key:test_send.send}", "#send-close": "Close ({key:test_send.close})"})
        self.query_one("#send-to-note").display = False
        self.query_one("#send-override").display = False
        self.query_one("#send-spinner").display = False
        self.query_one("#send-result").display = False
        self._count_parts(DEFAULT_TEXT)
        if not self.credential.reply_sender:
            self._show_result(Text("✗ This credential has no sender and no inbound number: set one to send.",
                                   style="bold red"))
            self.query_one("#send-send", Button).disabled = True
        self.query_one("#send-to", Input).focus()

    # -- live feedback -----------------------------------------------------------------------

    @on(Input.Changed, "#send-text")
    def _text_changed(self, event: Input.Changed) -> None:
        self._count_parts(event.value)

    def _count_parts(self, value: str) -> None:
        self.query_one("#send-parts", Static).update(Text(count_parts(value).describe(), style="dim"))

    @on(Input.Changed, "#send-to")
    def _to_changed(self, event: Input.Changed) -> None:
        # Checked as you type, in the words a send would refuse it with. An empty box says
        # nothing until a send needs a number; the Changed event of the very value that was
        # refused can arrive after the refusal (typing then F2 at once) and must not clear it.
        if event.value != self._rejected_to:
            self._rejected_to = None
            self._show_to_error(to_problem(event.value) if event.value.strip() else "")
        # An override is for the number that was refused: another number is checked afresh.
        override = self.query_one("#send-override", Checkbox)
        if override.display and self.refused is not None and self._consent_key(event.value) != self.refused.number:
            override.value = False
            override.display = False
            self.refused = None

    @staticmethod
    def _consent_key(raw: str) -> str | None:
        try:
            return to_e164(raw)
        except ValueError:
            return None

    def _show_to_error(self, message: str) -> None:
        note = self.query_one("#send-to-note", Static)
        note.update(Text(f"✗ {make_inert(message)}", style="bold red") if message else "")
        note.display = bool(message)

    def _show_result(self, text: Text | str, *, busy: bool = False) -> None:
        if not self.query("#send-result"):
            return  # Esc closed the dialog while the request ran: nothing left to show it in
        self.query_one("#send-spinner").display = busy
        result = self.query_one("#send-result", Static)
        result.update(text)
        result.display = bool(text)

    # -- sending -----------------------------------------------------------------------------

    @on(Input.Submitted, "#send-to")
    def _to_submitted(self) -> None:
        self.query_one("#send-text", Input).focus()

    @on(Input.Submitted, "#send-text")
    @on(Button.Pressed, "#send-send")
    def action_send(self) -> None:
        if self.sending or self.query_one("#send-send", Button).disabled:
            return
        raw_to = self.query_one("#send-to", Input).value
        try:
            to = to_e164(raw_to)
        except ValueError as exc:
            # Nothing goes out for a number that cannot be one: a clear local error instead.
            self._rejected_to = raw_to
            self._show_to_error(str(exc))
            self.query_one("#send-to", Input).focus()
            self.app.bell()
            return
        try:
            sms = OutboundSms.from_credential(self.credential, to, self.query_one("#send-text", Input).value,
                                              # Ours, so a send retried after a lost answer is recognisable.
                                              message_id=f"smsdesk-test-{uuid.uuid4().hex}")
        except ValueError as exc:
            self._show_result(Text(f"✗ {make_inert(str(exc))}", style="bold red"))
            return
        override = self.query_one("#send-override", Checkbox)
        self.sending = True
        self.query_one("#send-send", Button).disabled = True
        self._show_result(Text(f"sending to {to}…", style="italic"), busy=True)
        self._send(sms, to, override.display and override.value)

    @work(exclusive=True, group="gateway-send", exit_on_error=False)
    async def _send(self, sms: OutboundSms, to: str, override: bool) -> None:
        try:
            try:  # SQLite blocks: on a worker thread, never on the UI thread
                opted = await self.data.read(check_consent, self.credential.sandbox, to, override)
                if opted is not None:
                    await self.data.write(record_override, self.credential, opted, sms.message_id or "", "tui")
                    for box in self.query("#send-override").results(Checkbox):
                        box.value = False  # one tick, one send: another needs its own
            except SendRefused as refused:
                self._refuse(refused.opted)
                return
            except (sqlite3.Error, OSError) as exc:
                self._show_result(Text(f"✗ Not sent: could not check the number's consent ({exc})", style="red"))
                return
            # Two tries at most: a retry after a dropped connection carries the same messageId.
            async with interactive_client(self.credential, max_attempts=2) as client:
                result = await client.send([sms])
        except InfobipError as exc:
            self.error = exc
            self._show_result(Text("✗ Not sent\n" + "\n".join(error_lines(exc)), style="red"))
        except Exception as exc:  # the client maps HTTP failures; this is a last resort
            self._show_result(Text(f"✗ Not sent: unexpected failure ({type(exc).__name__})", style="red"))
        else:
            self.result, self.error = result, None
            self._show_result(describe_result(result))
        finally:
            self.sending = False
            for button in self.query("#send-send").results(Button):  # none once the dialog is closed
                button.disabled = False

    def _refuse(self, opted: OptedOut) -> None:
        if not self.query("#send-override"):
            return  # Esc closed the dialog meanwhile
        self.refused = opted
        self._show_result(Text("✗ Not sent: " + make_inert(opted.refusal(
            with_keys(self, "tick \"Send anyway\" (Space) and press {key:test_send.send} to send anyway"))),
            style="bold red"))
        override = self.query_one("#send-override", Checkbox)
        override.value = False
        override.display = True
        override.focus()
        self.app.bell()

    @on(Button.Pressed, "#send-close")
    def action_close(self) -> None:
        self.dismiss(self.result)
