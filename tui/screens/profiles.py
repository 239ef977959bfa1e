"""Profiles: numbers per sandbox with consent and keyword attributes; segments by attribute; and,
with `changed:`, `since:` or `until:` in the filter, the consent history: the ledger's changes in a
window, how and why (store/consent_history.py), which `x` exports as `smsdesk export consent` does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from smsdesk.domain.inert import make_inert
from smsdesk.store.queries import PROFILE_ORDERS, MessageRow, Profile, profile_of
from smsdesk.tui.adapters import (
    evidence_file_name,
    export_evidence,
    export_history,
    history_file_name,
    read_history,
    read_ledger,
    read_profiles,
)
from smsdesk.tui.data import DatabaseChanged, DataService
from smsdesk.tui.filter_parser import FilterSyntaxError
from smsdesk.tui.inert_text import Part, inert_lines
from smsdesk.tui.profile_filter import NO_FILTER, SYNTAX, HistoryFilter, parse_view_filter
from smsdesk.tui.screens.opt_out import OptOutScreen
from smsdesk.tui.screens.view import HELP_BINDING, VIEW_BINDINGS, ViewScreen
from smsdesk.tui.table_place import place_cursor
from smsdesk.tui.widgets.filter_line import FilterLine
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.tui.widgets.list_navigation import LIST_BINDINGS, TableNavigation
from smsdesk.tui.workers import ReportsWorkerErrors
from smsdesk.usecases.consent import opt_out_by_operator

# Colour and a word: "y"/"n"/"p"/"none" read the same without colour. Red is for errors only.
CONSENT_STYLE = {"y": "bold green", "n": "bold reverse", "p": "italic yellow", "": ""}
CONSENT_LABEL = {"y": "y", "n": "n", "p": "p", "": "none"}
COLUMNS = ("sandbox", "number", "consent", "attributes", "first seen", "last seen")
SORT_ORDERS = tuple(PROFILE_ORDERS)  # `s` cycles through them; SQLite sorts every profile, not a page
# The consent history's columns (a filter with changed:, since: or until:): one ledger entry a row.
HISTORY_VIEW_COLUMNS = ("when (UTC)", "sandbox", "number", "change", "how", "why")


def profile_key(profile: Profile) -> str:
    """The table's row key of a profile: its (sandbox, number), which no other row has."""
    return json.dumps([profile.sandbox, profile.number])


def change_key(change: dict[str, Any]) -> str:
    """The table's row key of a consent change: its ledger id."""
    return f"ledger-{change['ledger_id']}"


def change_why(change: dict[str, Any]) -> str:
    """Why consent changed, in words: the text and its time, or the operator and the reason."""
    if change["cause"] in ("operator", "dismissal"):
        who = f"operator {change['operator']}" if change["operator"] else "an operator"
        reason = change["reason"]  # the store's reason names the operator already ("operator ann: ...")
        return reason if who in reason else f"{who}: {reason}" if reason else who
    if change["cause"] == "expiry":
        return change["reason"] or "the double opt-in was never confirmed in time"
    if change["message_id"] or change["text"]:
        return f'texted "{change["text"]}" at {change["message_received_at"][:19].replace("T", " ")}'
    return change["reason"]


def change_line(change: dict[str, Any]) -> str:
    """The highlighted change in full, under the list."""
    old, new = (CONSENT_LABEL.get(change[k], change[k]) for k in ("old", "new"))
    return (f"{change['number']} ({change['sandbox']})  {old} → {new}  at {change['received_at'][:19]}  "
            f"how: {change['cause']}  why: {change_why(change)}  ledger #{change['ledger_id']}")


