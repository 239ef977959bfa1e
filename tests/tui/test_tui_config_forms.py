"""The user's settings file (theme, keymap) and the forms' wording and validation (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from textual.theme import BUILTIN_THEMES
from textual.widgets import Input, Static

from smsdesk.cli.main import cli
from smsdesk.domain.credential import StoredCredential
from smsdesk.tui.config import ConfigError, config_path, load_config
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.duplicate import DuplicateScreen
from smsdesk.tui.widgets.credential_form import cross_field_errors, plain
from tests.support.live import wait_until
from tests.support.tui import SIZE, make_app, note, ready, select_row, settle

# ---- settings file -------------------------------------------------------------------------------


def test_config_path_is_in_the_user_config_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SMSDESK_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "smsdesk" / "smsdesk.tui.toml"
    result = CliRunner().invoke(cli, ["config", "path"])
    assert result.exit_code == 0 and result.output.strip() == str(tmp_path / "smsdesk" / "smsdesk.tui.toml")


def test_the_documented_example_reads_back(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "example"])
    path = tmp_path / "smsdesk.tui.toml"
    path.write_text(result.output + '\n"credentials.delete" = "x"\n')
    found = load_config(path, themes={"textual-dark"})
    assert found.theme == "textual-dark" and found.keymap == {"credentials.delete": "x"}


@pytest.mark.parametrize(("text", "problem"), [
    ("theme = ", "not valid TOML"),
    ("colour = 'red'", "unknown setting 'colour'"),
    ("theme = 3", "theme must be a name"),
    ("theme = 'no-such-theme'", "unknown theme 'no-such-theme'"),
    ("keymap = 'x'", "[keymap] must be a table"),
    ("[keymap]\n'credentials.delete' = 1", "keymap 'credentials.delete' must be a key"),
])
def test_a_bad_settings_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                text: str, problem: str) -> None:
    path = tmp_path / "smsdesk.tui.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(path, themes=set(BUILTIN_THEMES))
    assert str(caught.value).startswith(str(path)) and problem in str(caught.value)
    # The `smsdesk` command (the TUI) refuses to start with one line naming the file and the problem.
    monkeypatch.setenv("SMSDESK_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "smsdesk.db")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"smsdesk: {caught.value}"]


@pytest.mark.parametrize(("keymap", "problem"), [
    ('"credentials.nuke" = "x"', "keymap 'credentials.nuke': no such binding id"),
    ('"credentials.delete" = "ctrl+foo"', "'ctrl+foo' is not a key name Textual knows"),
    ('"credentials.delete" = "hyper+"', "'hyper+' is not a key name"),
    ('"credentials.delete" = "n"', "credentials.delete and credentials.new share 'n' in CredentialsScreen"),
    ('"credentials.delete" = "q"', "credentials.delete on 'q' in CredentialsScreen would take 'q' from Quit"),
    ('"log.live" = "f1"', "log.live on 'f1' in MessageLog would take 'f1' from Help"),
    ('"confirm.yes" = "f1"', "confirm.yes on 'f1' in ConfirmScreen would take 'f1' from Help"),
    # Earlier versions named each list's keys apart; the one name now is list.* (refused, never ignored).
    ('"log.down" = "n"', "keymap 'log.down': now 'list.down', one name for that key in every list"),
    ('"profiles.top" = "t"', "keymap 'profiles.top': now 'list.top'"),
    ('"review.up" = "u"', "keymap 'review.up': now 'list.up'"),
])
def test_config_check_refuses_a_keymap_smsdesk_cannot_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          keymap: str, problem: str) -> None:
    path = tmp_path / "smsdesk.tui.toml"
    path.write_text(f"[keymap]\n{keymap}\n")
    monkeypatch.setenv("SMSDESK_CONFIG", str(path))
    checked = CliRunner().invoke(cli, ["config", "check"])
    assert checked.exit_code == 1
    lines = checked.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"smsdesk: {path}: ") and problem in lines[0], lines
    started = CliRunner().invoke(cli, ["--db", str(tmp_path / "smsdesk.db")])  # the TUI refuses to start
    assert started.exit_code == 1 and problem in started.output
    demo = CliRunner().invoke(cli, ["demo", "--demo-db", str(tmp_path / "demo.db")])
    assert demo.exit_code == 1 and problem in demo.output and "internal error" not in demo.output
    assert not (tmp_path / "demo.db").exists()


def test_config_check_lists_every_problem_and_accepts_a_good_keymap(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "smsdesk.tui.toml"
    monkeypatch.setenv("SMSDESK_CONFIG", str(path))
    path.write_text('[keymap]\n"credentials.nuke" = "x"\n"log.nope" = "y"\n')
    checked = CliRunner().invoke(cli, ["config", "check"])
    assert checked.exit_code == 1 and len(checked.output.strip().splitlines()) == 2
    path.write_text('[keymap]\n"credentials.delete" = "x"\n"log.live" = "L"\n"app.quit" = "ctrl+q"\n')
    assert CliRunner().invoke(cli, ["config", "check"]).exit_code == 0


@pytest.mark.parametrize(("content", "problem"), [
    (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b"# " + b"x" * 70_000, "larger than 64 KiB"),
])
def test_a_huge_or_deep_settings_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes,
                                                  problem: str) -> None:
    path = tmp_path / "smsdesk.tui.toml"
    path.write_bytes(content)
    monkeypatch.setenv("SMSDESK_CONFIG", str(path))
    checked = CliRunner().invoke(cli, ["config", "check"])
    assert checked.exit_code == 1 and problem in checked.output and "internal error" not in checked.output


def test_dev_zero_as_the_settings_file_is_read_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSDESK_CONFIG", "/dev/zero")
    checked = CliRunner().invoke(cli, ["config", "check"])
    assert checked.exit_code == 1 and "larger than 64 KiB" in checked.output


def test_demo_with_a_bad_theme_is_one_line_and_leaves_no_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "smsdesk.tui.toml"
    path.write_text("theme = 'no-such-theme'\n")
    monkeypatch.setenv("SMSDESK_CONFIG", str(path))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    demo = CliRunner().invoke(cli, ["demo"])
    assert demo.exit_code == 1 and "unknown theme 'no-such-theme'" in demo.output
    assert "internal error" not in demo.output
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_keymap_and_theme_from_the_settings_apply(db_path: Path,
                                                        sample_credentials: list[StoredCredential]) -> None:
    app = make_app(db_path, keymap={"credentials.delete": "x"}, theme="textual-light")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.theme == "textual-light" and not app.current_theme.dark
        await pilot.press("x")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="x deletes")


# ---- forms ---------------------------------------------------------------------------------------

def test_pydantic_wording_becomes_plain_words() -> None:
    assert plain("Input should be greater than or equal to 1") == "must be at least 1"
    assert plain("Input should be less than or equal to 48") == "must be at most 48"
    assert plain("Field required") == "is required"
    assert plain("Input should be 'forward' or 'pull'") == "must be forward or pull"


def test_cross_field_rules_are_checked_on_the_raw_form() -> None:
    assert cross_field_errors({"content_template_id": "1207161234567890", "principal_entity_id": ""}) == {
        "content_template_id": "needs a DLT principal entity ID as well"}
    assert "opt_out_keywords" in cross_field_errors({"opt_in_keywords": "GO", "opt_out_keywords": "go"})


async def test_dlt_error_shows_with_the_other_errors_and_save_goes_to_the_first(
        db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = pilot.app.screen
        assert isinstance(form, CredentialEditScreen)
        form.query_one("#f-content_template_id", Input).value = "1207161234567890"  # no entity id
        form.query_one("#f-validity_period_hours", Input).value = "0"
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        # The DLT rule is reported although other fields are wrong too, in plain words.
        assert note(form, "content_template_id") == "✗ needs a DLT principal entity ID as well"
        assert note(form, "validity_period_hours").startswith("✗ must be")
        assert "Input should be" not in note(form, "validity_period_hours")
        assert note(form, "name").startswith("✗")
        status = str(form.query_one("#edit-status", Static).render())
        assert "Name" in status and "Content template" in status
        assert form.query_one("#f-name", Input).has_focus  # the first error in the form's order
        form.query_one("#f-name", Input).value = "Promo"
        form.query_one("#f-sandbox", Input).value = "prod"
        form.query_one("#f-base_url", Input).value = "promo.api.infobip.com"
        form.query_one("#f-api_key", Input).value = "k" * 24
        form.query_one("#f-validity_period_hours", Input).value = "24"
        await pilot.pause()
        await pilot.press("f2")
        await pilot.pause()
        dlt = form.query_one("#f-content_template_id", Input)
        assert dlt.has_focus  # below the fold at 80x24: focused, so scrolled into view
        assert form.query_one("#note-content_template_id").region.y < SIZE[1]


async def test_copy_dialog_validates_as_you_type_and_keeps_no_stale_error(
        db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, DuplicateScreen), what="copy dialog")
        dialog = pilot.app.screen
        sandbox = dialog.query_one("#d-sandbox", Input)
        sandbox.value = "Bad Sandbox!"
        await pilot.pause()
        error = dialog.query_one("#dnote-sandbox", Static)
        assert error.display and "use 1 to 64" in str(error.render())  # before any save
        sandbox.value = "eu-test"
        await pilot.pause()
        assert not error.display  # fixed: the error goes at once
        await settle(pilot)


async def test_test_sms_number_is_checked_as_you_type_in_the_words_of_send(
        db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    from smsdesk.domain.phone import to_e164
    from smsdesk.tui.screens.send_test import SendTestScreen

    def refusal(raw: str) -> str:
        with pytest.raises(ValueError) as caught:
            to_e164(raw)
        return f"✗ {caught.value}"

    async with make_app(db_path).run_test(size=SIZE) as pilot:
        screen = await ready(pilot)
        select_row(screen, "Shop UK")
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SendTestScreen), what="test SMS dialog")
        dialog = pilot.app.screen
        box = dialog.query_one("#send-to", Input)
        note = dialog.query_one("#send-to-note", Static)
        assert box.placeholder.startswith("e.g. +")  # an example, not a value
        assert not note.display  # nothing typed: nothing to complain about yet
        await pilot.press(*"+44 77")
        await pilot.pause()
        assert note.display and str(note.render()) == refusal("+44 77")  # before any F2
        await pilot.press(*"00 900123")
        await pilot.pause()
        assert not note.display  # a possible number now: the complaint goes at once
        await pilot.press("x")
        await pilot.pause()
        assert str(note.render()) == refusal("+44 7700 900123x")
        # And F2 refuses it with the very same words.
        await pilot.press("f2")
        await pilot.pause()
        assert str(note.render()) == refusal("+44 7700 900123x") and box.has_focus
