"""On a 16-colour terminal the TUI draws with an ANSI theme (issue 27).

An RGB theme on a terminal of 16 colours (TERM=xterm or screen without COLORTERM: tmux's and many
SSH sessions' default) is drawn with each colour the nearest of the 16: orange opt-outs turn bright
red, the colour of errors, and measured errors, dialogs and cursor rows fell to 1.5:1. The ANSI
themes are made for those colours (tests/tui/test_tui_contrast_states.py measures both), so
there the app uses ansi-dark, or ansi-light for a light theme. `TEXTUAL_COLOR_SYSTEM` forces
the choice either way, as it does for Textual.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

from rich.console import Console
from textual.theme import BUILTIN_THEMES

SIXTEEN = frozenset({"standard", "windows"})


def sixteen_colours(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Textual will draw in 16 colours in this environment (Rich's detection)."""
    forced = environ.get("TEXTUAL_COLOR_SYSTEM", "auto")
    if forced != "auto":
        return forced in SIXTEEN
    console = Console(file=io.StringIO(), force_terminal=True, _environ=dict(environ))
    return console.color_system in SIXTEEN


def theme_for_terminal(theme: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The theme to draw with: `theme` (None: Textual's default), or its ANSI counterpart on 16 colours."""
    if not sixteen_colours(environ):
        return theme
    chosen = BUILTIN_THEMES.get(theme or "textual-dark")
    if chosen is not None and chosen.ansi:
        return theme
    return "ansi-light" if chosen is not None and not chosen.dark else "ansi-dark"
