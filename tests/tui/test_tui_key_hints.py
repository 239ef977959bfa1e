"""Every hint follows the keymap, and a dialog shows its own keys (issue 27, point 4).

Each test remaps a key in the settings' keymap (binding id -> key) and reads what the screen
says: the status line, the tab line, a dialog's buttons and key bar, F1's notes, the palette. A
grep of the TUI's source keeps key names out of hint strings.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from textual.widgets import Button

import smsdesk.tui
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.confirm import ConfirmScreen
from smsdesk.tui.screens.help import HelpScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.opt_out import OptOutScreen
from tests.support.live import screen_lines, screen_text, seed_db, wait_until


def status_of(app: SmsDeskApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def test_the_log_status_names_the_remapped_live_and_sort_keys(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, initial_mode="log", poll_seconds=30, keymap={"log.live": "L", "log.sort": "O"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded and "LIVE" in status_of(app, "#log-status"),
                         what="log")
        await pilot.press("down")
        await wait_until(pilot, lambda: "PAUSED" in status_of(app, "#log-status"), what="paused")
        assert "(L: back to live)" in status_of(app, "#log-status")
        assert "l: back" not in screen_text(pilot)
        await pilot.press("L")  # the remapped key does what the hint says
        await wait_until(pilot, lambda: "LIVE" in status_of(app, "#log-status"), what="live again")
        await pilot.press("O")
        await wait_until(pilot, lambda: "OLDEST FIRST" in status_of(app, "#log-status"), what="oldest first")
        assert "(O: newest first)" in status_of(app, "#log-status")


async def test_the_tab_line_and_the_credentials_status_follow_the_keymap(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, poll_seconds=30, keymap={"app.view.log": "9", "credentials.reveal": "R"})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        tabs = screen_lines(pilot)[0]
        assert "9 Inbound log" in tabs and "2 Inbound log" not in tabs
        assert "keys masked (R reveals)" in screen_text(pilot)
        await pilot.press("R")
        await wait_until(pilot, lambda: "keys REVEALED (R hides)" in screen_text(pilot), what="revealed")


async def test_help_notes_name_the_remapped_keys(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, initial_mode="log", poll_seconds=30, keymap={"log.filter": "f", "app.help": "f3"})
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.pause()
        text = screen_text(pilot)
        assert "Filter (f)" in text and "Filter (/)" not in text


async def test_a_confirmation_shows_its_own_keys_and_names_the_remapped_ones(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, poll_seconds=30, keymap={"confirm.yes": "j"})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="credentials")
        list_bar = screen_lines(pilot)[-1]
        assert "Delete" in list_bar
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.pause()
        bar = screen_lines(pilot)[-1]
        assert "Yes" in bar and "No" in bar, bar
        assert not {"Delete", "Verify", "Filter", "Edit"} & set(bar.split()), f"the list's keys behind: {bar}"
        labels = {str(b.label) for b in app.screen.query(Button).results(Button)}
        assert "Delete (j)" in labels and "Cancel (n)" in labels, labels
        await pilot.press("y")  # no longer the key: nothing deleted
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")


async def test_the_opt_out_dialog_shows_its_own_keys(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, initial_mode="profiles", poll_seconds=30, keymap={"opt_out.confirm": "f9"})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one("DataTable").row_count > 0, what="profiles")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, OptOutScreen), what="the opt-out dialog")
        await pilot.pause()
        bar = screen_lines(pilot)[-1]
        assert "Opt out" in bar and "Cancel" in bar, bar
        assert "Sort" not in bar and "Copy number" not in bar, f"the list's keys behind: {bar}"
        labels = {str(b.label) for b in app.screen.query(Button).results(Button)}
        assert {"Opt out (F9)", "Cancel (esc)"} <= labels, labels


async def test_the_palette_names_the_remapped_view_keys(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, poll_seconds=30, keymap={"app.view.review": "0"})
    async with app.run_test(size=(80, 24)):
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Go to Review"].endswith("(0)"), commands["Go to Review"]


# A key named in a string shown to the operator: "(l: back", "F2 saves", "Esc goes", "(r)".
HARD_CODED_KEY = re.compile(r"\((?:[a-zA-Z/]|F\d+|f\d+|[Ee]sc)[:)]|\b(?:F\d+|[Ee]sc)\b (?:saves|goes|reloads|clears"
                            r"|discards|to)|\b[a-zA-Z/]: (?:back|newest|clear)|\b(?:Save|Send|Copy) F\d")


CONSENT_VALUE = re.compile(r"(opted in|opted out|pending) \([ynp]\)")  # a stored value, not a key


def test_no_hint_string_in_the_tui_names_a_key_itself() -> None:
    root = Path(smsdesk.tui.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and HARD_CODED_KEY.search(node.value) and not CONSENT_VALUE.fullmatch(node.value):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    assert not found, "name keys with {key:BINDING_ID} (tui/key_hints.py):\n" + "\n".join(found)
