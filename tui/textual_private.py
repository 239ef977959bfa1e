"""Every use of a private Textual API, in one place, each with why there is no public one.

Textual is pinned to a tested range in pyproject.toml; tests/unit/test_textual_private.py fails,
naming the attribute, when a Textual release renames or changes any of these.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual.app import App
from textual.screen import Screen


def mark_styled_already(screen: Screen, app: App[Any]) -> None:
    """Tell Textual a screen without CSS of its own needs no stylesheet refresh.

    Textual re-parses every stylesheet and restyles the app when a mode's first screen is made,
    in case the screen brought CSS; `_css_update_count` is its record of which stylesheet a
    screen has seen. No public switch exists (bench/startup.py measures what this saves).
    """
    screen._css_update_count = app._css_update_count


def notification_texts(app: App[Any]) -> list[str]:
    """The texts of the notifications on screen (tests: Textual has no public list of them)."""
    return [str(notification.message) for notification in app._notifications]


def screen_lines(screen: Screen) -> list[str]:
    """The screen as drawn, one string per line (tests and bench: what the terminal shows)."""
    return [strip.text for strip in screen._compositor.render_strips()]


def screen_segments(screen: Screen) -> list[list[Segment]]:
    """The screen as drawn, one list of styled segments per line, after the app's filters
    (tests: the colours and attributes the terminal is sent, e.g. to measure contrast)."""
    return [list(strip) for strip in screen._compositor.render_strips()]


def screen_update(screen: Screen) -> list[Segment]:
    """Everything a full repaint sends, as renderable update (tests: escape codes checked inert)."""
    return screen._compositor.render_update(full=True)


def app_keymap(app: App[Any]) -> dict[str, str]:
    """The keymap in force (binding id -> keys, long key names), as `App.set_keymap` stored it.

    Textual applies it only while building a screen's binding chain; a hint naming the key of a
    binding that is not in the focused chain (the log's `l` while the filter has focus) has no
    public way to learn it."""
    return dict(app._keymap)
