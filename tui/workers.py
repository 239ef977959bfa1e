"""Worker failures are reported, never fatal.

Every `@work` in tui/ passes `exit_on_error=False` (a test checks it): by default a worker's
exception ends the app, so a credential deleted by another session or a database locked past
the busy timeout closed the TUI. A failed worker posts `Worker.StateChanged` to the widget or
screen that started it (the message does not bubble); `ReportsWorkerErrors` hands it to the
app's one handler, `SmsDeskApp.report_worker_error`, which shows it in the status line and
retries on its timer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.worker import Worker, WorkerState

from smsdesk.tui.protocols import DeskApp

if TYPE_CHECKING:
    from textual.dom import DOMNode

    _Base = DOMNode
else:
    _Base = object


class ReportsWorkerErrors(_Base):
    """Mix into any screen or widget that starts workers."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        if isinstance(self.app, DeskApp):
            self.app.report_worker_error(event.worker, self)


def describe_error(error: BaseException | None) -> str:
    """One plain line for the status line: no traceback, no class names for known failures."""
    import sqlite3

    from smsdesk.store.errors import StorageTrouble, StoreError, classify

    if error is None:
        return "something failed"
    trouble = classify(error)
    if isinstance(error, sqlite3.Error):
        # A corrupt file is not a read that may work later; nor is a job's own failure (None).
        if trouble is None or trouble is StorageTrouble.CORRUPT:
            return f"database error: {error}"
        return f"could not read the database: {error}"
    if isinstance(error, StoreError):
        return str(error)
    if isinstance(error, OSError):
        return f"could not open the database: {error.strerror or error}"
    return f"unexpected failure ({type(error).__name__}: {error})"
