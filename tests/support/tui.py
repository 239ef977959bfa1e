"""Driving the credentials screen in Pilot tests: the app at 80x24, waiting for its workers,
reading and selecting rows."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from smsdesk.domain.credential import StoredCredential
from smsdesk.store.credentials import list_credentials
from smsdesk.store.db import connect
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.credentials import CredentialsScreen
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from tests.support.live import wait_until

SIZE = (80, 24)


def make_app(db_path: Path, **kwargs: object) -> SmsDeskApp:
    return SmsDeskApp(db_path, **kwargs)  # type: ignore[arg-type]


async def settle(pilot: Pilot[None]) -> None:
    """Wait for the thread workers (store calls), not for the form-awaiting async handlers."""
    app = pilot.app
    for _ in range(3):
        busy = [w for w in app.workers if w.group != "default"]
        if busy:  # an empty list would mean "wait for every worker", the open form's too
            await app.workers.wait_for_complete(busy)
        await pilot.pause()


async def ready(pilot: Pilot[None]) -> CredentialsScreen:
    screen = pilot.app.screen
    assert isinstance(screen, CredentialsScreen)
    await wait_until(pilot, lambda: screen.loaded)
    await settle(pilot)
    return screen


def table_text(screen: CredentialsScreen) -> list[list[str]]:
    table = screen.query_one(CredentialsTable)
    return [list(table.cells_at(i)) for i in range(table.row_count)]


def names(screen: CredentialsScreen) -> list[str]:
    """Full names of the rows shown (the name column itself is clipped to fit 80 columns)."""
    return [c.name for c in screen.query_one(CredentialsTable).shown]


def stored(db_path: Path) -> list[StoredCredential]:
    db = connect(db_path)
    try:
        return list_credentials(db.conn)
    finally:
        db.close()


def note(screen: CredentialEditScreen, field: str) -> str:
    widget = screen.query_one(f"#note-{field}", Static)
    return str(widget.render()) if widget.display else ""


def select_row(screen: CredentialsScreen, name: str) -> None:
    table = screen.query_one(CredentialsTable)
    index = next(i for i, c in enumerate(table.shown) if c.name == name)
    table.move_cursor(row=index, animate=False)
