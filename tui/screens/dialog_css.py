"""Where the dialogs' CSS lives: screens set `CSS_PATH = DIALOG_CSS`.

Kept out of app.tcss so the credentials list, the first screen, does not match ~60 form rules
against its widgets at startup; Textual loads a screen's CSS_PATH the first time it is shown.
"""

from __future__ import annotations

from pathlib import Path

DIALOG_CSS = Path(__file__).resolve().parent.parent / "dialogs.tcss"
