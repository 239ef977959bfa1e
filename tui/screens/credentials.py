"""The credentials manager: list, filter, reveal, create, edit, copy and delete credentials."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from store.credentials import delete_credential, list_credentials
from store.errors import StoreError
from store.models import StoredCredential
from store.text import make_inert
from tui.commands import CredentialCommands
from tui.db_access import open_db
from tui.db_watch import ChangeWatcher
from tui.screens.confirm import ConfirmScreen
from tui.screens.credential_edit import CredentialEditScreen
from tui.screens.duplicate import DuplicateScreen
from tui.widgets.credentials_table import CredentialsTable


class CredentialsScreen(Screen[None]):
    COMMANDS = {CredentialCommands}
    HELP_EXTRA = (("enter", "Edit the selected credential"), ("↑ ↓ pgup pgdn", "Move in the list"))
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="credentials.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="credentials.clear_filter"),
        Binding("e", "edit", "Edit", id="credentials.edit"),
        Binding("n", "new", "New", id="credentials.new"),
        Binding("d", "delete", "Delete", id="credentials.delete"),
        Binding("c", "duplicate", "Copy", id="credentials.duplicate"),
        Binding("r", "reveal", "Reveal", id="credentials.reveal"),
        Binding("f5", "reload", "Reload", show=False, id="credentials.reload"),
    ]

    class Loaded(Message):
        def __init__(self, credentials: list[StoredCredential], select_id: int | None) -> None:
            super().__init__()
            self.credentials = credentials
            self.select_id = select_id

    def __init__(self, db_path: Path, *, poll_seconds: float = 0.5) -> None:
        super().__init__()
        self.db_path = db_path
        self.poll_seconds = poll_seconds
        self.loaded = False
        self._watcher = ChangeWatcher(db_path)
        # Loads run in threads; holding this while reading *and* posting keeps results in read
        # order, so a slow older read can never overwrite a newer one.
        self._load_lock = threading.Lock()
        self._polling = False
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: any text in name, sandbox, host, number (Esc clears)", compact=True,
                    id="cred-filter")
        yield Static("loading…", id="cred-status")
        yield CredentialsTable(id="cred-table")
        yield Static(Text("No credentials yet. Press n to add one.", style="italic"), id="cred-empty")
        yield Footer()

    @property
    def table(self) -> CredentialsTable:
        return self.query_one(CredentialsTable)

    def on_mount(self) -> None:
        self.query_one("#cred-empty").display = False
        self.table.focus()
        self._load(None)
        self._timer = self.set_interval(self.poll_seconds, self._poll)

    def on_unmount(self) -> None:
        self._watcher.close()

    # -- loading and live updates ---------------------------------------------------------------

    def _poll(self) -> None:
        # Skip a tick rather than queue threads when the disk is slow.
        if not self._polling:
            self._polling = True
            self._check_changes()

    @work(thread=True, group="credentials-poll")
    def _check_changes(self) -> None:
        try:
            if self._watcher.changed():
                self._read(None)
        finally:
            self._polling = False

    @work(thread=True, group="credentials-load")
    def _load(self, select_id: int | None) -> None:
        self._read(select_id)

    def _read(self, select_id: int | None) -> None:
        with self._load_lock:
            # Note the data version before reading: a commit after this point is seen by the
            # next poll, and the poll does not re-read what this load already has.
            self._watcher.changed()
            with open_db(self.db_path) as db:
                credentials = list_credentials(db)
            self.post_message(self.Loaded(credentials, select_id))

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self.loaded = True
        self.table.show(event.credentials, select_id=event.select_id)
        self._update_status()

    def _update_status(self) -> None:
        table = self.table
        total, shown = len(table.credentials), len(table.shown)
        parts = [f"{total} credential{'s' if total != 1 else ''}"]
        if table.filter_text:
            parts.append(f"{shown} match {make_inert(table.filter_text)!r}")
        parts.append("keys REVEALED (r hides)" if table.reveal else "keys masked (r reveals)")
        self.query_one("#cred-status", Static).update(Text("  ·  ".join(parts)))
        self.query_one("#cred-empty").display = total == 0

    # -- filter and reveal ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            # Only offered (and shown in the footer) while there is a filter to clear.
            return self.query_one("#cred-filter", Input).has_class("visible")
        return True

    def action_filter(self) -> None:
        box = self.query_one("#cred-filter", Input)
        box.add_class("visible")
        box.focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        box = self.query_one("#cred-filter", Input)
        box.remove_class("visible")
        box.value = ""  # fires Input.Changed, which clears the table filter
        self.table.focus()
        self.refresh_bindings()

    @on(Input.Changed, "#cred-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)
        self._update_status()

    @on(Input.Submitted, "#cred-filter")
    def _filter_submitted(self) -> None:
        self.table.focus()

    def action_reveal(self) -> None:
        self.table.set_reveal(not self.table.reveal)
        self._update_status()

    def action_reload(self) -> None:
        self._load(None)

    # -- create, edit, copy, delete -------------------------------------------------------------

    def _selected_or_warn(self) -> StoredCredential | None:
        cred = self.table.selected
        if cred is None:
            self.notify("No credential selected", severity="warning")
        return cred

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    @work
    async def action_edit(self) -> None:
        if (cred := self._selected_or_warn()) is None:
            return
        saved = await self.app.push_screen_wait(CredentialEditScreen(self.db_path, cred))
        self._after_save(saved, "Saved")

    @work
    async def action_new(self) -> None:
        saved = await self.app.push_screen_wait(CredentialEditScreen(self.db_path, None))
        self._after_save(saved, "Created")

    @work
    async def action_duplicate(self) -> None:
        if (cred := self._selected_or_warn()) is None:
            return
        saved = await self.app.push_screen_wait(DuplicateScreen(self.db_path, cred))
        self._after_save(saved, "Copied to")

    def _after_save(self, saved: StoredCredential | None, verb: str) -> None:
        if saved is None:
            return
        self.notify(f"{verb} {make_inert(saved.name)} ({saved.sandbox})", timeout=3, markup=False)
        self._load(saved.id)

    @work
    async def action_delete(self) -> None:
        if (cred := self._selected_or_warn()) is None:
            return
        question = f"Delete credential {make_inert(cred.name)!r} (sandbox {cred.sandbox})? This cannot be undone."
        if await self.app.push_screen_wait(ConfirmScreen("Delete credential", question, yes="Delete")):
            self._delete(cred)

    @work(thread=True, group="credentials-delete")
    def _delete(self, cred: StoredCredential) -> None:
        try:
            with open_db(self.db_path) as db:
                delete_credential(db, cred.id, cred.version)
        except StoreError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
        else:
            self.app.call_from_thread(self.notify, f"Deleted {make_inert(cred.name)}", timeout=3, markup=False)
        self._read(None)
