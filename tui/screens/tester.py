"""Keyword tester: what would happen to a text, without sending or storing anything."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from smsdesk.domain.credential import StoredCredential
from smsdesk.domain.inert import make_inert
from smsdesk.domain.rules import decide
from smsdesk.domain.sms_parts import count_parts
from smsdesk.store.credentials import list_credentials
from smsdesk.tui.data import DatabaseChanged, DataService
from smsdesk.tui.inert_text import Part, inert_lines
from smsdesk.tui.screens.view import ViewScreen
from smsdesk.tui.vocabulary import ACTION_MEANING, action_style, consent_name
from smsdesk.tui.widgets.key_bar import KeyBar

CONSENT_CHOICES = [("none (never expressed)", ""), ("opted in (y)", "y"), ("opted out (n)", "n"),
                   ("pending (p)", "p")]


def verdict_text(text: str, cred: StoredCredential | None, consent: str) -> Text:
    if cred is None:
        return Text("Pick a credential.", style="italic")
    d = decide(text, cred, consent)
    b = "bold"
    lines: list[list[Part]] = [
        [("Normalised", b), "  ", d.normalized or ("(empty)", "italic")],
        [("Action", b), "      ", (str(d.action), str(action_style(str(d.action)) or "")),
         f"  (keyword {d.keyword})" if d.keyword else "", (f"  {ACTION_MEANING.get(str(d.action), '')}", "italic")],
        [("Rule", b), f"        {d.rule}"],
        [("Consent", b), f"     {consent_name(d.consent_before)} → {consent_name(str(d.consent_after))}",
         ("  (changes)", b) if d.consent_changed else "  (unchanged)"],
    ]
    if d.attribute:
        lines.append([("Attribute", b), f"   {d.attribute} recorded on the profile"])
    if d.reply_text:
        lines.append([("Reply", b), f"       from {cred.reply_sender or '(no sender set)'}, "
                                    f"{count_parts(d.reply_text).describe()}"])
        lines += [[line] for line in d.reply_text.split("\n")]
    else:
        lines.append([("Reply", b), "       none"])
    return inert_lines(lines)


class TesterScreen(ViewScreen):
    VIEW_MODE = "tester"
    HELP_TITLE = "Keyword tester"
    HELP_NOTES = (("How to use it", ""), ("credential", "whose keywords and replies apply"),
                  ("consent", "the number's consent before the text"),
                  ("text", "what the person texts; nothing is sent or stored"))
    DEFAULT_CSS = """
    TesterScreen Horizontal { height: auto; }
    TesterScreen Select { width: 1fr; }
    TesterScreen #tester-verdict { padding: 1 1; }
    TesterScreen Label { width: 1fr; padding: 1 1 0 1; }  /* wraps at 60 columns, never cut */
    """
    BINDINGS = [
        Binding("f5", "reload", "Reload credentials", id="tester.reload"),
        # The text box takes digits (they are part of messages): Esc leaves it, so 1-4 switch views.
        Binding("escape", "leave_text", "Leave text", id="tester.leave_text"),
    ]

    def __init__(self, data: DataService, name: str | None = None) -> None:
        super().__init__(data, name=name)
        self.credentials: dict[int, StoredCredential] = {}
        self._focus_text = True

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with VerticalScroll():
            with Horizontal():
                yield Select[int]([], prompt="credential", id="tester-credential")
                yield Select[str](CONSENT_CHOICES, value="", allow_blank=False, id="tester-consent")
            yield Label("Message as a person would text it (nothing is sent or stored):")
            yield Input(placeholder="e.g. STOP please", id="tester-text")
            yield Static(Text("Pick a credential.", style="italic"), id="tester-verdict")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()

    def refresh_data(self, event: DatabaseChanged | None) -> None:
        if event is None or not event.clock:
            self.action_reload()  # a credential's keywords or replies may have changed

    def action_leave_text(self) -> None:
        self.query_one(VerticalScroll).focus()

    @work(exclusive=True, group="tester-load", exit_on_error=False)
    async def action_reload(self) -> None:
        self._show_credentials(await self.data.read(list_credentials))

    def _show_credentials(self, creds: list[StoredCredential]) -> None:
        self.credentials = {c.id: c for c in creds}
        select = self.query_one("#tester-credential", Select)
        current = select.value
        select.set_options([(make_inert(f"{c.name} ({c.sandbox})"), c.id) for c in creds])
        if current in self.credentials:
            select.value = current
        elif creds:
            select.value = creds[0].id
        if self._focus_text:  # the first load only: a reload must not steal focus from the selects
            self._focus_text = False
            self.query_one("#tester-text", Input).focus()
        self._update()

    @on(Input.Changed, "#tester-text")
    @on(Select.Changed)
    def _update(self, event: object = None) -> None:
        select = self.query_one("#tester-credential", Select)
        cred = self.credentials.get(select.value) if isinstance(select.value, int) else None
        consent = self.query_one("#tester-consent", Select).value
        text = self.query_one("#tester-text", Input).value
        self.query_one("#tester-verdict", Static).update(
            verdict_text(text, cred, consent if isinstance(consent, str) else ""))
