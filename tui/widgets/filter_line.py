"""The one filter widget of every list view: `/` opens it, typing filters as you type, Enter
goes back to the list, Esc clears the filter.

One line: the input, and to its right what is wrong with the filter so far (an unknown
`action:` word), so nothing pops up while typing. The screen parses and applies the text; this
widget only says when (debounced while typing, at once on Enter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static

from smsdesk.tui.key_hints import with_keys

T = TypeVar("T")
DEBOUNCE_SECONDS = 0.3  # a count over a million rows per keystroke would be a waste


class FilterLine(Horizontal):
    DEFAULT_CSS = """
    FilterLine { display: none; height: auto; background: $boost; }
    FilterLine.visible { display: block; }
    FilterLine > Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    /* The whole error, wrapped beside the input: "action must be one of ..." is never cut. */
    FilterLine > .filter-error { width: auto; max-width: 60%; height: auto; padding: 0 1; text-style: bold; }
    """

    class Apply(Message):
        """Apply this filter text (`final`: Enter was pressed)."""

        def __init__(self, line: FilterLine, text: str, *, final: bool) -> None:
            super().__init__()
            self.line = line
            self.text = text
            self.final = final

        @property
        def control(self) -> FilterLine:
            return self.line

        def parse(self, parser: Callable[[str], T], errors: type[Exception] | tuple[type[Exception], ...]) -> T | None:
            """The parsed filter, or None after showing why the text is not one (and, on Enter,
            notifying it). A parsed text becomes the line's applied text."""
            try:
                parsed = parser(self.text)
            except errors as exc:
                self.line.show_error(str(exc))
                if self.final:
                    self.line.notify(str(exc), severity="error")
                return None
            self.line.show_error("")
            self.line.applied = self.text
            return parsed

    def __init__(self, *, input_id: str, placeholder: str, id: str | None = None,
                 debounce: float = DEBOUNCE_SECONDS) -> None:
        super().__init__(id=id)
        self.input_id = input_id
        self.debounce = debounce  # 0: apply at every keystroke (a list already in memory)
        self.placeholder = placeholder
        self._timer: Timer | None = None
        self.applied = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self.placeholder, compact=True, id=self.input_id)
        yield Static("", classes="filter-error")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    def open(self) -> None:
        # The placeholder names keys as the keymap has them now (`{key:ID}`, tui/key_hints.py).
        self.input.placeholder = with_keys(self, self.placeholder)
        self.add_class("visible")
        self.input.display = True
        self.input.value = self.applied
        self.input.focus()

    def close(self) -> None:
        self.remove_class("visible")
        self.input.display = False  # so `box.display` answers "can I see the filter box?"
        self._cancel()

    def clear(self) -> None:
        """Closed, with no error and nothing applied: what Esc does to a view's filter."""
        self.close()
        self.show_error("")
        self.applied = ""

    def show_error(self, message: str) -> None:
        self.query_one(".filter-error", Static).update(Text(f"✗ {message}") if message else "")

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if not self.has_class("visible"):
            return  # set programmatically while closed (open() restoring the text)
        self._cancel()
        text = event.value
        if self.debounce <= 0:
            self._post(text, final=False)
        else:
            self._timer = self.set_timer(self.debounce, lambda: self._post(text, final=False))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._cancel()
        self._post(event.value, final=True)

    def _post(self, text: str, *, final: bool) -> None:
        self._timer = None
        self.post_message(self.Apply(self, text, final=final))
