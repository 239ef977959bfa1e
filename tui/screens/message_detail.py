"""Details of one inbound message: text, normalised text, the rule, consent and the reply."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from store.queries import MessageRow
from store.sms_parts import count_parts
from store.text import make_inert

CONSENT_NAMES = {"y": "opted in (y)", "n": "opted out (n)", "p": "pending (p)", "": "none"}


def detail_markup(row: MessageRow) -> str:
    def safe(value: str | None) -> str:
        return escape(make_inert(value or ""))

    lines = [
        f"[b]Message[/b] #{row.id}  Infobip id {safe(row.message_id)}",
        f"[b]Received[/b] {safe(row.received_at)}  (stored {safe(row.stored_at)}, via {safe(row.source)})",
        f"[b]Credential[/b] {safe(row.credential) or '[i]none: unrouted[/i]'}  sandbox {safe(row.sandbox) or '-'}",
        f"[b]From[/b] {safe(row.from_number)}  [b]to[/b] {safe(row.to_number)}",
        "",
        "[b]Text[/b]",
        safe(row.text) or "[i](empty)[/i]",
        f"[b]Normalised[/b] {safe(row.normalized) or '[i](empty)[/i]'}",
        "",
        f"[b]Action[/b] {safe(row.action)}" + (f"  keyword {safe(row.keyword)}" if row.keyword else ""),
        f"[b]Rule[/b] {safe(row.rule)}",
        f"[b]Consent[/b] {CONSENT_NAMES.get(row.consent_before, row.consent_before)} → "
        f"{CONSENT_NAMES.get(row.consent_after, row.consent_after)}",
        "",
    ]
    if row.reply_text is None:
        lines.append("[b]Reply[/b] none")
    else:
        lines += [
            f"[b]Reply[/b] {safe(row.reply_status)}  ({count_parts(row.reply_text).describe()})",
            safe(row.reply_text),
            f"[b]Delivery report[/b] {safe(row.delivery_status) or '-'} {safe(row.delivery_detail)}",
        ]
        if row.last_error:
            lines.append(f"[b]Last error[/b] {safe(row.last_error)}")
    return "\n".join(lines)


class MessageDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    MessageDetailScreen { align: center middle; }
    MessageDetailScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="detail.close")]

    def __init__(self, row: MessageRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(detail_markup(self.row), id="message-detail")
        yield Footer()
