"""What the app and its screens ask of each other, written down for the type checker and the reader.

The screens are imported lazily and the app module imports them, so neither side names the
other's class: each asks `isinstance(x, Protocol)` of what it holds (`self.app`, a screen of the
stack). A screen Textual itself pushes (the command palette) has none of these, and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.worker import Worker

    from smsdesk.tui.data import DatabaseChanged

Notes = tuple[tuple[str, str], ...]  # F1's (heading, text) lines; a heading has no text


class ViewEntry(Protocol):
    @property
    def mode(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def title(self) -> str: ...


@runtime_checkable
class DeskApp(Protocol):
    """The app as its screens and widgets see it (SmsDeskApp)."""

    VIEWS: Sequence[ViewEntry]  # the tab line's views, in order
    notice: str  # a standing problem the data shows, under the tab line of every view

    def show_profile(self, sandbox: str, number: str) -> None:
        """The profiles view, filtered to this number, its ledger open."""

    def report_worker_error(self, worker: Worker[object], node: DOMNode) -> None:
        """A worker failed: said in the problem line, retried on the app's timer."""


@runtime_checkable
class ShowsData(Protocol):
    """A screen that shows data: told when the database changed, it reads again what it shows."""

    def refresh_data(self, event: DatabaseChanged | None) -> None: ...


@runtime_checkable
class HasProblemLine(Protocol):
    """A view's line under the tabs for a problem (a locked database) or the app's notice."""

    problem: str

    def show_problem(self, text: str) -> None: ...

    def clear_problem(self) -> None: ...


@runtime_checkable
class FindsNumber(Protocol):
    """The profiles view: filtered to one number, its ledger opened."""

    def show_number(self, sandbox: str, number: str) -> None: ...


@runtime_checkable
class HasHelpTitle(Protocol):
    HELP_TITLE: str  # F1's title for the screen


@runtime_checkable
class HasHelpNotes(Protocol):
    HELP_NOTES: Notes  # F1's lines after the keys: filter syntax, legends
