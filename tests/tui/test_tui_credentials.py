"""The credentials manager driven through the real app (Pilot) on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Button, Input, Static, TextArea

from smsdesk.domain.credential import Credential, StoredCredential
from smsdesk.store.credentials import create_credential, get_credential, update_credential
from smsdesk.store.db import connect
from smsdesk.tui.commands import TITLES, CredentialCommands
from smsdesk.tui.screens.confirm import ConfirmScreen
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.credentials import CredentialsScreen
from smsdesk.tui.screens.duplicate import DuplicateScreen
from smsdesk.tui.screens.help import HelpScreen
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from tests.support.live import screen_text, wait_until
from tests.support.store import give_legacy_name
from tests.support.tui import SIZE, make_app, names, note, ready, select_row, settle, stored, table_text


async def test_list_shows_masked_keys_only(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        rows = table_text(screen)
        assert [r[0] for r in rows] == ["Clinic remin…", "Shop UK", "Shop UK stag…"]
        by_sandbox = {r[1]: r for r in rows}
        assert by_sandbox["prod"][2] == "xyz1.api.infob…"
        assert by_sandbox["prod"][3] == "••••a1b2"
        assert by_sandbox["prod"][4] == "+447491163443"
        assert by_sandbox["staging"][5] == "pull"
        assert by_sandbox["staging"][6] == "24h"
        flat = " ".join(" ".join(r) for r in rows)
        for cred in sample_credentials:
            assert cred.api_key not in flat


async def test_reveal_toggles_full_keys(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("r")
        keys = {r[1]: r[3] for r in table_text(screen)}
        assert keys["prod"] == "0123456789abcdef0123456789a1b2"
        assert "REVEALED" in str(screen.query_one("#cred-status", Static).render())
        await pilot.press("r")
        assert {r[1]: r[3] for r in table_text(screen)}["prod"] == "••••a1b2"


async def test_filter_shows_matches_and_escape_clears(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("slash")
        box = screen.query_one("#cred-filter", Input)
        assert box.has_focus and box.display
        await pilot.press(*"staging")
        assert names(screen) == ["Shop UK staging"]
        box.value = "447491163443"  # matches the inbound number too
        await pilot.pause()
        assert [r[1] for r in table_text(screen)] == ["prod"]
        box.value = "a1b2"  # never matches on the API key
        await pilot.pause()
        assert table_text(screen) == []
        await pilot.press("escape")
        assert len(table_text(screen)) == 3
        assert not box.display
        assert screen.query_one(CredentialsTable).has_focus


async def test_create_credential(db_path: Path) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        assert screen.query_one("#cred-empty").display
        await pilot.press("n")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        assert form.query_one("#f-name", Input).has_focus
        await pilot.press(*"Promo")
        # Errors of untouched fields stay quiet in a new form; saving is blocked all the same.
        assert note(form, "base_url") == ""
        assert form.query_one("#edit-save", Button).disabled
        await pilot.press("f2")
        assert pilot.app.screen is form
        assert "required" in note(form, "base_url").lower() or note(form, "base_url")
        form.query_one("#f-base_url", Input).value = "promo.api.infobip.com"
        form.query_one("#f-api_key", Input).value = "secretsecret1234"
        form.query_one("#f-inbound_number", Input).value = "+44 7491 163445"
        await pilot.pause()
        assert not form.query_one("#edit-save", Button).disabled
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is screen
        await wait_until(pilot, lambda: "Promo" in names(screen))
        [cred] = stored(db_path)
        assert cred.name == "Promo"
        assert cred.base_url == "https://promo.api.infobip.com"
        assert cred.inbound_number == "+447491163445"
        assert cred.opt_out_keywords[0] == "STOP"  # defaults kept
        selected = screen.query_one(CredentialsTable).selected
        assert selected is not None and selected.id == cred.id


async def test_edit_with_invalid_field_then_fix(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("e")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        url = form.query_one("#f-base_url", Input)
        url.value = "https://xyz1.api.infobip.com/sms/2/text"
        form.query_one("#f-validity_period_hours", Input).value = "72"
        await pilot.pause()
        assert "host only" in note(form, "base_url")
        assert note(form, "validity_period_hours")
        assert form.query_one("#edit-save", Button).disabled
        assert "2 fields need attention" in str(form.query_one("#edit-status", Static).render())
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is form  # blocked
        url.value = "https://xyz9.api.infobip.com"
        form.query_one("#f-validity_period_hours", Input).value = "12"
        await pilot.pause()
        assert note(form, "base_url") == ""
        assert "valid" in str(form.query_one("#edit-status", Static).render())
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is screen
        db = connect(db_path)
        cred = get_credential(db, "Shop UK")
        db.close()
        assert cred.base_url == "https://xyz9.api.infobip.com"
        assert cred.validity_period_hours == 12
        assert cred.version == 2


async def test_reply_messages_show_live_part_counts(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("enter")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        assert note(form, "opt_out_message").endswith("GSM-7, 1 SMS part")
        form.query_one("#f-help_message", TextArea).text = "Help: reply STOP to end ✓" + "x" * 60
        await pilot.pause()
        assert "UCS-2, 2 SMS parts" in note(form, "help_message")
        form.query_one("#f-double_opt_in_keywords", Input).value = "CONFIRM"
        await pilot.pause()
        assert note(form, "double_opt_in_message").startswith("! double opt-in keywords set")
        form.query_one("#f-inbound_keywords", Input).value = "DISCOUNT, stop"
        await pilot.pause()
        assert "opt_out_keywords and inbound_keywords" in note(form, "inbound_keywords")


async def test_escape_asks_before_discarding_edits(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        await pilot.press("e")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-sender", Input).value = "NewSender"
        await pilot.pause()
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")  # keep editing
        assert pilot.app.screen is form
        assert form.query_one("#f-sender", Input).value == "NewSender"
        await pilot.press("escape", "y")
        await settle(pilot)
        assert pilot.app.screen is screen
        assert [c.sender for c in stored(db_path) if c.name == "Clinic reminders"] == ["Clinic"]


async def test_api_key_is_a_password_field_with_toggle(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("e")
        form = pilot.app.screen
        key = form.query_one("#f-api_key", Input)
        assert key.password
        await pilot.press("f3")
        assert not key.password
        await pilot.press("f3")
        assert key.password


async def test_delete_cancel_keeps_and_confirm_deletes(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("d")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert pilot.app.screen is screen
        assert len(stored(db_path)) == 3
        await pilot.press("d")
        await pilot.press("enter")  # focus starts on Cancel: Enter is the safe answer
        await settle(pilot)
        assert len(stored(db_path)) == 3
        await pilot.press("d", "y")
        await settle(pilot)
        await wait_until(pilot, lambda: len(table_text(screen)) == 2)
        assert "Shop UK" not in [c.name for c in stored(db_path)]


async def test_duplicate_into_another_sandbox(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("c")
        dialog = pilot.app.screen
        assert isinstance(dialog, DuplicateScreen)
        assert dialog.query_one("#d-name", Input).value == "Shop UK copy"
        # The inbound number is taken: the store's duplicate error lands next to the field.
        dialog.query_one("#d-sandbox", Input).value = "eu-test"
        dialog.query_one("#d-inbound_number", Input).value = "+447491163443"
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is dialog
        message = dialog.query_one("#dnote-inbound_number", Static)
        assert message.display and "already used" in str(message.render())
        dialog.query_one("#d-inbound_number", Input).value = "+447491163449"
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is screen
        copies = [c for c in stored(db_path) if c.sandbox == "eu-test"]
        assert [(c.name, c.inbound_number) for c in copies] == [("Shop UK copy", "+447491163449")]
        original = next(c for c in sample_credentials if c.name == "Shop UK")
        assert copies[0].api_key == original.api_key
        assert copies[0].opt_out_message == original.opt_out_message
        await wait_until(pilot, lambda: len(table_text(screen)) == 4)


async def test_change_by_another_connection_shows_up(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path, poll_seconds=0.1).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        other = connect(db_path)
        try:
            create_credential(other, Credential.model_validate(
                {"name": "Late", "sandbox": "dev", "base_url": "late.api.infobip.com", "api_key": "k" * 20}))
            await wait_until(pilot, lambda: "Late" in names(screen))
            shop = get_credential(other, "Shop UK")
            update_credential(other, shop.id, shop.model_copy(update={"validity_period_hours": 6}), shop.version)
            await wait_until(pilot, lambda: any(r[1] == "prod" and r[6] == "6h" for r in table_text(screen)))
        finally:
            other.close()


async def test_conflict_is_shown_in_the_form(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("e")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        other = connect(db_path)
        shop = get_credential(other, "Shop UK")
        update_credential(other, shop.id, shop.model_copy(update={"sender": "Other"}), shop.version)
        other.close()
        form.query_one("#f-sender", Input).value = "Mine"
        await pilot.pause()
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is form
        problem = form.query_one("#edit-problem", Static)
        assert problem.display
        assert "changed by someone else" in str(problem.render())
        db = connect(db_path)
        assert get_credential(db, "Shop UK").sender == "Other"
        db.close()

        # "Reload, keep my edits": their version underneath, the field I changed as I typed it.
        other = connect(db_path)
        shop = get_credential(other, "Shop UK")
        update_credential(other, shop.id, shop.model_copy(update={"validity_period_hours": 7}), shop.version)
        other.close()
        await pilot.press("f5")
        await settle(pilot)
        assert form.query_one("#f-sender", Input).value == "Mine"
        assert form.query_one("#f-validity_period_hours", Input).value == "7"  # theirs, untouched by me
        assert "your edits kept: Sender" in str(problem.render())
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is not form
        db = connect(db_path)
        saved = get_credential(db, "Shop UK")
        db.close()
        assert saved.sender == "Mine" and saved.validity_period_hours == 7 and saved.version == 4


async def test_duplicate_name_is_shown_next_to_the_field(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-name", Input).value = "shop uk"
        form.query_one("#f-base_url", Input).value = "a.api.infobip.com"
        form.query_one("#f-api_key", Input).value = "abcdefghijkl"
        await pilot.pause()
        await pilot.press("f2")
        await settle(pilot)
        assert pilot.app.screen is form
        assert "already exists" in note(form, "name")
        assert form.query_one("#edit-save", Button).disabled
        form.query_one("#f-name", Input).value = "Shop IE"
        await pilot.pause()
        assert note(form, "name") == ""
        await pilot.press("f2")
        await settle(pilot)
        assert not isinstance(pilot.app.screen, CredentialEditScreen)


async def test_help_screen_opens_on_f1_and_question_mark(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await ready(pilot)
        for key in ("f1", "question_mark"):
            await pilot.press(key)
            assert isinstance(pilot.app.screen, HelpScreen)
            keys = dict(pilot.app.screen.keys)
            assert keys["d"] == "Delete" and keys["F1"] == "Help"
            await pilot.press("escape")
            assert isinstance(pilot.app.screen, CredentialsScreen)


async def test_untrusted_names_render_inert(db_path: Path) -> None:
    db = connect(db_path)
    create_credential(db, Credential.model_validate(
        {"name": "[b]x", "base_url": "a.api.infobip.com", "api_key": "abcdefghijkl"}))
    db.close()
    give_legacy_name(db_path, "[b]x", "[b]x\x1b]0;owned")  # as stored before names were checked on input
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        [[name, *_]] = table_text(screen)
        assert name.startswith("[b]x\\x1b]0;")
        assert "\x1b" not in name


async def test_command_palette_lists_every_action(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        provider = CredentialCommands(screen)
        found = [hit.text async for hit in provider.discover()]
        # Every key of the screen by name, the credential actions under their longer titles.
        assert {title for binding_id, (title, _) in TITLES.items() if binding_id.startswith("credentials.")} \
            <= set(found)
        assert {"Sort", "Copy number", "Quit", "Help"} <= set(found)
        hits = [hit async for hit in provider.search("delete")]
        assert hits and hits[0].text == "Delete credential"
        hits[0].command()
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmScreen)


async def test_keys_can_be_remapped_by_binding_id(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path, keymap={"credentials.delete": "x"}).run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("d")
        assert isinstance(pilot.app.screen, CredentialsScreen)
        await pilot.press("x")
        assert isinstance(pilot.app.screen, ConfirmScreen)


async def test_q_quits_from_the_list_but_not_from_a_form(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    app = make_app(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("e")
        form = pilot.app.screen
        form.query_one("#edit-save", Button).focus()
        await pilot.press("q", "1")
        assert pilot.app.screen is form and app.is_running
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.parametrize("mode", ["log", "profiles", "tester"])
async def test_number_keys_switch_views(db_path: Path, sample_credentials: list[StoredCredential], mode: str) -> None:
    key = {"log": "2", "profiles": "3", "tester": "4"}[mode]
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(key)
        await pilot.pause()
        assert pilot.app.current_mode == mode
        if mode == "tester":
            # The tester focuses its text box, which (rightly) takes digits as text.
            pilot.app.action_view("credentials")
        else:
            await pilot.press("1")
        await pilot.pause()
        assert isinstance(pilot.app.screen, CredentialsScreen)


async def test_painted_rows_show_masked_keys_only(
    db_path: Path, sample_credentials: list[StoredCredential]
) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await ready(pilot)
        painted = screen_text(pilot)
        assert "Shop UK stag…" in painted and "••••a1b2" in painted and "+447491163444" in painted
        for cred in sample_credentials:
            assert cred.api_key not in painted
        await pilot.press("r")
        await pilot.pause()
        assert "0123456789abcdef0123456789a1b2" in screen_text(pilot)


async def test_long_list_builds_only_visible_rows_and_scrolls(db_path: Path) -> None:
    _seed_many(db_path, 300)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        table = screen.query_one(CredentialsTable)
        assert table.row_count == 300
        assert "+447491100000" in screen_text(pilot) and "+447491100299" not in screen_text(pilot)
        assert len(table._cells) < 40  # cells exist for the rows drawn, not for all 300
        await pilot.press("end")
        await pilot.pause()
        assert table.selected is not None and table.selected.name == "Cred 299"
        painted = screen_text(pilot)
        assert "+447491100299" in painted and "+447491100000" not in painted
        await pilot.press("pageup")
        await pilot.pause()
        assert table.cursor_row < 299
        assert f"+4474911{table.cursor_row:05d}" in screen_text(pilot)  # the cursor stays in view
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and "+447491100000" in screen_text(pilot)


def _seed_many(db_path: Path, count: int) -> None:
    from smsdesk.store.credentials import import_credentials

    db = connect(db_path)
    import_credentials(db, [{"name": f"Cred {i:03d}", "base_url": f"h{i}.api.infobip.com", "api_key": f"key-{i:08d}x",
                             "inbound_number": f"+4474911{i:05d}"} for i in range(count)])
    db.close()


def thumb_lines(table: CredentialsTable) -> list[int]:
    """The lines whose last (scrollbar) cell is drawn in the thumb's colour, read off the strips."""
    thumb = table.get_component_rich_style("credentials-table--scrollbar-thumb").bgcolor
    lines = []
    for y in range(table.size.height):
        last = list(table.render_line(y))[-1]
        assert last.text == " "
        if last.style is not None and last.style.bgcolor == thumb:
            lines.append(y)
    return lines


