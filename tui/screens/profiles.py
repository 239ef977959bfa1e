"""Profiles: numbers per sandbox with consent and keyword attributes; segments by attribute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from smsdesk.store.db import connect
from smsdesk.store.queries import (
    MessageRow,
    Profile,
    consent_ledger,
    count_profiles,
    list_profiles,
    messages_by_id,
    messages_of,
)
from smsdesk.store.text import make_inert
from smsdesk.tui.db_watch import ChangeWatcher
from smsdesk.tui.screens.message_detail import Part, inert_lines

CONSENT_STYLE = {"y": "green", "n": "red", "p": "yellow", "": "dim"}
CONSENT_LABEL = {"y": "y", "n": "n", "p": "p", "": "none"}
PROFILE_PAGE = 500


class ProfileFilterError(ValueError):
    pass


def parse_profile_filter(text: str) -> dict[str, object]:
    """`consent:y|n|p|none attr:DISCOUNT sandbox:prod num:4179` -> keyword arguments for the queries."""
    found: dict[str, object] = {"sandbox": "", "consent": None, "attribute": "", "number": ""}
    for token in text.split():
        key, sep, value = token.partition(":")
        key = key.lower()
        if not sep:
            found["number"] = token
        elif key == "consent":
            if value.lower() not in ("y", "n", "p", "none"):
                raise ProfileFilterError("consent must be y, n, p or none")
            found["consent"] = "" if value.lower() == "none" else value.lower()
        elif key in ("attr", "attribute", "segment", "kw"):
            found["attribute"] = value
        elif key == "sandbox":
            found["sandbox"] = value
        elif key in ("num", "number"):
            found["number"] = value
        else:
            raise ProfileFilterError(f"unknown filter {key!r}: use consent:, attr:, sandbox:, num:")
    return found


class ProfilesScreen(Screen[None]):
    DEFAULT_CSS = """
    ProfilesScreen #profiles-filter { display: none; }
    ProfilesScreen #profiles-filter.visible { display: block; }
    ProfilesScreen #profiles-status { height: 1; background: $boost; padding: 0 1; }
    ProfilesScreen DataTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="profiles.filter"),
        Binding("escape", "clear_filter", "Clear", show=False, id="profiles.clear"),
        Binding("enter", "open", "Ledger", id="profiles.open"),
        Binding("f5", "reload", "Reload", show=False, id="profiles.reload"),
    ]

    def __init__(self, db_path: Path, name: str | None = None) -> None:
        super().__init__(name=name)
        self.db_path = db_path
        self.filter_text = ""
        self.filters: dict[str, object] = parse_profile_filter("")
        self.profiles: list[Profile] = []
        self._watcher = ChangeWatcher(db_path)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="consent:y|n|p|none attr:KEYWORD sandbox:NAME num:DIGITS  (Enter applies)",
                    id="profiles-filter")
        yield Static("loading…", id="profiles-status")
        table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True, id="profiles-table")
        table.add_columns("sandbox", "number", "consent", "attributes", "first seen", "last seen")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._check_changes)
        self._check_changes()
        self.query_one(DataTable).focus()

    def action_reload(self) -> None:
        self._load(dict(self.filters))

    @work(thread=True, exclusive=True, group="profiles-changes")
    def _check_changes(self) -> None:
        if self._watcher.changed():
            self.app.call_from_thread(self.action_reload)

    def on_unmount(self) -> None:
        self._watcher.close()

    @work(thread=True, exclusive=True, group="profiles-load")
    def _load(self, filters: dict[str, object]) -> None:
        db = connect(self.db_path)
        try:
            profiles = list_profiles(db.conn, limit=PROFILE_PAGE, **filters)  # type: ignore[arg-type]
            total = count_profiles(db.conn, **filters)  # type: ignore[arg-type]
        finally:
            db.close()
        self.app.call_from_thread(self._show, profiles, total)

    def _show(self, profiles: list[Profile], total: int) -> None:
        self.profiles = profiles
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        for p in profiles:
            attrs = ", ".join(f"{name}×{info['count']}" for name, info in p.attributes.items())
            # Text, not str: a str cell is parsed as markup, and a sender such as "[/x]" would crash the table.
            table.add_row(
                Text(make_inert(p.sandbox)), Text(make_inert(p.number)),
                Text(CONSENT_LABEL.get(p.consent, p.consent), style=CONSENT_STYLE.get(p.consent)),
                Text(make_inert(attrs)), p.first_seen[:10], p.last_seen[:16].replace("T", " "),
            )
        if profiles:
            table.move_cursor(row=min(keep, len(profiles) - 1))
        shown = f" (first {len(profiles)})" if total > len(profiles) else ""
        where = f"  filter {self.filter_text}" if self.filter_text else ""
        label = "segment" if self.filters.get("attribute") else "profiles"
        self.query_one("#profiles-status", Static).update(f"{total:,} {label}{shown}{where}")

    def action_filter(self) -> None:
        box = self.query_one("#profiles-filter", Input)
        box.add_class("visible")
        box.value = self.filter_text
        box.focus()

    def action_clear_filter(self) -> None:
        self.query_one("#profiles-filter", Input).remove_class("visible")
        if self.filter_text:
            self.filter_text = ""
            self.filters = parse_profile_filter("")
            self.action_reload()
        self.query_one(DataTable).focus()

    @on(Input.Submitted, "#profiles-filter")
    def _apply(self, event: Input.Submitted) -> None:
        try:
            self.filters = parse_profile_filter(event.value)
        except ProfileFilterError as exc:
            self.notify(str(exc), severity="error")
            return
        self.filter_text = event.value.strip()
        event.input.remove_class("visible")
        self.action_reload()
        self.query_one(DataTable).focus()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.profiles or table.cursor_row >= len(self.profiles):
            return
        self.app.push_screen(ProfileDetailScreen(self.db_path, self.profiles[table.cursor_row]))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()


class ProfileDetailScreen(ModalScreen[None]):
    """A number's consent ledger (the compliance evidence) and its latest messages."""

    DEFAULT_CSS = """
    ProfileDetailScreen { align: center middle; }
    ProfileDetailScreen > VerticalScroll {
        width: 95%; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="profile.close")]

    def __init__(self, db_path: Path, profile: Profile) -> None:
        super().__init__()
        self.db_path = db_path
        self.profile = profile

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("loading…", id="profile-detail")
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(thread=True)
    def _load(self) -> None:
        p = self.profile
        db = connect(self.db_path)
        try:
            ledger = consent_ledger(db.conn, p.sandbox, p.number)
            messages = messages_of(db.conn, p.sandbox, p.number)
            found = messages_by_id(db.conn, [e["message_row_id"] for e in ledger if e["message_row_id"]])
            causes = {e["message_row_id"]: found.get(e["message_row_id"]) for e in ledger}
        finally:
            db.close()
        self.app.call_from_thread(self.query_one("#profile-detail", Static).update,
                                  ledger_text(p, ledger, causes, messages))


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
