"""What reaches a real terminal under NO_COLOR is readable (issue 27): tmux at 80x24, a 256-colour
TERM, `NO_COLOR=1`, the credential form with a field error.

The pane is read back with its attributes (`capture-pane -e`: the colours tmux stored for each
cell, as the TUI sent them) and the error line's characters are measured: the WCAG contrast of
each drawn foreground on its background (256-colour indexes by the xterm palette) must reach
4.5:1. Before issue 27 the error read grey 237 on grey 235 (1.2:1).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.tui.contrast import contrast
from tests.support.cli import SCRIPT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

RGB = tuple[int, int, int]
SGR = re.compile(r"\x1b\[([0-9;:]*)m")
BASE16: tuple[RGB, ...] = ((0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205),
                           (0, 205, 205), (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0),
                           (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255))
DEFAULT_FG, DEFAULT_BG = BASE16[7], BASE16[0]  # xterm's defaults: what an unset colour is drawn in


def xterm_256(index: int) -> RGB:
    if index < 16:
        return BASE16[index]
    if index < 232:
        steps = (0, 95, 135, 175, 215, 255)
        n = index - 16
        return steps[n // 36], steps[n // 6 % 6], steps[n % 6]
    grey = 8 + (index - 232) * 10
    return grey, grey, grey


def screen_cells(screen: str) -> list[list[tuple[str, RGB, RGB]]]:
    """(character, foreground, background) as drawn, line by line, from `capture-pane -e` (whose
    attributes carry on from one line to the next)."""
    fg: RGB | None = None
    bg: RGB | None = None
    reverse = False
    lines: list[list[tuple[str, RGB, RGB]]] = [[]]
    pos = 0
    for match in [*SGR.finditer(screen), None]:
        end = match.start() if match else len(screen)
        for ch in screen[pos:end]:
            if ch == "\n":
                lines.append([])
                continue
            f, b = fg or DEFAULT_FG, bg or DEFAULT_BG
            lines[-1].append((ch, *((b, f) if reverse else (f, b))))
        if match is None:
            break
        pos = match.end()
        codes = [int(c or 0) for c in re.split("[;:]", match.group(1) or "0")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code == 0:
                fg = bg = None
                reverse = False
            elif code == 7:
                reverse = True
            elif code == 27:
                reverse = False
            elif 30 <= code <= 37 or 90 <= code <= 97:
                fg = BASE16[code - 30 if code < 90 else code - 82]
            elif 40 <= code <= 47 or 100 <= code <= 107:
                bg = BASE16[code - 40 if code < 100 else code - 92]
            elif code == 39:
                fg = None
            elif code == 49:
                bg = None
            elif code in (38, 48):
                if codes[i + 1] == 5:
                    colour = xterm_256(codes[i + 2])
                    i += 2
                else:
                    colour = (codes[i + 2], codes[i + 3], codes[i + 4])
                    i += 4
                if code == 38:
                    fg = colour
                else:
                    bg = colour
            i += 1
    return lines


def tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


@pytest.mark.timeout(120)
def test_a_field_error_reads_at_4_5_to_1_in_a_real_terminal_under_no_color(tmp_path: Path) -> None:
    db = make_db(tmp_path / "smsdesk.db", shop_credential())
    config = tmp_path / "tui.toml"
    config.write_text("")
    session = f"smsdesk-readable-{uuid.uuid4().hex[:8]}"
    socket = f"-L{session}"
    command = (f"env -u COLORTERM TERM=xterm-256color NO_COLOR=1 SMSDESK_CONFIG={config} "
               f"{SCRIPT} --db {db}")
    subprocess.run(["tmux", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    command], check=True, timeout=10)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return tmux(socket, *args)

    try:
        screen = _error_screen(session, run)
    finally:
        run("kill-server")
    line = next(cells for cells in screen_cells(screen) if "✗" in "".join(ch for ch, *_ in cells))
    # The error's words: between the form's border lines.
    measured = [(ch, fg, bg, contrast(fg, bg)) for ch, fg, bg in line if not ch.isspace() and ch not in "│▊▎"]
    text = "".join(ch for ch, *_ in measured)
    assert text.startswith("✗") and "http" in text, text
    worst = min(measured, key=lambda m: m[3])
    assert worst[3] >= 4.5, f"{worst[0]!r} drawn {worst[1]} on {worst[2]}: {worst[3]:.2f}:1 in {text!r}"


def _error_screen(session: str, run: Callable[..., subprocess.CompletedProcess[str]]) -> str:
    def until(predicate: Callable[[str], bool], what: str, *, escapes: bool = False) -> str:
        deadline = time.monotonic() + 20
        shown = ""
        while time.monotonic() < deadline:
            shown = run("capture-pane", "-t", session, "-p", *(["-e"] if escapes else [])).stdout
            if predicate(shown):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"waited for {what}; the screen shows:\n{shown}")

    def press(*names: str) -> None:
        for name in names:
            run("send-keys", "-t", session, name)
            time.sleep(0.3)

    until(lambda s: "Shop" in s and "Credentials" in s, "the credentials list")
    press("e")
    until(lambda s: "Connection" in s, "the edit form")
    press("Tab", "Tab", "Tab")  # to the base URL
    until(lambda s: "https://x.api.infobip.com" in s, "the base URL")
    press("End", *["BSpace"] * 40)
    run("send-keys", "-t", session, "-l", "http://plain.example.com")
    time.sleep(0.5)
    return until(lambda s: "✗" in SGR.sub("", s), "a field error", escapes=True)