class ProfilesScreen(TableNavigation, ViewScreen):
    VIEW_MODE = "profiles"
    HELP_TITLE = "Profiles"
    HELP_NOTES = (("Filter ({key:profiles.filter})", ""), *SYNTAX,
                  ("Consent", ""), ("y", "opted in"), ("n", "opted out"), ("p", "pending a double opt-in"),
                  ("none", "never expressed"))
    DEFAULT_CSS = """
    ProfilesScreen #profiles-status { height: 1; background: $boost; padding: 0 1; }
    ProfilesScreen DataTable { height: 1fr; }
    ProfilesScreen #profiles-why { height: auto; max-height: 3; padding: 0 1; background: $boost; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="profiles.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="profiles.clear"),
        Binding("enter", "open", "Ledger", id="profiles.open"),
        Binding("s", "sort", "Sort", id="profiles.sort"),
        Binding("y", "copy", "Copy number", id="profiles.copy"),
        Binding("o", "opt_out", "Opt out", id="profiles.opt_out"),
        Binding("x", "export", "Export history", id="profiles.export"),
        *LIST_BINDINGS,
        Binding("f5", "reload", "Reload", show=False, id="profiles.reload"),
    ]

    def __init__(self, data: DataService, name: str | None = None) -> None:
        super().__init__(data, name=name)
        self.filter_text = ""
        self.filters: dict[str, object] = dict(NO_FILTER)
        self.history: HistoryFilter | None = None  # set: the view lists the consent history
        self.profiles: list[Profile] = []
        self.changes: list[dict[str, Any]] = []
        self.export_dir: Path | None = None  # where `x` writes; None: the current directory
        self.sort_column = "last seen"
        self._open_after_load: tuple[str, str] | None = None
        self._loading = False  # a profiles read is in flight
        self._load_again = False  # something changed while it was: read once more after it
        self._more = False  # the last count stopped at its bound: more than `_total` match
        self.loads = 0  # profiles reads started (tests/tui/test_live_reads.py counts them)
        self.shows = 0  # profiles reads shown (bench/scale.py: from a filter to its first screen)

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield FilterLine(input_id="profiles-filter", id="profiles-filter-line",
                         placeholder="consent:y|n|p|none attr:KW num:DIGITS changed:n since:DATE "
                                     "({key:profiles.clear} clears)")
        yield Static("loading…", id="profiles-status")
        table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True, id="profiles-table")
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="profiles-why")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#profiles-why").display = False
        self.action_reload()
        self.query_one(DataTable).focus()

    def refresh_data(self, event: DatabaseChanged | None) -> None:
        if event is None or not event.clock:
            self.action_reload()

    def action_reload(self) -> None:
        if self.history is not None:
            self._load_history(self.history.ledger_arguments(self.filters))
        elif self._loading:
            # One profiles read at a time: a change (a commit, a key typed in the filter) while one
            # is in flight is read once after it, with the filter and order of that moment.
            # Cancelling the read in flight left its SQL running on the pool, and under live
            # traffic at scale no read ever finished.
            self._load_again = True
        else:
            self._loading, self._load_again = True, False
            self.loads += 1
            self._load(dict(self.filters), self.sort_column)

    @work(group="profiles-load", exit_on_error=False)
    async def _load(self, filters: dict[str, object], order: str) -> None:
        try:
            profiles, total, everyone, more = await self.data.read(read_profiles, filters, order)
            if filters == self.filters and order == self.sort_column:
                self._more = more
                self._show(profiles, total, everyone)
            else:
                self._load_again = True  # the filter or order moved meanwhile: read them now
        finally:
            self._loading = False
            if self._load_again:
                self.call_later(self.action_reload)

    def _show(self, profiles: list[Profile], total: int, everyone: int | None = None) -> None:
        if self.history is not None:
            return  # a read begun before the filter became a history filter
        self.shows += 1
        table = self.query_one(DataTable)
        self._use_columns(table, history=False)
        self._total = total
        self._everyone = total if everyone is None else everyone
        if profiles != self.profiles or table.row_count != len(profiles):
            self._fill(table, profiles)
        # else nothing to redraw: the cursor and the scroll stay exactly where they are
        self._update_status()
        if self._open_after_load is not None:
            wanted, self._open_after_load = self._open_after_load, None
            found = next((i for i, p in enumerate(self.profiles) if (p.sandbox, p.number) == wanted), None)
            if found is not None:
                table.move_cursor(row=found)
                self.action_open()

    def _fill(self, table: DataTable[str | Text], profiles: list[Profile]) -> None:
        """The rows again. The cursor stays on the same number (rows arrive above it, or it moves
        up the "last seen" order) and on the same line of the screen; a number no longer listed
        leaves it at the same position. So Enter, y and o act on the number the operator chose."""
        old_row, old_top = table.cursor_row, round(table.scroll_y)
        selected = self.selected()
        self.profiles = list(profiles)
        table.clear()
        for p in self.profiles:
            attrs = ", ".join(f"{name}×{info['count']}" for name, info in p.attributes.items())
            # Text, not str: a str cell is parsed as markup, and a sender such as "[/x]" would crash the table.
            table.add_row(
                Text(make_inert(p.sandbox)), Text(make_inert(p.number)),
                Text(CONSENT_LABEL.get(p.consent, p.consent), style=CONSENT_STYLE.get(p.consent, "")),
                Text(make_inert(attrs)), p.first_seen[:10], p.last_seen[:16].replace("T", " "),
                key=profile_key(p),
            )
        chosen = None if selected is None else profile_key(selected)
        place_cursor(table, [profile_key(p) for p in self.profiles], chosen, old_row, old_top)

    def selected(self) -> Profile | None:
        """The profile under the cursor (None on an empty list, or in the consent history)."""
        table = self.query_one(DataTable)
        if self.history is not None or not self.profiles or not 0 <= table.cursor_row < len(self.profiles):
            return None
        return self.profiles[table.cursor_row]

    def selected_change(self) -> dict[str, Any] | None:
        """The consent change under the cursor (None outside the consent history)."""
        table = self.query_one(DataTable)
        if self.history is None or not self.changes or not 0 <= table.cursor_row < len(self.changes):
            return None
        return self.changes[table.cursor_row]

    def selected_number(self) -> tuple[str, str] | None:
        """(sandbox, number) under the cursor, in either list."""
        if (change := self.selected_change()) is not None:
            return change["sandbox"], change["number"]
        if (profile := self.selected()) is not None:
            return profile.sandbox, profile.number
        return None

    # ---- the consent history -------------------------------------------------------------------
    def _use_columns(self, table: DataTable[str | Text], *, history: bool) -> None:
        """The profiles' columns or the history's; switching empties the table and the other list."""
        if (len(table.columns) == len(HISTORY_VIEW_COLUMNS)
                and str(next(iter(table.columns.values())).label) == HISTORY_VIEW_COLUMNS[0]) == history:
            return
        table.clear(columns=True)
        table.add_columns(*(HISTORY_VIEW_COLUMNS if history else COLUMNS))
        self.profiles, self.changes = [], []
        self.query_one("#profiles-why").display = history
        self.refresh_bindings()

    @work(exclusive=True, group="profiles-load", exit_on_error=False)
    async def _load_history(self, arguments: dict[str, Any]) -> None:
        changes, total, numbers = await self.data.read(read_history, arguments)
        if self.history is None:
            return  # the filter changed back meanwhile
        table = self.query_one(DataTable)
        self._use_columns(table, history=True)
        self._total, self._numbers = total, numbers
        if changes != self.changes or table.row_count != len(changes):
            self._fill_history(table, changes)
        self._update_status()
        self._show_why()

    def _fill_history(self, table: DataTable[str | Text], changes: list[dict[str, Any]]) -> None:
        """The rows again, newest first; the cursor stays on the same change (tui/table_place.py)."""
        old_row, old_top = table.cursor_row, round(table.scroll_y)
        chosen = self.selected_change()
        self.changes = list(changes)
        table.clear()
        for c in self.changes:
            new = c["new"]
            table.add_row(
                c["received_at"][:16].replace("T", " "), Text(make_inert(c["sandbox"])), Text(make_inert(c["number"])),
                Text(f"{CONSENT_LABEL.get(c['old'], c['old'])} → {CONSENT_LABEL.get(new, new)}",
                     style=CONSENT_STYLE.get(new, "")),
                c["cause"], Text(make_inert(change_why(c).replace("\n", " "))), key=change_key(c))
        place_cursor(table, [change_key(c) for c in self.changes], None if chosen is None else change_key(chosen),
                     old_row, old_top)

    @on(DataTable.RowHighlighted)
    def _show_why(self, event: DataTable.RowHighlighted | None = None) -> None:
        change = self.selected_change()
        line = "" if change is None else change_line(change).replace("\n", " ")
        self.query_one("#profiles-why", Static).update(Text(make_inert(line)))

    def action_export(self) -> None:
        """The consent history of what the list shows, to a file here: the rows and bytes of
        `smsdesk export consent --since ... --until ... --consent ... --format jsonl`."""
        history = self.history or HistoryFilter()
        self._export(history.ledger_arguments(self.filters), (self.export_dir or Path.cwd()) / history_file_name())

    @work(group="profiles-export", exit_on_error=False)
    async def _export(self, arguments: dict[str, Any], path: Path) -> None:
        count = await self.data.read(export_history, arguments, path)
        self.notify(make_inert(f"Consent history written to {path} ({count:,} changes)"), timeout=6, markup=False)

    def _update_status(self) -> None:
        if self.history is not None:
            shown = len(self.changes)
            first = f" (newest {shown})" if self._total > shown else ""
            self.query_one("#profiles-status", Static).update(Text(make_inert(
                f"{self._total:,} consent changes, {self._numbers:,} numbers{first}  filter {self.filter_text}")))
            return
        total, shown = self._total, len(self.profiles)
        first = f" (first {shown})" if total > shown else ""
        where = f"  filter {self.filter_text}" if self.filter_text else ""
        if not self.filter_text:
            count = f"{total:,} profiles"
        else:
            segment = " in segment" if self.filters.get("attribute") else ""
            # A count that stopped at its bound says so (store/queries.py count_profiles_up_to).
            matching = f"more than {total:,}" if self._more else f"{total:,}"
            count = f"{matching} of {self._everyone:,} profiles match{segment}"
        order = f"  sorted by {self.sort_column}" if self.sort_column != "last seen" else ""
        self.query_one("#profiles-status", Static).update(f"{count}{first}{where}{order}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":  # the way out, in the key bar while typing a filter or one applies
            return bool(self.filter_text) or self.query_one(FilterLine).input.has_focus
        # The consent history is in ledger order, newest first: `s` sorts the profiles only.
        return not (action == "sort" and self.history is not None)

    def action_sort(self) -> None:
        self.sort_column = SORT_ORDERS[(SORT_ORDERS.index(self.sort_column) + 1) % len(SORT_ORDERS)]
        self.action_reload()  # sorted by the query, over every matching profile

    def action_copy(self) -> None:
        if (chosen := self.selected_number()) is not None:
            self.app.copy_to_clipboard(chosen[1])
            self.notify(make_inert(f"Copied {chosen[1]}"), timeout=2, markup=False)

    def action_opt_out(self) -> None:
        """Record an opt-out that reached the operator by other means (asks for the reason)."""
        if (chosen := self.selected_number()) is None:
            return
        sandbox, number = chosen

        def decided(reason: str | None) -> None:
            if reason:
                self._opt_out(sandbox, number, reason)

        self.app.push_screen(OptOutScreen(sandbox, number), decided)

    @work(group="profiles-opt-out", exit_on_error=False)
    async def _opt_out(self, sandbox: str, number: str, reason: str) -> None:
        done = await self.data.write(opt_out_by_operator, sandbox, number, reason)
        self.notify(make_inert(f"{done.number}: {done.note} (ledger #{done.ledger_id})"), timeout=4, markup=False)
        self.action_reload()

    # ---- filter --------------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one(FilterLine).open()

    def action_clear_filter(self) -> None:
        self.query_one(FilterLine).clear()
        if self.filter_text:
            self.filter_text = ""
            self.filters = dict(NO_FILTER)
            self.history = None
            self.action_reload()
        self.query_one(DataTable).focus()

    def show_number(self, sandbox: str, number: str) -> None:
        """Filter to one number in one sandbox and open its ledger (from a message in the log)."""
        text = f"sandbox:{sandbox} num:{number}"
        self.filter_text = text
        self.query_one(FilterLine).applied = text
        self.filters, self.history = parse_view_filter(text)
        self._open_after_load = (sandbox, number)
        self.action_reload()

    @on(FilterLine.Apply)
    def _apply(self, event: FilterLine.Apply) -> None:
        if (parsed := event.parse(parse_view_filter, FilterSyntaxError)) is None:
            return
        filters, history = parsed
        if filters != self.filters or history != self.history or event.text.strip() != self.filter_text:
            self.filters, self.history = filters, history
            self.filter_text = event.text.strip()
            self.action_reload()
        if event.final:
            event.line.close()
            self.query_one(DataTable).focus()

    def action_open(self) -> None:
        if (profile := self.selected()) is not None:
            self.app.push_screen(ProfileDetailScreen(self.data, profile))
        elif (change := self.selected_change()) is not None:
            self._open_number(change["sandbox"], change["number"])

    @work(group="profiles-open", exit_on_error=False)
    async def _open_number(self, sandbox: str, number: str) -> None:
        profile = await self.data.read(profile_of, sandbox, number)
        if profile is not None:
            self.app.push_screen(ProfileDetailScreen(self.data, profile))
        else:
            self.notify(make_inert(f"{number} has no profile in {sandbox}"), timeout=3, markup=False)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        # The row Enter was pressed on, by its key: a reload between the key and this message
        # may have moved it, never replaced it.
        profile = next((p for p in self.profiles if profile_key(p) == event.row_key.value), None)
        change = next((c for c in self.changes if change_key(c) == event.row_key.value), None)
        if profile is not None:
            self.app.push_screen(ProfileDetailScreen(self.data, profile))
        elif change is not None:
            self._open_number(change["sandbox"], change["number"])


class ProfileDetailScreen(ReportsWorkerErrors, ModalScreen[None]):
    """A number's consent ledger (the compliance evidence) and its latest messages."""

    HELP_TITLE = "Profile"
    DEFAULT_CSS = """
    ProfileDetailScreen { align: center middle; }
    ProfileDetailScreen > VerticalScroll {
        width: 95%; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="profile.close"),
        Binding("y", "copy", "Copy number", id="profile.copy"),
        Binding("x", "export", "Export evidence", id="profile.export"),
        HELP_BINDING,
        *VIEW_BINDINGS,
    ]

    def __init__(self, data: DataService, profile: Profile, export_dir: Path | None = None) -> None:
        super().__init__()
        self.data = data
        self.profile = profile
        self.export_dir = export_dir  # None: the current directory

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("loading…", id="profile-detail")
        yield KeyBar()

    def on_mount(self) -> None:
        self._load()

    def refresh_data(self, event: object) -> None:
        self._load()

    def on_database_changed(self, event: object) -> None:
        self.refresh_data(event)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.profile.number)
        self.notify(f"Copied {self.profile.number}", timeout=2, markup=False)

    @work(group="profile-export", exit_on_error=False)
    async def action_export(self) -> None:
        """The number's evidence record (`smsdesk consent evidence --json`) to a file here."""
        path = (self.export_dir or Path.cwd()) / evidence_file_name(self.profile.number)
        digest = await self.data.read(export_evidence, self.profile.sandbox, self.profile.number, path)
        self.notify(make_inert(f"Evidence written to {path} ({digest})"), timeout=6, markup=False)

    @work(exclusive=True, group="profile-detail", exit_on_error=False)
    async def _load(self) -> None:
        text = ledger_text(self.profile, *await self.data.read(read_ledger, self.profile))
        for detail in self.query("#profile-detail").results(Static):  # none once closed
            detail.update(text)


