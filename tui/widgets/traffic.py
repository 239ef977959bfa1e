"""The traffic strip: inbound per minute over the last hour and today's counts per action.

Read through the app's data service when the screen passes on a `DatabaseChanged` (another
process committed) or the app's once-a-minute clock tick (so the buckets slide); never on a
timer of its own. The actions are named as everywhere else (tui/vocabulary.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from smsdesk.store.queries import Traffic, traffic
from smsdesk.tui.data import DataService
from smsdesk.tui.readable_text import readable_text
from smsdesk.tui.vocabulary import ACTIONS, action_style
from smsdesk.tui.workers import ReportsWorkerErrors

# `review` is a display state, not a stored action: it is never counted.
ACTION_ORDER = tuple(a for a in ACTIONS if a != "review")
# Shown only when some arrived today (fuzzy opt-out is off unless a credential turns it on): two
# lines stay enough at 80 columns.
ONLY_WHEN_SEEN = frozenset({"near-opt-out"})


def compact(count: int) -> str:
    """At most four cells: 987, 1.2k, 12k, 1.2M."""
    for limit, unit in ((1_000_000, "M"), (1_000, "k")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def counts_text(by_action: dict[str, int], per_minute: list[int] | None = None, *, no_color: bool = False,
                width: int = 62) -> Text:
    """"today" and the count of each action, each word in its action's style, then the last hour,
    in lines of at most `width` cells: an item that does not fit starts the next line, whole,
    so nothing is cut (two lines at 80 columns, three at 60)."""
    items: list[Text] = [Text("today", style="bold")]
    for action in ACTION_ORDER:
        if action in ONLY_WHEN_SEEN and not by_action.get(action):
            continue
        item = Text(action, style=action_style(action, no_color) or "")
        item.append(f" {compact(by_action.get(action, 0))}")
        items.append(item)
    if per_minute is not None:
        items.append(Text(f"· last hour {sum(per_minute)}, peak {max(per_minute, default=0)}/min"))
    text = Text()
    used = 0
    for index, item in enumerate(items):
        gap = 1 if index == 1 or item.plain.startswith("·") else 2  # "today opt-in 0  opt-out 0 · last hour"
        if used and used + gap + item.cell_len > width:
            text.append("\n")
            used = 0
        elif used:
            text.append(" " * gap)
            used += gap
        text.append_text(item)
        used += item.cell_len
    return text


def system_clock() -> datetime:
    return datetime.now(UTC)


class TrafficStrip(ReportsWorkerErrors, Horizontal):
    DEFAULT_CSS = """
    TrafficStrip { height: auto; }
    TrafficStrip Sparkline { width: 16; height: 2; }
    TrafficStrip #traffic-counts { width: 1fr; height: auto; min-height: 2; padding: 0 1; text-wrap: nowrap; }
    """

    def __init__(self, data: DataService, *, clock: Callable[[], datetime] = system_clock) -> None:
        super().__init__()
        self.data = data
        self.clock = clock  # "now" for the buckets and "today": injectable, so snapshots are stable
        self.latest: Traffic | None = None

    def compose(self) -> ComposeResult:
        yield Sparkline([0] * 60, summary_function=max, id="traffic-spark")
        yield Static("today …", id="traffic-counts")

    def on_mount(self) -> None:
        self.reload()

    @work(exclusive=True, group="traffic", exit_on_error=False)
    async def reload(self) -> None:
        # Today's counts come from the per-minute counts the writer keeps: a few hundred rows.
        figures = await self.data.read(traffic, self.clock())
        self._show(figures)

    def _show(self, figures: Traffic) -> None:
        if figures == self.latest:
            return
        self.latest = figures
        self.query_one(Sparkline).data = figures.per_minute
        self._draw_counts()

    def on_resize(self) -> None:
        self._draw_counts()

    def _draw_counts(self) -> None:
        figures = self.latest
        counts = self.query_one("#traffic-counts", Static)
        if figures is None or not counts.content_size.width:
            return
        # Each action's colour made to read here, and never red, the colour of errors (tui/contrast.py).
        counts.update(readable_text(counts_text(figures.today_by_action, figures.per_minute, no_color=self.app.no_color,
                                                width=counts.content_size.width), counts))
