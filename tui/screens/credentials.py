"""The credentials manager: list, filter, reveal, create, edit, copy and delete credentials."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from smsdesk.domain.inert import make_inert
from smsdesk.store.credential_rows import CredentialRow, list_credential_rows
from smsdesk.store.errors import StoreError
from smsdesk.tui.commands import CredentialCommands
from smsdesk.tui.data import DatabaseChanged, DataService
from smsdesk.tui.key_hints import with_keys
from smsdesk.tui.screens.view import ViewScreen
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from smsdesk.tui.widgets.filter_line import FilterLine
from smsdesk.tui.widgets.key_bar import KeyBar
from smsdesk.usecases.credentials import load_credential, remove_credential

if TYPE_CHECKING:
    from smsdesk.domain.credential import StoredCredential

# The dialogs (edit form, copy, confirm, verify, test SMS) are imported when first opened: the
# edit form alone pulls in TextArea, Select and the form specs, none of which the list needs.


class CredentialsScreen(ViewScreen):
    VIEW_MODE = "credentials"
    HELP_TITLE = "Credentials"
    COMMANDS = {CredentialCommands}
    HELP_NOTES = (
        ("Filter ({key:credentials.filter})", ""),
        ("any words", "rows whose name, sandbox, host, number, sender, mode or DLT ids contain every word"),
        ("", ""),
        ("Columns", ""),
        ("api key", "masked unless revealed ({key:credentials.reveal}); the filter never searches keys"),
        ("mode", "forward: Infobip posts to `smsdesk serve`; pull: smsdesk fetches the inbox"),
        ("valid", "validity period of sent messages, in hours"),
    )
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="credentials.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="credentials.clear_filter"),
        Binding("e", "edit", "Edit", id="credentials.edit"),
        Binding("n", "new", "New", id="credentials.new"),
        Binding("d", "delete", "Delete", id="credentials.delete"),
        Binding("v", "verify", "Verify", id="credentials.verify"),
        Binding("t", "test_send", "Test SMS", id="credentials.test_send"),
        Binding("c", "duplicate", "Copy", id="credentials.duplicate"),
        Binding("r", "reveal", "Reveal", id="credentials.reveal"),
        Binding("s", "sort", "Sort", show=False, id="credentials.sort"),
        Binding("y", "copy_value", "Copy number", show=False, id="credentials.copy_number"),
        Binding("f5", "reload", "Reload", show=False, id="credentials.reload"),
    ]

    def __init__(self, data: DataService) -> None:
        super().__init__(data)
        self.loaded = False
        self._select_id: int | None = None  # select this credential once the next read lands
        # The first read starts now, on the data service's thread, before Textual composes and
        # styles the screen (see `wait_for_first_read`), so the first frame can show the rows.
        self._first_read: Future[list[CredentialRow]] = data.submit_read(list_credential_rows)

    async def wait_for_first_read(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the first read, without blocking the event loop.

        The app awaits this before its first frame. While the UI thread waits, the reader has
        the GIL to itself; racing the UI thread instead, it got the GIL back only every switch
        interval and the rows arrived after empty frames (bench/startup.py).
        A slow or locked database just means the screen opens on "loading…" after `timeout`.
        """
        # A timeout or a read error: on_mount's path handles both.
        waiting = asyncio.wrap_future(self._first_read)
        waiting.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(waiting), timeout)

    def compose(self) -> ComposeResult:
        # The filter line is mounted on the first `/`: an Input (with its cursor timer and
        # styles) costs the first paint, and many sessions never filter.
        yield from self.compose_top()
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
            self._show(self._first_read.result())
        else:
            self._await_first_read()  # still reading; or failed, and the worker reports it

    # -- loading and live updates ---------------------------------------------------------------

    def refresh_data(self, event: DatabaseChanged | None) -> None:
        if event is None or not event.clock:
            self._load()

    @work(group="credentials-load", exit_on_error=False)
    async def _await_first_read(self) -> None:
        self._show(await asyncio.wrap_future(self._first_read))

    @work(group="credentials-load", exclusive=True, exit_on_error=False)
    async def _load(self) -> None:
        # Exclusive: a newer read replaces an older one still running, so an older result can
        # never overwrite a newer one. The selection wanted survives in `_select_id`.
        self._show(await self.data.read(list_credential_rows))

    def _show(self, credentials: list[CredentialRow]) -> None:
        select_id, self._select_id = self._select_id, None
        self.loaded = True
        self.table.show(credentials, select_id=select_id)
        self._update_status()

    def _update_status(self) -> None:
        table = self.table
        total, shown = len(table.credentials), len(table.shown)
        parts = [f"{total} credential{'s' if total != 1 else ''}"]
        if table.filter_text:
            parts.append(f"{shown} of {total} match {make_inert(table.filter_text)!r}")
        parts.append(with_keys(self, "keys REVEALED ({key:credentials.reveal} hides)" if table.reveal
                                else "keys masked ({key:credentials.reveal} reveals)"))
        if table.sort_column:
            parts.append(f"sorted by {table.sort_column}")
        self.query_one("#cred-status", Static).update(Text("  ·  ".join(parts)))
        self.query_one("#cred-empty").display = total == 0

    # -- filter and reveal ----------------------------------------------------------------------

    @property
    def _filter_line(self) -> FilterLine | None:
        found = self.query("#cred-filter-line")
        return found.first(FilterLine) if found else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            line = self._filter_line
            return line is not None and (line.has_class("visible") or bool(self.table.filter_text))
        return True

    async def action_filter(self) -> None:
        line = self._filter_line
        if line is None:
            line = FilterLine(input_id="cred-filter", id="cred-filter-line", debounce=0,
                              placeholder="any text in name, sandbox, host, number  "
                                          "(Enter: list, {key:credentials.clear_filter}: clear)")
            await self.mount(line, before="#cred-status")
        line.open()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        line = self._filter_line
        if line is None:
            return
        line.close()
        line.applied = ""
        self.table.set_filter("")
        self._update_status()
        self.table.focus()
        self.refresh_bindings()

    @on(FilterLine.Apply)
    def _filter_apply(self, event: FilterLine.Apply) -> None:
        event.line.applied = event.text
        self.table.set_filter(event.text)
        self._update_status()
        if event.final:
            event.line.close()
            self.table.focus()
            self.refresh_bindings()

    def action_sort(self) -> None:
        self.table.cycle_sort()
        self._update_status()

    def action_copy_value(self) -> None:
        row = self.table.selected
        if row is not None and row.inbound_number:
            self.app.copy_to_clipboard(row.inbound_number)  # OSC 52: works over SSH
            self.notify(f"Copied {row.inbound_number}", timeout=2, markup=False)

    def action_reveal(self) -> None:
        self.table.set_reveal(not self.table.reveal)
        self._update_status()

    def action_reload(self) -> None:
        self._load()

    # -- create, edit, copy, delete -------------------------------------------------------------

    def _selected_or_warn(self) -> CredentialRow | None:
        row = self.table.selected
        if row is None:
            self.notify("No credential selected", severity="warning")
        return row

    async def _full(self, row: CredentialRow) -> StoredCredential | None:
        """The whole credential for a dialog; None (and said so) when it is gone or unreadable."""
        try:
            return await self.data.read(load_credential, row.id)
        except Exception as exc:  # NotFoundError (deleted meanwhile), a locked database...
            from smsdesk.tui.workers import describe_error

            self.notify(f"{make_inert(row.name)}: {describe_error(exc)}", severity="error", markup=False)
            self._load()
            return None

    @on(CredentialsTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_edit()

    @work(exit_on_error=False)
    async def action_edit(self) -> None:
        from smsdesk.tui.screens.credential_edit import CredentialEditScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        saved = await self.app.push_screen_wait(CredentialEditScreen(self.data, cred))
        self._after_save(saved, "Saved")

    @work(exit_on_error=False)
    async def action_new(self) -> None:
        from smsdesk.tui.screens.credential_edit import CredentialEditScreen

        saved = await self.app.push_screen_wait(CredentialEditScreen(self.data, None))
        self._after_save(saved, "Created")

    @work(exit_on_error=False)
    async def action_duplicate(self) -> None:
        from smsdesk.tui.screens.duplicate import DuplicateScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        saved = await self.app.push_screen_wait(DuplicateScreen(self.data, cred))
        self._after_save(saved, "Copied to")

    def _after_save(self, saved: StoredCredential | None, verb: str) -> None:
        if saved is None:
            return
        self.notify(f"{verb} {make_inert(saved.name)} ({saved.sandbox})", timeout=3, markup=False)
        self._select_id = saved.id
        self._load()

    @work(exit_on_error=False)
    async def action_delete(self) -> None:
        from smsdesk.tui.screens.confirm import ConfirmScreen

        if (row := self._selected_or_warn()) is None:
            return
        question = (f"Delete credential {make_inert(row.name)!r} (sandbox {row.sandbox})? "
                    "Its queued replies are cancelled. This cannot be undone.")
        if await self.app.push_screen_wait(ConfirmScreen("Delete credential", question, yes="Delete")):
            self._delete(row)

    @work(group="credentials-delete", exit_on_error=False)
    async def _delete(self, row: CredentialRow) -> None:
        try:
            cancelled = await self.data.write(remove_credential, row.id, row.version)
        except StoreError as exc:
            self.notify(f"{make_inert(row.name)}: {exc}", severity="error", markup=False)
        else:
            note = f"; {cancelled} queued {'reply' if cancelled == 1 else 'replies'} cancelled" if cancelled else ""
            self.notify(f"Deleted {make_inert(row.name)}{note}", timeout=3, markup=False)
        self._load()

    # -- talking to Infobip ---------------------------------------------------------------------

    @work(exit_on_error=False)
    async def action_verify(self) -> None:
        from smsdesk.tui.screens.verify import VerifyScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        await self.app.push_screen_wait(VerifyScreen(cred, self.data))

    @work(exit_on_error=False)
    async def action_test_send(self) -> None:
        from smsdesk.tui.screens.send_test import SendTestScreen

        if (row := self._selected_or_warn()) is None or (cred := await self._full(row)) is None:
            return
        await self.app.push_screen_wait(SendTestScreen(cred, self.data))
