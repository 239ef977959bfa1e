"""Review queue: near-miss opt-outs (fuzzy opt-out review modes) waiting for a decision.

Oldest first; `o` opts the number out, `x` dismisses (each asks first), Enter shows the number's
history. Each decision goes to the consent ledger
with the OS user and the message as its cause (usecases/review.py, as `smsdesk review resolve`),
written through the data service like every other change of the TUI.
"""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from smsdesk.domain.inert import make_inert
from smsdesk.store.queries import profile_of
from smsdesk.store.review import ReviewChoice, ReviewItem, review_page
from smsdesk.tui.data import DatabaseChanged, DataService
from smsdesk.tui.filter_parser import FilterSyntaxError
from smsdesk.tui.review_filter import NO_REVIEW_FILTER, SYNTAX, matching, parse_review_filter
from smsdesk.tui.screens.confirm import ConfirmScreen
from smsdesk.tui.screens.profiles import ProfileDetailScreen
from smsdesk.tui.screens.view import ViewScreen
from smsdesk.tui.table_place import place_cursor
from smsdesk.tui.widgets.filter_line import FilterLine
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.widgets.list_navigation import LIST_BINDINGS, TableNavigation
from smsdesk.usecases.review import decide_review

# The near miss's text next to its number, where 60 columns still show it; where it came from after
# (the minute it arrived: the seconds are in its history, Enter).
COLUMNS = ("#", "received", "number", "text", "credential", "sandbox")
PAGE = 1000  # items listed; the status line says how many there are in all


