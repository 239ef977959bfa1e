"""The credentials manager: list, filter, reveal, create, edit, copy and delete credentials."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from smsdesk.store.credential_queries import CredentialRow, list_credential_rows
from smsdesk.store.credentials import delete_credential
from smsdesk.store.errors import NotFoundError, StoreError
from smsdesk.store.text import make_inert
from smsdesk.tui.commands import CredentialCommands
from smsdesk.tui.db_access import load_credential, open_db
from smsdesk.tui.db_watch import ChangeWatcher
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from smsdesk.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from smsdesk.store.models import StoredCredential

# The dialogs (edit form, copy, confirm, verify, test SMS) are imported when first opened: the
# edit form alone pulls in TextArea, Select and the form specs, none of which the list needs.


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
        # Out of the footer (it is full at 80 columns); listed in help (F1) and the palette.
        Binding("v", "verify", "Verify key with Infobip (balance)", show=False, id="credentials.verify"),
        Binding("t", "test_send", "Send a test SMS", show=False, id="credentials.test_send"),
        Binding("f5", "reload", "Reload", show=False, id="credentials.reload"),
    ]

    class Loaded(Message):
        def __init__(self, credentials: list[CredentialRow], select_id: int | None) -> None:
            super().__init__()
            self.credentials = credentials
            self.select_id = select_id

    class LoadFailed(Message):
        """The database could not be read (locked for longer than the busy timeout, unreadable)."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

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
        # The first read starts now, in a plain thread, before Textual composes and styles the
        # screen (see `wait_for_first_read`), so the first frame can already show the rows.
        self._first_read: Future[list[CredentialRow]] = Future()
        threading.Thread(target=self._prefetch, name="smsdesk-credentials-prefetch", daemon=True).start()

    async def wait_for_first_read(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the first read, without blocking the event loop.

        The app awaits this before its first frame. While the UI thread waits, the reader has
        the GIL to itself; racing the UI thread instead, it got the GIL back only every switch
        interval and the rows arrived after empty frames (bench/startup.py).
        A slow or locked database just means the screen opens on "loading…" after `timeout`.
        """
        # A timeout or a read error: on_mount's path handles both.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._first_read)), timeout)

    def compose(self) -> ComposeResult:
        # No filter box yet: an Input (with its cursor timer and styles) is mounted on the first
        # `/`, so the list paints sooner for the many sessions that never filter.
        yield Static("loading…", id="cred-status")
        yield CredentialsTable(id="cred-table")
        yield Static(Text("No credentials yet. Press n to add one.", style="italic"), id="cred-empty")
        yield KeyBar()

    @property
    def table(self) -> CredentialsTable:
        return self.query_one(CredentialsTable)

    def on_mount(self) -> None:
        self.query_one("#cred-empty").display = False
        self.table.focus()
        if self._first_read.done() and self._first_read.exception() is None:
            self._show(self._first_read.result(), None)
        else:
            self._await_first_read()  # still reading; or failed, and the worker reports it

    def _start_polling(self) -> None:
        # Only after the first rows are shown: a poll's newer result must never be overtaken by
        # the first read's older one.
        if self._timer is None:
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
            try:
                changed = self._watcher.changed()
            except sqlite3.Error:
                changed = True  # still unreadable: the read below reports it, and the next poll retries
            if changed or not self.loaded:
                self._read(None)
        finally:
            self._polling = False

    def _prefetch(self) -> None:
        try:
            with self._load_lock:
                rows = self._read_rows()
        except BaseException as exc:  # handed to the UI, which reports it as any load error
            self._first_read.set_exception(exc)
        else:
            self._first_read.set_result(rows)

    @work(thread=True, group="credentials-load")
    def _await_first_read(self) -> None:
        try:
            rows = self._first_read.result()
        except sqlite3.Error as exc:
            self.post_message(self.LoadFailed(str(exc)))
        else:
            self.post_message(self.Loaded(rows, None))

    @work(thread=True, group="credentials-load")
    def _load(self, select_id: int | None) -> None:
        self._read(select_id)

    def _read_rows(self) -> list[CredentialRow]:
        return self._watcher.read(list_credential_rows)

    def _read(self, select_id: int | None) -> None:
        with self._load_lock:
            try:
                rows = self._read_rows()
            except sqlite3.Error as exc:
                self.post_message(self.LoadFailed(str(exc)))
            else:
                self.post_message(self.Loaded(rows, select_id))

    @on(LoadFailed)
    def _load_failed(self, event: LoadFailed) -> None:
        # Polling goes on, so the list fills in by itself once the database can be read again.
        self.query_one("#cred-status", Static).update(
            Text(f"could not read the database: {make_inert(event.error)} (retrying)", style="bold"))
        self._start_polling()

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        self._show(event.credentials, event.select_id)

    def _show(self, credentials: list[CredentialRow], select_id: int | None) -> None:
        self.loaded = True
        self.table.show(credentials, select_id=select_id)
        self._update_status()
        self._start_polling()

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

    @property
    def _filter_box(self) -> Input | None:
        found = self.query("#cred-filter")
        return found.first(Input) if found else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            # Only offered (and shown in the footer) while there is a filter to clear.
            box = self._filter_box
            return box is not None and box.has_class("visible")
        return True

    async def action_filter(self) -> None:
        box = self._filter_box
        if box is None:
            box = Input(placeholder="filter: any text in name, sandbox, host, number (Esc clears)", compact=True,
                        id="cred-filter")
            await self.mount(box, before="#cred-status")
        box.add_class("visible")
        box.focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        box = self._filter_box
        if box is None:
            return
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

    def _selected_or_warn(self) -> CredentialRow | None:
        row = self.table.selected
        if row is None:
            self.notify("No credential selected", severity="warning")
        return row

    @work(thread=True, group="credentials-fetch")
    def _fetch(self, credential_id: int) -> StoredCredential:
        return load_credential(self.db_path, credential_id)

    async def _full(self, row: CredentialRow) -> StoredCredential | None:
        """The whole credential for a dialog, read in a thread worker; None if it is gone."""
        worker = self._fetch(row.id)
        try:
            return await worker.wait()
        except Exception:  # WorkerFailed wrapping NotFoundError, or a database error
            error = worker.error
            message = str(error) if isinstance(error, NotFoundError | StoreError) else "could not read it"
            self.notify(f"{make_inert(row.name)}: {message}", severity="error", markup=False)
            self._load(None)
            return None

    @on(CredentialsTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    @work
    async def action_edit(self) -> None:
        from smsdesk.tui.screens.credential_edit import CredentialEditScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        saved = await self.app.push_screen_wait(CredentialEditScreen(self.db_path, cred))
        self._after_save(saved, "Saved")

    @work
    async def action_new(self) -> None:
        from smsdesk.tui.screens.credential_edit import CredentialEditScreen

        saved = await self.app.push_screen_wait(CredentialEditScreen(self.db_path, None))
        self._after_save(saved, "Created")

    @work
    async def action_duplicate(self) -> None:
        from smsdesk.tui.screens.duplicate import DuplicateScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
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
        from smsdesk.tui.screens.confirm import ConfirmScreen

        if (row := self._selected_or_warn()) is None:
            return
        question = (f"Delete credential {make_inert(row.name)!r} (sandbox {row.sandbox})? "
                    "Its queued replies are cancelled. This cannot be undone.")
        if await self.app.push_screen_wait(ConfirmScreen("Delete credential", question, yes="Delete")):
            self._delete(row)

    @work(thread=True, group="credentials-delete")
    def _delete(self, row: CredentialRow) -> None:
        try:
            with open_db(self.db_path) as db:
                cancelled = delete_credential(db, row.id, row.version)
        except StoreError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
        else:
            note = f"; {cancelled} queued {'reply' if cancelled == 1 else 'replies'} cancelled" if cancelled else ""
            self.app.call_from_thread(self.notify, f"Deleted {make_inert(row.name)}{note}", timeout=3,
                                      markup=False)
        self._read(None)

    # -- talking to Infobip ---------------------------------------------------------------------

    @work
    async def action_verify(self) -> None:
        from smsdesk.tui.screens.verify import VerifyScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        await self.app.push_screen_wait(VerifyScreen(cred))

    @work
    async def action_test_send(self) -> None:
        from smsdesk.tui.screens.send_test import SendTestScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        await self.app.push_screen_wait(SendTestScreen(cred, self.db_path))
