"""Keyword tester: what would happen to a text, without sending or storing anything."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Static

from smsdesk.store.credentials import list_credentials
from smsdesk.store.db import connect
from smsdesk.store.models import StoredCredential
from smsdesk.store.rules import decide
from smsdesk.store.sms_parts import count_parts
from smsdesk.store.text import make_inert
from smsdesk.tui.screens.message_detail import Part, consent_name, inert_lines

CONSENT_CHOICES = [("none (never expressed)", ""), ("opted in (y)", "y"), ("opted out (n)", "n"),
                   ("pending (p)", "p")]


def verdict_text(text: str, cred: StoredCredential | None, consent: str) -> Text:
    if cred is None:
        return Text("Pick a credential.", style="italic")
    d = decide(text, cred, consent)
    b = "bold"
    lines: list[list[Part]] = [
        [("Normalised", b), "  ", d.normalized or ("(empty)", "italic")],
        [("Action", b), f"      {d.action}" + (f"  (keyword {d.keyword})" if d.keyword else "")],
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


class TesterScreen(Screen[None]):
    DEFAULT_CSS = """
    TesterScreen Horizontal { height: auto; }
    TesterScreen Select { width: 1fr; }
    TesterScreen #tester-verdict { padding: 1 1; }
    TesterScreen Label { padding: 1 1 0 1; }
    """
    BINDINGS = [
        Binding("f5", "reload", "Reload credentials", id="tester.reload"),
        # The text box takes digits (they are part of messages): Esc leaves it, so 1-4 switch views.
        Binding("escape", "leave_text", "Leave text", id="tester.leave_text"),
    ]

    def __init__(self, db_path: Path, name: str | None = None) -> None:
        super().__init__(name=name)
        self.db_path = db_path
        self.credentials: dict[int, StoredCredential] = {}

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            with Horizontal():
                yield Select[int]([], prompt="credential", id="tester-credential")
                yield Select[str](CONSENT_CHOICES, value="", allow_blank=False, id="tester-consent")
            yield Label("Message as a person would text it (nothing is sent or stored):")
            yield Input(placeholder="e.g. STOP please", id="tester-text")
            yield Static(Text("Pick a credential.", style="italic"), id="tester-verdict")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_leave_text(self) -> None:
        self.query_one(VerticalScroll).focus()

    @work(thread=True, exclusive=True, group="tester-load")
    def action_reload(self) -> None:
        db = connect(self.db_path)
        try:
            creds = list_credentials(db)
        finally:
            db.close()
        self.app.call_from_thread(self._show_credentials, creds)

    def _show_credentials(self, creds: list[StoredCredential]) -> None:
        self.credentials = {c.id: c for c in creds}
        select = self.query_one("#tester-credential", Select)
        current = select.value
        select.set_options([(make_inert(f"{c.name} ({c.sandbox})"), c.id) for c in creds])
        if current in self.credentials:
            select.value = current
        elif creds:
            select.value = creds[0].id
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
