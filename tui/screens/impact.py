"""The impact preview dialog: what the edited rules would have done to the last 30 days."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from smsdesk.domain.impact import DAYS, Impact
from smsdesk.domain.inert import make_inert
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.key_bar import KeyBar


def impact_text(impact: Impact) -> Text:
    text = Text()
    if not impact.messages:
        text.append(f"No messages in the last {DAYS} days: nothing to compare.", style="italic")
        return text
    if not impact.changed:
        text.append(f"The edited rules would have done the same to all {impact.messages} messages "
                    f"of the last {DAYS} days.", style="bold")
        return text
    text.append(f"{impact.changed} of {impact.messages} messages of the last {DAYS} days would have gone "
                "differently:\n", style="bold")
    for (was, would), count in impact.changes.most_common():
        text.append(f"\n{count} {was} -> {would}", style="bold")
        for example in impact.examples.get((was, would), []):
            text.append("\n    e.g. ")
            text.append(make_inert(repr(example[:60])))
    text.append("\n\nNothing was stored or sent. Esc goes back to the form.", style="italic")
    return text


class ImpactScreen(ModalScreen[None]):
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Impact preview"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to the form", id="impact.close"), HELP_BINDING]
    DEFAULT_CSS = """
    ImpactScreen #impact-dialog { width: 76; height: auto; max-height: 20; }
    ImpactScreen VerticalScroll { height: auto; max-height: 16; }
    """

    def __init__(self, impact: Impact) -> None:
        super().__init__()
        self.impact = impact

    def compose(self) -> ComposeResult:
        with Vertical(id="impact-dialog", classes="dialog") as dialog:
            dialog.border_title = "Impact of the edited rules"
            with VerticalScroll():
                yield Static(impact_text(self.impact), id="impact-text")
        yield KeyBar()