class ReviewScreen(TableNavigation, ViewScreen):
    VIEW_MODE = "review"
    HELP_TITLE = "Review queue"
    HELP_NOTES = (
        ("What is here", ""),
        ("near miss", "a text that is no keyword but one slip from an opt-out (STPO, STOPP), or a short "
                      "text with opt-out words (please stop texting me); see README, Keyword rules"),
        ("{key:review.opt_out}", "opt the number out (asks first): consent n, ledger entry with you as operator, "
                                 "queued replies cancelled"),
        ("{key:review.dismiss}", "dismiss (asks first): not an opt-out; recorded in the ledger, consent unchanged"),
        ("{key:review.open}", "the number's history: its consent ledger and messages, the near miss in full"),
        ("Filter ({key:review.filter})", ""), *SYNTAX,
    )
    DEFAULT_CSS = """
    ReviewScreen DataTable { height: 1fr; }
    ReviewScreen #review-status { height: auto; padding: 0 1; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="review.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="review.clear_filter"),
        Binding("enter", "open", "History", id="review.open"),
        Binding("o", "decide('opt-out')", "Opt out", id="review.opt_out"),
        Binding("x", "decide('dismiss')", "Dismiss", id="review.dismiss"),
        *LIST_BINDINGS,
    ]

    def __init__(self, data: DataService, name: str | None = None) -> None:
        super().__init__(data, name=name)
        self.items: list[ReviewItem] = []
        self.open_total = 0  # every open item, listed or not
        self._loading = False
        self._load_again = False
        self.last_decision = ""  # what the last key did, kept above the count after the reload
        self.unfiltered: list[ReviewItem] = []  # the items read; `items` are those the filter lets through
        self.review_filter = NO_REVIEW_FILTER
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield FilterLine(input_id="review-filter", id="review-filter-line", debounce=0,
                         placeholder="sandbox:NAME cred:NAME num:DIGITS words  (Enter: list, Esc: clear)")
        table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=False, id="review-table")
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="review-status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    def refresh_data(self, event: DatabaseChanged | None) -> None:
        if event is None or not event.clock:
            self.load()

    def load(self) -> None:
        # One read at a time; a change meanwhile is read once after it (as Profiles does).
        if self._loading:
            self._load_again = True
            return
        self._loading, self._load_again = True, False
        self._load()

    @work(group="review-load", exit_on_error=False)
    async def _load(self) -> None:
        try:
            self.show(*await self.data.read(partial(review_page, limit=PAGE)))
        finally:
            self._loading = False
            if self._load_again:
                self.call_later(self.load)

    def show(self, items: list[ReviewItem], total: int | None = None) -> None:
        table = self.query_one(DataTable)
        self.unfiltered = items
        listed = matching(items, self.review_filter)
        if listed != self.items or table.row_count != len(listed):
            self._fill(table, listed)
        self.open_total = max(len(items), self.open_total if total is None else total)
        shown = (f"first {len(items):,} of {self.open_total:,}" if self.open_total > len(items)
                 else f"{len(items):,}")
        count = (f"{shown} to review, oldest first" if items else
                 "Nothing to review: near misses appear here when a credential's fuzzy opt-out is review "
                 "or reply+review.")
        if self.filter_text:
            count = f"{len(listed):,} match {self.filter_text} · {count}"
        self._status(f"{self.last_decision} · {count}" if self.last_decision else count)

    # ---- filter --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":  # the way out, in the key bar while typing a filter or one applies
            return bool(self.filter_text) or self.query_one(FilterLine).input.has_focus
        return True

    def action_filter(self) -> None:
        self.query_one(FilterLine).open()

    def action_clear_filter(self) -> None:
        self.query_one(FilterLine).clear()
        if self.filter_text:
            self.filter_text, self.review_filter = "", NO_REVIEW_FILTER
            self.show(self.unfiltered, self.open_total)
        self.query_one(DataTable).focus()

    @on(FilterLine.Apply)
    def _apply(self, event: FilterLine.Apply) -> None:
        if (parsed := event.parse(parse_review_filter, FilterSyntaxError)) is None:
            return
        self.review_filter, self.filter_text = parsed, event.text.strip()
        self.show(self.unfiltered, self.open_total)
        if event.final:
            event.line.close()
            self.query_one(DataTable).focus()

    def _fill(self, table: DataTable[str | Text], items: list[ReviewItem]) -> None:
        """The rows again, the cursor on the same item (by its id) and on the same line of the
        screen; an item decided meanwhile leaves it at the same position (the next one)."""
        old_row, old_top = table.cursor_row, round(table.scroll_y)
        selected = self.selected()
        self.items = items
        table.clear()
        for item in items:
            table.add_row(str(item.id), item.received_at[:16].replace("T", " "), make_inert(item.number),
                          make_inert(item.text[:60]), make_inert(item.credential), make_inert(item.sandbox),
                          key=str(item.id))
        place_cursor(table, [str(item.id) for item in items], None if selected is None else str(selected.id),
                     old_row, old_top)

    def _status(self, text: str) -> None:
        self.query_one("#review-status", Static).update(Text(text, style="italic"))

    def selected(self) -> ReviewItem | None:
        table = self.query_one(DataTable)
        if not self.items or table.cursor_row < 0 or table.cursor_row >= len(self.items):
            return None
        return self.items[table.cursor_row]

    def action_open(self) -> None:
        item = self.selected()
        if item is not None:
            self._open(item)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:  # Enter on the table itself
        self.action_open()

    @work(group="review-open", exit_on_error=False)
    async def _open(self, item: ReviewItem) -> None:
        profile = await self.data.read(profile_of, item.sandbox, item.number)
        if profile is not None:
            self.app.push_screen(ProfileDetailScreen(self.data, profile))

    def action_decide(self, decision: ReviewChoice) -> None:
        """A decision goes to the consent ledger for good: asked first, naming the number and the text."""
        item = self.selected()
        if item is None:
            return
        what = "Opt out" if decision == "opt-out" else "Dismiss"
        question = make_inert(f"{what} {item.number} ({item.sandbox}), near miss {item.text[:80]!r}? "
                              + ("Consent becomes n and queued replies are cancelled." if decision == "opt-out"
                                 else "Consent stays as it is; the decision is recorded."))

        def answered(yes: bool | None) -> None:
            if yes:
                self._decide(item, decision)

        self.app.push_screen(ConfirmScreen(what, question, yes=what), answered)

    @work(exclusive=True, group="review-decide", exit_on_error=False)
    async def _decide(self, item: ReviewItem, decision: ReviewChoice) -> None:
        done = await self.data.write(decide_review, item.id, decision)
        self.last_decision = make_inert(f"#{item.id} {item.number}: {done.note} (ledger #{done.ledger_id})")
        self.show([i for i in self.unfiltered if i.id != item.id], self.open_total - 1)
        self.load()
