"""Details of one inbound message: text, normalised text, the rule, consent and the reply."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from store.queries import MessageRow
from store.sms_parts import count_parts
from store.text import make_inert

CONSENT_NAMES = {"y": "opted in (y)", "n": "opted out (n)", "p": "pending (p)", "": "none"}


Part = str | tuple[str, str]  # plain text, or (text, style)


def inert_lines(lines: Iterable[Iterable[Part]]) -> Text:
    """Lines of parts as one Text. Nothing is parsed as markup (an inbound "[$x]" or "[/b]" is
    text, not a tag) and every part goes through make_inert (no raw ESC reaches the terminal)."""
    out = Text()
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        for part in line:
            text, style = (part, "") if isinstance(part, str) else part
            out.append(make_inert(text), style=style)
    return out


def consent_name(value: str | None) -> str:
    return CONSENT_NAMES.get(value or "", value or "")


def detail_text(row: MessageRow) -> Text:
    b = "bold"
    text_lines: list[list[Part]] = [[line] for line in row.text.split("\n")] if row.text else [[("(empty)", "italic")]]
    lines: list[list[Part]] = [
        [("Message", b), f" #{row.id}  Infobip id {row.message_id}"],
        [("Received", b), f" {row.received_at}  (stored {row.stored_at}, via {row.source})"],
        [("Credential", b), " ", row.credential or ("none: unrouted", "italic"), f"  sandbox {row.sandbox or '-'}"],
        [("From", b), f" {row.from_number}  ", ("to", b), f" {row.to_number}"],
        [],
        [("Text", b)],
        *text_lines,
        [("Normalised", b), " ", row.normalized or ("(empty)", "italic")],
        [],
        [("Action", b), f" {row.action}" + (f"  keyword {row.keyword}" if row.keyword else "")],
        [("Rule", b), f" {row.rule}"],
        [("Consent", b), f" {consent_name(row.consent_before)} → {consent_name(row.consent_after)}"],
        [],
    ]
    if row.reply_text is None:
        lines.append([("Reply", b), " none"])
    else:
        lines += [
            [("Reply", b), f" {row.reply_status}  ({count_parts(row.reply_text).describe()})"],
            *([text] for text in row.reply_text.split("\n")),
            [("Delivery report", b), f" {row.delivery_status or '-'} {row.delivery_detail or ''}"],
        ]
        if row.last_error:
            label = "Why" if row.reply_status in ("cancelled", "failed") else "Last error"
            lines.append([(label, b), f" {row.last_error}"])
    return inert_lines(lines)


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
            yield Static(detail_text(self.row), id="message-detail")
        yield Footer()