async def test_drawn_scrollbar_thumb_follows_the_list(db_path: Path) -> None:
    _seed_many(db_path, 300)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        table = screen.query_one(CredentialsTable)
        top = thumb_lines(table)
        assert top and top[0] == 0 and len(top) < table.size.height  # a small thumb at the top
        await pilot.press("end")
        await pilot.pause()
        bottom = thumb_lines(table)
        assert bottom[-1] == table.size.height - 1 and len(bottom) == len(top)
        # The rows never run under the scrollbar column.
        assert all(strip.cell_length == table.size.width for strip in map(table.render_line, range(5)))


async def test_no_thumb_when_every_row_fits(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        table = screen.query_one(CredentialsTable)
        assert thumb_lines(table) == []
        assert not table.allow_vertical_scroll


def wheel(widget: CredentialsTable, kind: type[events.MouseScrollDown | events.MouseScrollUp]) -> events.MouseEvent:
    """A wheel notch over the widget, as the terminal driver would post it (Pilot has no wheel)."""
    return kind(widget, 10, 5, 0, 1 if kind is events.MouseScrollDown else -1, 0, False, False, False,
                screen_x=10, screen_y=7)


async def test_mouse_wheel_and_track_clicks_scroll_the_list(db_path: Path) -> None:
    _seed_many(db_path, 300)
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        table = screen.query_one(CredentialsTable)
        assert table.allow_vertical_scroll  # overflow-y is hidden, yet the wheel must still work
        for _ in range(3):
            table.post_message(wheel(table, events.MouseScrollDown))
        await pilot.pause()
        assert table.scroll_offset.y > 0
        for _ in range(10):
            table.post_message(wheel(table, events.MouseScrollUp))
        await pilot.pause()
        assert table.scroll_offset.y == 0
        # A click on the track below the thumb pages down, as on a scrollbar.
        last_column = table.size.width - 1
        await pilot.click(CredentialsTable, offset=(last_column, table.size.height - 2))
        await pilot.pause()
        assert table.cursor_row > 10 and f"+4474911{table.cursor_row:05d}" in screen_text(pilot)
        await pilot.press("end")
        await pilot.pause()
        await pilot.click(CredentialsTable, offset=(last_column, 0))  # above the thumb: back up
        await pilot.pause()
        assert table.cursor_row < 299 and f"+4474911{table.cursor_row:05d}" in screen_text(pilot)


async def test_rows_are_in_the_first_frame(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    # The first read is awaited (briefly) before the first paint: no empty list flashes first.
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, CredentialsScreen) and screen.loaded
        assert "Shop UK" in screen_text(pilot)


@contextmanager
def locked_exclusively(db_path: Path, seconds: float) -> Iterator[None]:
    """Another connection holds the database for `seconds`, then lets go.

    WAL readers are not blocked by writers; a connection in exclusive locking mode (a backup
    tool, a sqlite3 shell with `PRAGMA locking_mode = EXCLUSIVE`) does block them.
    """
    import sqlite3
    import threading

    blocker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(seconds, blocker.close)
    release.start()
    try:
        yield
    finally:
        release.join()


async def test_first_screen_opens_when_the_database_is_locked(db_path: Path, sample_credentials: list) -> None:
    # Locked for longer than the first-read wait: the screen must open on "loading…" and fill in
    # once the lock goes, not hang the terminal.
    with locked_exclusively(db_path, 1.0):
        async with make_app(db_path).run_test(size=SIZE) as pilot:
            screen = pilot.app.screen
            assert isinstance(screen, CredentialsScreen) and not screen.loaded
            assert "loading" in screen_text(pilot)
            await wait_until(pilot, lambda: screen.loaded, seconds=10)
            await pilot.pause()
            assert "Shop UK" in screen_text(pilot)


async def test_unreadable_database_is_reported_then_recovers(db_path: Path, sample_credentials: list) -> None:
    # Locked past the 5 s busy timeout: the status line says so (no crash), polling retries.
    with locked_exclusively(db_path, 6.0):
        async with make_app(db_path, poll_seconds=0.2).run_test(size=SIZE) as pilot:
            screen = pilot.app.screen
            assert isinstance(screen, CredentialsScreen)
            await wait_until(pilot, lambda: "could not read the database" in screen_text(pilot), seconds=8)
            assert "database is locked" in screen_text(pilot)
            await wait_until(pilot, lambda: screen.loaded, seconds=10)
            await pilot.pause()
            assert "Shop UK" in screen_text(pilot)
            # The problem line goes once reads work again (it stays a few seconds to be read).
            await wait_until(pilot, lambda: "could not read" not in screen_text(pilot), seconds=6)
