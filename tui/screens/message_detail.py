"""Details of one inbound message: text, normalised text, the rule, consent and the reply, with
every delivery report of the reply (read on a worker thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from smsdesk.store.db import connect_reader
from smsdesk.store.queries import DeliveryReport, MessageRow, delivery_reports_of
from smsdesk.store.sms_parts import count_parts
from smsdesk.store.text import make_inert

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


def reports_text(reports: list[DeliveryReport]) -> Text:
    """Every report of the reply in arrival order; one that came late (not newer than what was
    already shown) is marked, since it did not change the reply's status."""
    if not reports:
        return inert_lines([[("Delivery reports", "bold"), " none yet"]])
    lines: list[list[Part]] = [[("Delivery reports", "bold"), f" {len(reports)}, as they arrived"]]
    for report in reports:
        when = (report.done_at or report.received_at)[:19].replace("T", " ")
        line: list[Part] = [f"  {when}  ", (report.group_name, "bold"), f"  {report.detail}"]
        if not report.applied:
            line.append(("  (kept, did not change the status)", "dim"))
        lines.append(line)
    return inert_lines(lines)


class MessageDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    MessageDetailScreen { align: center middle; }
    MessageDetailScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close", id="detail.close")]

    def __init__(self, row: MessageRow, db_path: Path | None = None) -> None:
        super().__init__()
        self.row = row
        self.db_path = db_path  # None: no delivery reports are read (the reply's latest is shown)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(detail_text(self.row), id="message-detail")
            yield Static("", id="message-reports")
        yield Footer()

    def on_mount(self) -> None:
        reports = self.query_one("#message-reports", Static)
        reports.display = False
        if self.db_path is not None and self.row.reply_id is not None:
            self._load_reports(self.db_path, self.row.reply_id)

    @work(thread=True, exclusive=True, group="detail-reports")
    def _load_reports(self, db_path: Path, reply_id: int) -> None:
        try:
            conn = connect_reader(db_path)
            try:
                found: Text = reports_text(delivery_reports_of(conn, reply_id))
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            found = inert_lines([[("Delivery reports", "bold"), f" could not be read: {exc}"]])
        self.app.call_from_thread(self._show_reports, found)

    def _show_reports(self, text: Text) -> None:
        for reports in self.query("#message-reports").results(Static):  # none once closed
            reports.update(text)
            reports.display = True
