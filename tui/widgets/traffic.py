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
from smsdesk.tui.vocabulary import ACTIONS, action_style
from smsdesk.tui.workers import ReportsWorkerErrors

# `review` is a display state, not a stored action: it is never counted.
ACTION_ORDER = tuple(a for a in ACTIONS if a != "review")
# Shown only when some arrived today (fuzzy opt-out is off unless a credential turns it on), so
# the last hour keeps its room on 80 columns.
ONLY_WHEN_SEEN = frozenset({"near-opt-out"})
FIRST_LINE = ACTIONS[:4]  # opt-in, opt-out, help, double-opt-in; the rest go on the second line


def compact(count: int) -> str:
    """At most four cells: 987, 1.2k, 12k, 1.2M."""
    for limit, unit in ((1_000_000, "M"), (1_000, "k")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def counts_text(by_action: dict[str, int], per_minute: list[int] | None = None, *, no_color: bool = False) -> Text:
    """Two lines: "today" and the counts per action, each word in its action's style, then the
    last hour. Wider than the strip, a line is cut (nowrap), never wrapped over the next."""
    text = Text("today", style="bold")
    for action in ACTION_ORDER:
        if action in ONLY_WHEN_SEEN and not by_action.get(action):
            continue
        text.append("\n" if action == ACTION_ORDER[len(FIRST_LINE)] else " ")
        text.append(action, style=action_style(action, no_color) or "")
        text.append(f" {compact(by_action.get(action, 0))} ")
    if per_minute is not None:
        text.append(f"· last hour {sum(per_minute)}, peak {max(per_minute, default=0)}/min")
    return text


def system_clock() -> datetime:
    return datetime.now(UTC)


class TrafficStrip(ReportsWorkerErrors, Horizontal):
    DEFAULT_CSS = """
    TrafficStrip { height: 2; }
    TrafficStrip Sparkline { width: 16; height: 2; }
    TrafficStrip #traffic-counts { width: 1fr; height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
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
        self.query_one("#traffic-counts", Static).update(
            counts_text(figures.today_by_action, figures.per_minute, no_color=self.app.no_color))