def ledger_text(p: Profile, ledger: list[dict[str, Any]], causes: dict[int, MessageRow | None],
                messages: list[MessageRow]) -> Text:
    """Built as Text, never markup: inbound text such as "[$x]" or "[/b]" is shown as typed."""
    b = "bold"
    lines: list[list[Part]] = [
        [(p.number, b), f" sandbox {p.sandbox}  consent {CONSENT_LABEL.get(p.consent, p.consent)}  "
                        f"first {p.first_seen[:19]}  last {p.last_seen[:19]}"],
        [],
        [("Consent ledger", b)],
    ]
    if not ledger:
        lines.append(["  (no consent ever expressed)"])
    for e in ledger:
        cause = causes.get(e["message_row_id"])
        said = f'"{cause.text}"' if cause is not None else f"message #{e['message_row_id']}"
        lines.append([f"  {e['at'][:19]}  {CONSENT_LABEL.get(e['old'], e['old'])} → "
                      f"{CONSENT_LABEL.get(e['new'], e['new'])}  ", (said, b), f"  {e['reason']}"])
    lines += [[], [("Attributes", b)]]
    for name, info in p.attributes.items():
        lines.append([f"  {name}: {info['count']}×, first {info['first_at'][:19]}, last {info['last_at'][:19]}"])
    if not p.attributes:
        lines.append(["  (none)"])
    lines += [[], [("Latest messages", b)]]
    for m in messages:
        text = m.text.replace("\n", " ")
        lines.append([f"  {m.received_at[:19]}  {m.action:<13} {text[:60]}  reply {m.reply_status or '-'}"])
    return inert_lines(lines)
