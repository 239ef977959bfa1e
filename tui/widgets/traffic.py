"""The traffic strip: inbound per minute over the last hour and today's counts per action."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from smsdesk.store.db import connect
from smsdesk.store.queries import Traffic, traffic

ACTION_ORDER = ("opt-in", "opt-out", "help", "double-opt-in", "custom", "default", "unrouted")
SHORT = {"opt-in": "in", "opt-out": "out", "help": "help", "double-opt-in": "2x", "custom": "kw",
         "default": "def", "unrouted": "unr"}


def compact(count: int) -> str:
    """At most four cells: 987, 1.2k, 12k, 1.2M."""
    for limit, unit in ((1_000_000, "M"), (1_000, "k")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def counts_text(by_action: dict[str, int]) -> Text:
    # One line that fits beside the sparkline at 80 columns: "label:count", dim labels, so it
    # still reads with NO_COLOR. Wider than the strip, it is cut (nowrap), never wrapped over the
    # "last hour" line below it.
    text = Text("today", style="bold")
    for action in ACTION_ORDER:
        text.append(f" {SHORT[action]}:", style="dim")
        text.append(compact(by_action.get(action, 0)))
    return text


def system_clock() -> datetime:
    return datetime.now(UTC)


class TrafficStrip(Horizontal):
    DEFAULT_CSS = """
    TrafficStrip { height: 2; }
    TrafficStrip Sparkline { width: 30; height: 2; }
    TrafficStrip #traffic-counts { width: 1fr; height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, db_path: Path, *, refresh_seconds: float = 2.0,
                 clock: Callable[[], datetime] = system_clock) -> None:
        super().__init__()
        self.db_path = db_path
        self.refresh_seconds = refresh_seconds
        self.clock = clock  # "now" for the buckets and "today": injectable, so snapshots are stable
        self.latest: Traffic | None = None
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._queried_at = 0.0

    def compose(self) -> ComposeResult:
        yield Sparkline([0] * 60, summary_function=max, id="traffic-spark")
        yield Static("today …", id="traffic-counts")

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(self.refresh_seconds, self.reload)

    @work(thread=True, exclusive=True, group="traffic")
    def reload(self) -> None:
        # Query only when another process committed, or once a minute so the buckets slide:
        # today's counts scan today's rows, which an idle TUI must not do every two seconds.
        if self._conn is None:
            self._conn = connect(self.db_path).conn
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        now = time.monotonic()
        if version == self._version and now - self._queried_at < 60:
            return
        self._version, self._queried_at = version, now
        figures = traffic(self._conn, now=self.clock())
        self.app.call_from_thread(self._show, figures)

    def on_unmount(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _show(self, figures: Traffic) -> None:
        if figures == self.latest:
            return
        self.latest = figures
        self.query_one(Sparkline).data = figures.per_minute
        per_hour = sum(figures.per_minute)
        counts = counts_text(figures.today_by_action)
        counts.append(f"\nlast hour {per_hour}, peak {max(figures.per_minute)}/min", style="dim")
        self.query_one("#traffic-counts", Static).update(counts)
