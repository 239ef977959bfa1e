"""What the TUI writes to a real terminal while every screen shows hostile text (tmux at 80x24).

A credential stored before control characters were refused (or edited in the database by hand)
holds OSC 52 (a clipboard write of `rm -rf ~`), OSC 0 (the window title) and a screen clear in its
messages, a keyword and its name; inbound messages and a sender hold the same. The test reads the
bytes the TUI writes to the pane (`tmux pipe-pane`), not what the widgets hold: none of those
sequences may reach the terminal raw, on the credentials list, the edit form (every field
focused in turn), the log, a message's detail, profiles, a profile's ledger, the tester and the
review queue. tmux's own clipboard must stay empty and the pane's title unchanged.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.inbound import InboundMessage
from tests.support.cli import SCRIPT
from tests.support.store import store_directly

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # base64 of "rm -rf ~"
TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J"
HOSTILE = f"hi {CLIPBOARD}{TITLE}{CLEAR} there"
RAW = (b"\x1b]52", b"\x1b]0;owned", b"cm0gLXJmIH4=\x07", b"owned\x07")
SHOP = "+447491163443"


def hostile_db(path: Path) -> Path:
    make_db(path, shop_credential(fuzzy_opt_out="review", default_reply_message="Thanks"))
    store_directly(path, [
        InboundMessage("h-1", "+41793026727", SHOP, HOSTILE, "2026-12-01T10:00:00.000+00:00"),
        InboundMessage("h-2", f"EVIL{TITLE}", SHOP, "START", "2026-12-01T10:00:01.000+00:00"),
        # a near miss: the review queue shows its (hostile) credential
        InboundMessage("h-3", "+41793026728", SHOP, "stpo", "2026-12-01T10:00:02.000+00:00"),
    ])
    conn = sqlite3.connect(path)
    with conn:  # what an old database (or a hand edit) may hold: written around the model's checks
        conn.execute("UPDATE credentials SET name = ?, help_message = ?, opt_out_message = ?, help_keywords = ?, "
                     "callback_data = ?", (f"Shop{TITLE}", HOSTILE, f"line one\n{HOSTILE}",
                                           json.dumps(["HELP", f"INFO{CLIPBOARD}"]), f"cb{CLEAR}"))
    conn.close()
    return path


def tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


@pytest.mark.timeout(180)
def test_no_hostile_sequence_reaches_the_terminal_from_any_screen(tmp_path: Path) -> None:
    db = hostile_db(tmp_path / "smsdesk.db")
    written = tmp_path / "pane.bytes"
    session = f"smsdesk-hostile-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "tui.toml"
    config.write_text("")
    socket = f"-L{session}"  # a tmux server of its own: its clipboard and options are this test's
    subprocess.run(["tmux", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"env SMSDESK_CONFIG={config} {SCRIPT} --db {db}"], check=True, timeout=10)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return tmux(socket, *args)

    try:
        run("set-option", "-g", "set-clipboard", "on")
        run("pipe-pane", "-t", session, "-o", f"cat >> {written}")
        _drive(session, run)
    finally:
        run("kill-server")
    data = written.read_bytes()
    assert len(data) > 10_000, "the pane wrote almost nothing: the TUI did not run"
    for raw in RAW:
        assert raw not in data, f"{raw!r} reached the terminal raw"


def _drive(session: str, run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    def screen() -> str:
        return run("capture-pane", "-t", session, "-p").stdout

    def until(predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + 20
        shown = ""
        while time.monotonic() < deadline:
            shown = screen()
            if predicate(shown):
                return shown
            time.sleep(0.2)
        raise AssertionError(f"waited for {what}; the screen shows:\n{shown}")

    def press(*names: str) -> None:
        for name in names:
            run("send-keys", "-t", session, name)
            time.sleep(0.3)

    shown = until(lambda s: "Shop\\x1b]0;o" in s, "the credentials list, name shown inert")
    assert "Credentials" in shown
    press("e")
    until(lambda s: "Connection" in s and "F2" in s, "the edit form")
    press(*["Tab"] * 34)  # every field focused in turn, the editors drawn with their text
    press("Escape")
    until(lambda s: "Connection" not in s, "the form closed")
    press("2")
    until(lambda s: "\\x1b]52;c;" in s or "\\x1b]0;owned" in s, "the log, texts shown inert")
    press("Enter")
    until(lambda s: "Rule" in s, "a message's detail")
    press("Escape", "3")
    until(lambda s: "profiles" in s, "profiles")
    press("Enter")
    until(lambda s: "Consent ledger" in s, "a profile's ledger")
    press("Escape", "4")
    until(lambda s: "tester" in s.lower(), "the keyword tester")
    press("Escape", "5")  # the tester's text box takes digits as text until Esc leaves it
    until(lambda s: "stpo" in s, "the review queue, the near miss shown")
    assert run("display-message", "-p", "-t", session, "#{pane_title}").stdout.strip() != "owned"
    assert run("list-buffers").stdout.strip() == "", "the TUI wrote tmux's clipboard"
    press("q")
