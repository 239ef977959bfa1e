"""A comma-separated list field (the credential form's keyword lists) that is never replaced by
accident: focus puts the cursor at the end instead of selecting everything (Tab into a selected
list, then one key, replaced the whole list), and Ctrl+Z / Ctrl+Y undo and redo each edit."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import Input

UNDO_DEPTH = 100


class ListInput(Input):
    BINDINGS = [
        Binding("ctrl+z", "undo", "Undo", show=False, id="edit.undo"),
        Binding("ctrl+y", "redo", "Redo", show=False, id="edit.redo"),
    ]

    def __init__(self, value: str = "", **options: Any) -> None:
        self._undo: list[str] = []
        self._redo: list[str] = []
        self._restoring = True  # the first value is no edit
        super().__init__(value, select_on_focus=False, **options)
        self._restoring = False

    def watch_value(self, old: str, new: str) -> None:
        # Every change, typed, pasted or set (a preset filling the list), can be undone.
        if self._restoring or old == new:
            return
        self._undo.append(old)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def action_undo(self) -> None:
        if self._undo:
            self._redo.append(self.value)
            self._restore(self._undo.pop())

    def action_redo(self) -> None:
        if self._redo:
            self._undo.append(self.value)
            self._restore(self._redo.pop())

    def _restore(self, value: str) -> None:
        self._restoring = True
        try:
            self.value = value
        finally:
            self._restoring = False
        self.cursor_position = len(value)
