"""Verify a credential with Infobip: balance and currency, or exactly what is wrong; then where
the inbound number's messages go (its inbound configuration), the Blocklist pushes waiting and the
last `smsdesk consent reconcile` (tui/adapters.py: infobip_side).

Uses the side-effect-free balance call (GET /account/1/balance, see infobip/client.py); the
answer distinguishes a bad key (401), a key that works but may not read the balance (403), an
unreachable host, a TLS failure and a timeout. The request runs in an async worker: the
interface keeps drawing (and Esc keeps working) while the network is slow.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, LoadingIndicator, Static

from smsdesk.domain.credential import StoredCredential
from smsdesk.domain.credential_records import masked_key
from smsdesk.domain.inert import make_inert
from smsdesk.infobip.client import VerifyOutcome, VerifyResult
from smsdesk.store.credential_rows import host_of
from smsdesk.tui.adapters import infobip_side, interactive_client
from smsdesk.tui.data import DataService
from smsdesk.tui.key_hints import label_buttons
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING, VIEW_BINDINGS
from smsdesk.tui.widgets.key_bar import KeyBar

OUTCOME_TITLES = {
    VerifyOutcome.OK: ("✓ Key valid", "bold green"),
    VerifyOutcome.NO_SCOPE: ("! Key valid", "bold yellow"),
    VerifyOutcome.BAD_KEY: ("✗ Bad API key", "bold red"),
    VerifyOutcome.UNREACHABLE: ("✗ Unreachable", "bold red"),
    VerifyOutcome.TLS: ("✗ Secure connection failed", "bold red"),
    VerifyOutcome.TIMEOUT: ("✗ Timed out", "bold red"),
    VerifyOutcome.HTTP_ERROR: ("✗ Infobip answered with an error", "bold red"),
}


def describe(result: VerifyResult) -> Text:
    title, style = OUTCOME_TITLES.get(result.outcome, ("?", "bold"))
    text = Text(title, style=style)
    if result.balance is not None:
        # The client's message only repeats the balance here.
        text.append(f"\nBalance: {result.balance.balance:.2f} {make_inert(result.balance.currency)}", style="bold")
    else:
        text.append("\n" + make_inert(result.message))
    return text


class VerifyScreen(ModalScreen[VerifyResult | None]):
    """Dismisses with the last result (None if closed before an answer)."""
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Verify"
    HELP_NOTES = (("Verify", ""), ("what it does", "asks Infobip for the account balance with this key, "
                                                   "and where the inbound number's messages go; nothing is sent"),
                  ("blocklist", "pushes waiting for serve, and the last `smsdesk consent reconcile`"))

    BINDINGS = [
        Binding("escape", "close", "Close", id="verify.close"),
        Binding("v", "again", "Verify again", id="verify.again"),
        HELP_BINDING,
        *VIEW_BINDINGS,
    ]

    def __init__(self, credential: StoredCredential, data: DataService | None = None) -> None:
        super().__init__()
        self.credential = credential
        self.data = data
        self.result: VerifyResult | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        cred = self.credential
        with Vertical(id="verify-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Verify {make_inert(cred.name)}"
            # The key only ever appears masked here: the point is to test it, not to show it.
            yield Static(Text(f"{host_of(cred.base_url)}  ·  key {masked_key(cred.api_key)}  ·  {cred.sandbox}",
                              style="dim"), id="verify-target")
            yield LoadingIndicator(id="verify-spinner")
            yield Static("", id="verify-result")
            yield Static("", id="verify-side")
            with Horizontal(classes="buttons"):
                yield Button("Again", compact=True, id="verify-again")  # + keys, on mount
                yield Button("Close", variant="primary", compact=True, id="verify-close")
        yield KeyBar()

    def on_mount(self) -> None:
        label_buttons(self, {"#verify-again": "Again ({key:verify.again})",
                             "#verify-close": "Close ({key:verify.close})"})
        self.query_one("#verify-close", Button).focus()
        self.action_again()

    def _show(self, text: Text | str, *, busy: bool) -> None:
        if not self.query("#verify-result"):
            return  # Esc closed the dialog while the request ran: nothing left to show it in
        self.query_one("#verify-spinner").display = busy
        self.query_one("#verify-result", Static).update(text)
        self.query_one("#verify-again", Button).disabled = busy

    @on(Button.Pressed, "#verify-again")
    def action_again(self) -> None:
        if self.running:
            return
        self.running = True
        self._show(Text(f"verifying with {host_of(self.credential.base_url)}…", style="italic"), busy=True)
        self._verify()

    @work(exclusive=True, group="gateway-verify", exit_on_error=False)
    async def _verify(self) -> None:
        side = Text()
        try:
            async with interactive_client(self.credential) as client:
                result = await client.verify()
                if result.key_valid:
                    side = await infobip_side(client, self.credential, self.data)
        except Exception as exc:  # verify() maps every HTTP failure; this is a last resort
            # The type name only: an unexpected exception's text could quote a header.
            result = VerifyResult(VerifyOutcome.HTTP_ERROR, f"unexpected failure ({type(exc).__name__})")
        finally:
            self.running = False
        self.result = result
        self._show(describe(result), busy=False)
        if self.query("#verify-side"):
            self.query_one("#verify-side", Static).update(side)

    @on(Button.Pressed, "#verify-close")
    def action_close(self) -> None:
        # Closing while a request is in flight cancels it with the screen's workers.
        self.dismiss(self.result)
