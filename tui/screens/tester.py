"""Keyword tester: what would happen to a text, without sending or storing anything."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Static

from store.credentials import list_credentials
from store.db import connect
from store.models import StoredCredential
from store.rules import decide
from store.sms_parts import count_parts
from store.text import make_inert
from tui.screens.message_detail import CONSENT_NAMES

CONSENT_CHOICES = [("none (never expressed)", ""), ("opted in (y)", "y"), ("opted out (n)", "n"),
                   ("pending (p)", "p")]


def verdict_markup(text: str, cred: StoredCredential | None, consent: str) -> str:
    if cred is None:
        return "[i]Pick a credential.[/i]"
    d = decide(text, cred, consent)
    lines = [
        f"[b]Normalised[/b]  {escape(make_inert(d.normalized)) or '[i](empty)[/i]'}",
        f"[b]Action[/b]      {d.action}" + (f"  (keyword {escape(d.keyword)})" if d.keyword else ""),
        f"[b]Rule[/b]        {escape(d.rule)}",
        f"[b]Consent[/b]     {CONSENT_NAMES[d.consent_before]} → {CONSENT_NAMES[str(d.consent_after)]}"
        + ("  [b](changes)[/b]" if d.consent_changed else "  (unchanged)"),
    ]
    if d.attribute:
        lines.append(f"[b]Attribute[/b]   {escape(d.attribute)} recorded on the profile")
    if d.reply_text:
        lines += [f"[b]Reply[/b]       from {escape(cred.reply_sender or '(no sender set)')}, "
                  f"{count_parts(d.reply_text).describe()}", escape(make_inert(d.reply_text))]
    else:
        lines.append("[b]Reply[/b]       none")
    return "\n".join(lines)


class TesterScreen(Screen[None]):
    DEFAULT_CSS = """
    TesterScreen Horizontal { height: auto; }
    TesterScreen Select { width: 1fr; }
    TesterScreen #tester-verdict { padding: 1 1; }
    TesterScreen Label { padding: 1 1 0 1; }
    """
    BINDINGS = [Binding("f5", "reload", "Reload credentials", id="tester.reload")]

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
            yield Static("[i]Pick a credential.[/i]", id="tester-verdict")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

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
            verdict_markup(text, cred, consent if isinstance(consent, str) else ""))
