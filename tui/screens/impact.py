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
from smsdesk.tui.key_hints import key_name
from smsdesk.tui.screens.dialog_css import DIALOG_CSS
from smsdesk.tui.screens.view import HELP_BINDING
from smsdesk.tui.widgets.key_bar import KeyBar


def impact_text(impact: Impact, back_key: str = "esc") -> Text:
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
    text.append(f"\n\nNothing was stored or sent. {back_key} goes back to the form.", style="italic")
    return text


class ImpactScreen(ModalScreen[None]):
    CSS_PATH = DIALOG_CSS
    HELP_TITLE = "Impact preview"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to the form", id="impact.close"), HELP_BINDING]
    DEFAULT_CSS = """
    /* Inside the form's frame, at 80x24 and down to 60x20: centred, clear of its border. */
    ImpactScreen { align: center middle; }
    ImpactScreen #impact-dialog { width: 1fr; max-width: 76; margin: 1 2; height: auto; max-height: 75%; }
    ImpactScreen VerticalScroll { height: auto; max-height: 12; }
    """

    def __init__(self, impact: Impact) -> None:
        super().__init__()
        self.impact = impact

    def compose(self) -> ComposeResult:
        with Vertical(id="impact-dialog", classes="dialog") as dialog:
            dialog.border_title = "Impact of the edited rules"
            with VerticalScroll():
                yield Static(impact_text(self.impact, key_name(self, "impact.close")), id="impact-text")
        yield KeyBar()
