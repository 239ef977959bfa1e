"""Details of one inbound message: text, normalised text, the rule, consent and the reply, with
every delivery report of the reply (read on a worker thread)."""

from __future__ import annotations

import sqlite3

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from smsdesk.domain.sms_parts import count_parts
from smsdesk.store.queries import DeliveryReport, MessageRow, delivery_reports_of
from smsdesk.tui.data import DataService
from smsdesk.tui.inert_text import Part, inert_lines
from smsdesk.tui.protocols import DeskApp
from smsdesk.tui.screens.view import HELP_BINDING, VIEW_BINDINGS
from smsdesk.tui.vocabulary import consent_name
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.workers import ReportsWorkerErrors


def detail_text(row: MessageRow) -> Text:
    b = "bold"
    text_lines: list[list[Part]] = [[line] for line in row.text.split("\n")] if row.text else [[("(empty)", "italic")]]
    lines: list[list[Part]] = [
        [("Message", b), f" #{row.id}  Infobip id {row.message_id}"],
        [("Received", b), f" {row.received_at}  (stored {row.stored_at}, via {row.source})"],
        *([[("Clock", b), " ", (row.clock_flag, "bold reverse")]] if row.clock_flag else []),
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


class MessageDetailScreen(ReportsWorkerErrors, ModalScreen[None]):
    DEFAULT_CSS = """
    MessageDetailScreen { align: center middle; }
    MessageDetailScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    """
    HELP_TITLE = "Message"
    BINDINGS = [
        Binding("escape,q,enter", "dismiss", "Close", id="detail.close"),
        Binding("y", "copy('number')", "Copy number", id="detail.copy_number"),
        Binding("Y", "copy('id')", "Copy message id", id="detail.copy_id"),
        Binding("p", "profile", "Profile", id="detail.profile"),
        HELP_BINDING,
        *VIEW_BINDINGS,
    ]

    def __init__(self, row: MessageRow, data: DataService | None = None) -> None:
        super().__init__()
        self.row = row
        self.data = data  # None: no delivery reports are read (the reply's latest is shown)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(detail_text(self.row), id="message-detail")
            yield Static("", id="message-reports")
        yield KeyBar()

    def on_mount(self) -> None:
        reports = self.query_one("#message-reports", Static)
        reports.display = False
        self.refresh_data(None)

    def refresh_data(self, event: object) -> None:
        """New delivery reports may have arrived (DatabaseChanged from the app)."""
        if self.data is not None and self.row.reply_id is not None:
            self._load_reports(self.row.reply_id)

    def on_database_changed(self, event: object) -> None:
        self.refresh_data(event)

    @work(exclusive=True, group="detail-reports", exit_on_error=False)
    async def _load_reports(self, reply_id: int) -> None:
        assert self.data is not None
        try:
            found: Text = reports_text(await self.data.read(delivery_reports_of, reply_id))
        except (sqlite3.Error, OSError) as exc:
            found = inert_lines([[("Delivery reports", "bold"), f" could not be read: {exc}"]])
        self._show_reports(found)

    def action_copy(self, what: str) -> None:
        value = self.row.from_number if what == "number" else self.row.message_id
        self.app.copy_to_clipboard(value)  # OSC 52: reaches the local clipboard over SSH
        self.notify(f"Copied {value}", timeout=2, markup=False)

    def action_profile(self) -> None:
        if not self.row.sandbox:
            self.notify("This message has no profile (unrouted: no credential owns the number)",
                        severity="warning")
            return
        if isinstance(self.app, DeskApp):
            self.dismiss()
            self.app.show_profile(self.row.sandbox, self.row.from_number)

    def _show_reports(self, text: Text) -> None:
        for reports in self.query("#message-reports").results(Static):  # none once closed
            reports.update(text)
            reports.display = True
