"""One way of working (issue 27, point 4): number keys switch views everywhere (typing in a field
aside, with Esc shown as the way out), the command palette offers every binding of the current
screen by name, the review queue has `/`, a keyword list is never replaced by accident (no select
all on focus, Ctrl+Z undoes), and a save that drops STOP asks first; F1 names the database. The real
app at 80x24 on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from smsdesk.simulator.sample_data import club_credential, make_db, shop_credential
from smsdesk.store.credentials import get_credential
from smsdesk.store.db import connect
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.commands import screen_commands
from smsdesk.tui.screens.confirm import ConfirmScreen
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.help import HelpScreen
from smsdesk.tui.screens.profiles import ProfilesScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.widgets.list_input import ListInput
from tests.support.live import inbound, screen_lines, screen_text, seed_db, store, wait_until
from tests.support.tui import ready, select_row

SIZE = (80, 24)
SHOP = "+447491163443"


@pytest.fixture
def review_db(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"), club_credential())
    store(path,
          inbound("+41793026727", SHOP, "please stop texting me", "2025-01-15T09:05:00.000+00:00", "r-1"),
          inbound("+41793026728", SHOP, "STPO", "2025-01-15T08:30:00.000+00:00", "r-2"),
          inbound("+41793026729", SHOP, "remove me", "2025-01-15T10:00:00.000+00:00", "r-3"))
    return path


async def test_digits_are_text_while_typing_and_esc_shown_as_the_way_out(tmp_path: Path) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), initial_mode="tester")
    async with app.run_test(size=SIZE) as pilot:
        text = app.screen.query_one("#tester-text", Input)
        await wait_until(pilot, lambda: app.focused is text, what="the text box focused")
        await pilot.press("3")
        assert app.current_mode == "tester" and text.value == "3"
        assert "esc Leave text" in screen_lines(pilot)[-1]
        await pilot.press("escape", "3")
        await wait_until(pilot, lambda: app.current_mode == "profiles", what="3 switches once out of the field")
        await pilot.press("/", *"12")  # the filter line takes digits too, Esc leaves it
        assert app.current_mode == "profiles" and app.screen.query_one("#profiles-filter", Input).value == "12"
        await wait_until(pilot, lambda: "esc Clear filter" in screen_lines(pilot)[-1], what="Esc shown as the way out")
        await pilot.press("escape", "5")
        await wait_until(pilot, lambda: app.current_mode == "review", what="5 switches after Esc")


async def test_the_palette_offers_every_binding_of_the_current_screen_by_name(tmp_path: Path) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        log_titles = [c.title for c in screen_commands(app.screen)]
        assert {"Export the log", "Sort oldest/newest first", "Filter", "Copy number"} <= set(log_titles)
        assert any(title.startswith("Live") for title in log_titles)  # the focused log's own binding
        await pilot.press("3")
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) >= 2, what="profiles")
        titles = [c.title for c in screen_commands(profiles)]
        assert {"Sort", "Export the consent history", "Opt out", "Filter", "Help", "Quit"} <= set(titles)
        before = profiles.sort_column
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
        await pilot.press(*"sort")
        await wait_until(pilot, lambda: "Sort" in screen_text(pilot) and "key s" in screen_text(pilot),
                         what="the Sort hit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: profiles.sort_column != before, what="sorted from the palette")
        await pilot.press("5")
        await pilot.pause(0.2)
        assert "Filter the review queue" in [c.title for c in screen_commands(app.screen)]


async def test_review_has_a_filter_with_the_parser_of_the_other_lists(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="review")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, what="three near misses")
        assert "esc" not in screen_lines(pilot)[-1]  # no filter, nothing to leave
        await pilot.press("/", *"stop")
        assert "esc Clear filter" in screen_lines(pilot)[-1]
        await wait_until(pilot, lambda: [i.text for i in screen.items] == ["please stop texting me"],
                         what="filtered by a word")
        await pilot.press("enter")
        assert "1 match stop" in screen_text(pilot)
        await pilot.press("escape", "/", *"num:6728")
        await wait_until(pilot, lambda: [i.text for i in screen.items] == ["STPO"], what="filtered by number")
        await pilot.press(*" cred:shop sandbox:prod")
        await wait_until(pilot, lambda: [i.text for i in screen.items] == ["STPO"], what="keys combined")
        await pilot.press(*" flavour:x")
        await wait_until(pilot, lambda: "unknown filter 'flavour'" in screen_text(pilot), what="the error, named")
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.row_count == 3, what="Esc clears")
        await pilot.press("o")  # a decision still acts on the highlighted item and asks first
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked first")


async def _open_shop_form(pilot: Pilot[None]) -> CredentialEditScreen:
    select_row(await ready(pilot), "Shop")
    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, CredentialEditScreen), what="form")
    await pilot.pause()
    return pilot.app.screen


async def test_a_keyword_list_is_never_replaced_by_accident_and_ctrl_z_undoes(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="credentials")
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_shop_form(pilot)
        help_list = form.query_one("#f-help_keywords", ListInput)
        before = help_list.value
        form.query_one("#f-opt_out_message").focus()
        await pilot.press("tab")  # Tab into the next list, as an operator would
        await wait_until(pilot, lambda: app.focused is help_list, what="the help list focused")
        assert help_list.selected_text == ""  # nothing selected: one key cannot replace the list
        await pilot.press("x")
        assert help_list.value == before + "x"
        help_list.value = ""  # the whole list gone (a select-all and a key, a cut)
        await pilot.pause()
        await pilot.press("ctrl+z")
        assert help_list.value == before + "x"
        await pilot.press("ctrl+z")
        assert help_list.value == before
        await pilot.press("ctrl+y")
        assert help_list.value == before + "x"


async def test_a_save_that_drops_stop_asks_first_and_the_status_says_so(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="credentials")
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_shop_form(pilot)
        opt_out = form.query_one("#f-opt_out_keywords", ListInput)
        assert "STOP" in opt_out.value
        opt_out.value = "UNSUBSCRIBE"
        await pilot.pause()
        status = str(form.query_one("#edit-status").render())
        assert "valid" not in status and "drops STOP from the opt-out list" in status
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked first")
        assert "drops STOP" in screen_text(pilot)
        await pilot.press("n")  # keep editing: nothing saved
        await wait_until(pilot, lambda: app.screen is form, what="back in the form")
        assert "STOP" in get_shop(review_db).opt_out_keywords
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked again")
        await pilot.press("y")
        await wait_until(pilot, lambda: not isinstance(app.screen, CredentialEditScreen | ConfirmScreen),
                         what="saved")
    assert get_shop(review_db).opt_out_keywords == ["UNSUBSCRIBE"]


async def test_a_save_that_keeps_stop_does_not_ask(review_db: Path) -> None:
    app = SmsDeskApp(review_db, initial_mode="credentials")
    async with app.run_test(size=SIZE) as pilot:
        form = await _open_shop_form(pilot)
        form.query_one("#f-opt_out_keywords", ListInput).value = "STOP, HALT"
        await pilot.pause()
        assert "valid" in str(form.query_one("#edit-status").render())
        await pilot.press("f2")
        await wait_until(pilot, lambda: not isinstance(app.screen, CredentialEditScreen), what="saved at once")
        assert not isinstance(app.screen, ConfirmScreen)
    assert get_shop(review_db).opt_out_keywords == ["STOP", "HALT"]


async def test_f1_names_the_database_and_the_line_for_the_cli(tmp_path: Path) -> None:
    db = seed_db(tmp_path / "smsdesk.db")
    app = SmsDeskApp(db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        help_screen = app.screen
        assert ("file", str(db.resolve())) in help_screen.notes
        assert ("the CLI", f"--db, or: export SMSDESK_DB={db.resolve()}") in help_screen.notes

        def scrolled_to_the_end() -> bool:
            help_screen.query_one("#help-body").scroll_end(animate=False)
            return "SMSDESK_DB=" in screen_text(pilot)

        await wait_until(pilot, scrolled_to_the_end, what="the end of the help")


def get_shop(path: Path):
    db = connect(path)
    try:
        return get_credential(db, "Shop")
    finally:
        db.close()


async def test_digits_switch_views_from_a_dialog_that_only_shows_and_not_from_a_form(tmp_path: Path) -> None:
    """A message's detail is a dialog that shows: a digit switches views from it, and the detail
    is still there when the log is shown again. The credential form keeps its digits."""
    from smsdesk.tui.screens.message_detail import MessageDetailScreen

    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "hello" in screen_text(pilot).lower() or "STOP" in screen_text(pilot),
                         what="the log's rows")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageDetailScreen), what="the detail")
        await pilot.press("3")
        await wait_until(pilot, lambda: app.current_mode == "profiles", what="3 switches from the detail")
        await pilot.press("2")
        await wait_until(pilot, lambda: app.current_mode == "log", what="2 back to the log")
        assert isinstance(app.screen, MessageDetailScreen)  # the detail held its place
        await pilot.press("escape", "1", "n")
        await wait_until(pilot, lambda: isinstance(app.screen, CredentialEditScreen), what="the new-credential form")
        await pilot.press("3")
        await pilot.pause()
        assert app.current_mode == "credentials" and isinstance(app.screen, CredentialEditScreen)


@pytest.mark.parametrize(("mode", "ready_text"), [("log", "LIVE"), ("credentials", "Shop")])
async def test_the_log_and_credentials_filter_lines_show_esc_as_the_way_out(
        tmp_path: Path, mode: str, ready_text: str) -> None:
    app = SmsDeskApp(seed_db(tmp_path / "smsdesk.db"), initial_mode=mode)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: ready_text in screen_text(pilot), what=f"the {mode} view")
        assert "Clear filter" not in screen_lines(pilot)[-1]
        await pilot.press("/", *"12")
        await wait_until(pilot, lambda: "esc Clear filter" in screen_lines(pilot)[-1], what="Esc shown while typing")
        await pilot.press("escape")
        await wait_until(pilot, lambda: "Clear filter" not in screen_lines(pilot)[-1], what="gone with the filter")
