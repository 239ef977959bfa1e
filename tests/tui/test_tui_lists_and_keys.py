"""One TUI (issue 14): one data service, failures that never end the app, one set of keys and one
filter in every list, a tab line and a key bar that keep q and F1 at 80 columns, one vocabulary
for actions, and the operator conveniences (copy, sort, export, message -> profile, empty log).
Driven through the real app at 80x24 on real SQLite files."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from smsdesk.domain.credential import StoredCredential
from smsdesk.simulator.sample_data import club_credential, make_db, shop_credential
from smsdesk.store.credentials import delete_credential, get_credential
from smsdesk.store.db import connect
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.screens.credential_edit import CredentialEditScreen
from smsdesk.tui.screens.credentials import CredentialsScreen
from smsdesk.tui.screens.help import HelpScreen
from smsdesk.tui.screens.log import LogScreen
from smsdesk.tui.screens.message_detail import MessageDetailScreen
from smsdesk.tui.screens.profiles import ProfileDetailScreen, ProfilesScreen
from smsdesk.tui.screens.review import ReviewScreen
from smsdesk.tui.screens.tester import TesterScreen as KeywordTesterScreen  # not a pytest class
from smsdesk.tui.textual_private import notification_texts
from smsdesk.tui.widgets.credentials_table import CredentialsTable
from tests.support.live import ALICE, BOB, SEED, SHOP, inbound, screen_lines, screen_text, seed_db, store, wait_until

SIZE = (80, 24)
TUI = Path(__file__).resolve().parents[2] / "tui"
SEED_TEXTS = [text for _, _, text, _ in SEED]
SQL = re.compile(r"\s*(SELECT .* FROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WITH \w+ AS)\b")


@pytest.fixture
def live_db(tmp_path: Path) -> Path:
    return seed_db(tmp_path / "smsdesk.db")


def text_of(widget: Static) -> str:
    return str(widget.render())


# ---- 1. one data service; workers never end the app ----------------------------------------------

def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(TUI.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_every_worker_in_the_tui_survives_its_errors() -> None:
    """`@work` without exit_on_error=False ends the app on any exception (Textual's default)."""
    found = 0
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                name = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(name, ast.Name) and name.id == "work":
                    found += 1
                    keywords = {k.arg: k.value for k in decorator.keywords} if isinstance(decorator, ast.Call) else {}
                    flag = keywords.get("exit_on_error")
                    assert isinstance(flag, ast.Constant) and flag.value is False, \
                        f"{path.name}:{node.lineno} {node.name}: @work without exit_on_error=False"
        for node in ast.walk(tree):  # run_worker(...) too
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run_worker":
                keywords = {k.arg: k.value for k in node.keywords}
                flag = keywords.get("exit_on_error")
                assert isinstance(flag, ast.Constant) and flag.value is False, f"{path.name}:{node.lineno}"
    assert found >= 20  # the check looked at the real thing


def test_screens_and_widgets_never_open_the_database_and_sql_lives_in_store() -> None:
    """Only tui/data.py opens connections; one change probe, one timer; no SQL text in tui/."""
    probes, timers = [], []
    for path, tree in _sources():
        source = path.read_text()
        if "PRAGMA data_version" in source:
            probes.append(path.name)
        timers += [path.name for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and node.attr == "set_interval"]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "store.db" and path.name != "data.py":
                names = {a.name for a in node.names}
                assert not names & {"connect", "connect_reader"}, f"{path.name} opens the database itself"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not SQL.match(node.value), f"SQL in {path.name}:{node.lineno}"
        if path.parent.name in ("screens", "widgets"):
            assert "db_path" not in source, f"{path.name} is handed a database path"
    assert probes == ["data.py"]
    assert timers == ["app.py"]


async def test_editing_a_credential_deleted_meanwhile_says_so_and_the_app_goes_on(
        db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    app = SmsDeskApp(db_path, poll_seconds=30)  # no refresh in between: the list still shows it
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, CredentialsScreen)
        await wait_until(pilot, lambda: screen.loaded)
        table = screen.query_one(CredentialsTable)
        table.move_cursor(row=next(i for i, c in enumerate(table.shown) if c.name == "Shop UK"))
        other = connect(db_path)
        delete_credential(other, get_credential(other, "Shop UK").id)
        other.close()
        await pilot.press("e")  # this ended the TUI: the read failed in a worker with exit_on_error
        await wait_until(pilot, lambda: any("Shop UK: it was deleted meanwhile" in text
                                            for text in notification_texts(app)), what="the deletion reported")
        assert app.is_running and app.return_code is None and app.screen is screen
        await wait_until(pilot, lambda: "Shop UK" not in [c.name for c in table.shown], what="list re-read")
        await pilot.press("j")  # and the app still takes keys
        assert app.is_running


@contextmanager
def locked_exclusively(db_path: Path) -> Iterator[threading.Event]:
    """Another connection holds the database in exclusive mode until the event is set."""
    release = threading.Event()
    ready = threading.Event()

    def hold() -> None:
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
        blocker.execute("BEGIN EXCLUSIVE")
        ready.set()
        release.wait(30)
        blocker.close()

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(5)
    try:
        yield release
    finally:
        release.set()
        holder.join()


async def test_a_locked_database_in_every_view_is_reported_and_the_app_keeps_running(live_db: Path) -> None:
    """Locked past the busy timeout (0.2 s here, 5 s by default) in every view: the status says
    so, the app goes on, and everything reads again once the lock goes.

    The lock is taken before the app opens the file: in WAL mode an exclusive lock cannot be
    taken while other connections share the WAL index (a backup tool waits for that too)."""
    with locked_exclusively(live_db) as release:
        app = SmsDeskApp(live_db, poll_seconds=0.1, busy_timeout=0.2)
        async with app.run_test(size=SIZE) as pilot:
            for key, view in (("1", CredentialsScreen), ("2", LogScreen), ("3", ProfilesScreen),
                              ("4", KeywordTesterScreen)):
                await pilot.press("escape", key)
                assert isinstance(app.screen, view)
                if view is LogScreen:
                    await pilot.press("x", "enter", "slash", "a", "enter")  # export, detail, filter: all need it
                await wait_until(pilot, lambda: "database is locked" in screen_text(pilot), seconds=5,
                                 what=f"{view.__name__} reports the lock")
                assert app.is_running and app.return_code is None
            release.set()
            await wait_until(pilot, lambda: "database is locked" not in screen_text(pilot), seconds=8,
                             what="the problem line clears once reads work")
            for key, ready in (("1", "Shop"), ("2", "LIVE"), ("3", "profiles"), ("4", "Normalised")):
                await pilot.press("escape", key)
                await wait_until(pilot, lambda r=ready: r in screen_text(pilot), what=f"view {key} readable again")
            assert app.is_running and app.return_code is None


async def test_changes_reach_every_view_through_the_one_timer(live_db: Path) -> None:
    """A view that was not on screen when the data changed re-reads when it is shown again."""
    app = SmsDeskApp(live_db, poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) == 5, what="profiles")
        await pilot.press("2")
        store(live_db, inbound("+41790001111", SHOP, "YES"))
        await wait_until(pilot, lambda: "+41790001111" in screen_text(pilot), what="new row in the log")
        await pilot.press("3")
        await wait_until(pilot, lambda: len(profiles.profiles) == 6, what="profiles caught up on return")


# ---- 3. keys, footer, F1, tab line ---------------------------------------------------------------

VIEWS = (("1", CredentialsScreen, "1 Credentials"), ("2", LogScreen, "2 Inbound log"),
         ("3", ProfilesScreen, "3 Profiles"), ("4", KeywordTesterScreen, "4 Keyword tester"))


async def test_every_view_names_itself_and_keeps_q_and_f1_in_the_footer_at_80_columns(live_db: Path) -> None:
    app = SmsDeskApp(live_db)
    async with app.run_test(size=SIZE) as pilot:
        for key, view, _title in VIEWS:
            await pilot.press("escape", key)
            assert isinstance(app.screen, view)
            await pilot.pause(0.2)
            await pilot.press("escape")  # out of the tester's text box, where q is a letter
            await pilot.pause()
            lines = screen_lines(pilot)
            tabs, footer = lines[0], lines[-1]
            assert all(t in tabs for _, _, t in VIEWS), tabs
            current = app.screen.query_one("#view-tabs")
            assert current.current == view.VIEW_MODE  # type: ignore[attr-defined]
            assert "q Quit" in footer and "F1 Help" in footer, footer
            assert len(footer) <= 80
            if view is CredentialsScreen:
                assert "v Verify" in footer and "t Test SMS" in footer, footer


async def test_f1_documents_every_screen_with_its_keys_and_filter_syntax(live_db: Path) -> None:
    make_db_credential = live_db  # the seed has credentials Shop and Club
    app = SmsDeskApp(make_db_credential)
    async with app.run_test(size=SIZE) as pilot:

        async def help_for(expect_title: str, expect: str) -> None:
            await pilot.press("f1")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what=f"help on {expect_title}")
            helper = app.screen
            assert isinstance(helper, HelpScreen) and helper.help_title == expect_title
            shown = "\n".join(f"{a}  {b}" for a, b in (*helper.keys, *helper.notes))
            assert "Help" in screen_text(pilot)  # painted, titled
            assert expect in shown, shown
            await pilot.press("escape")

        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False))
        await help_for("Credentials", "Filter (/)")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CredentialEditScreen), what="form")
        await help_for("Credential form", "F5 reloads their version")  # F1 used to be dead here
        await pilot.press("escape")
        await pilot.press("2")
        await wait_until(pilot, lambda: "LIVE" in screen_text(pilot))
        await help_for("Inbound log", "cred:NAME")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageDetailScreen), what="detail")
        await help_for("Message", "Copy number")  # and here
        await pilot.press("escape", "3")
        await wait_until(pilot, lambda: len(app.screen.profiles) == 5)  # type: ignore[attr-defined]
        await help_for("Profiles", "consent:y|n|p|none")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileDetailScreen))
        await help_for("Profile", "Copy number")
        await pilot.press("escape", "4")
        await pilot.press("escape")  # out of the text box
        await help_for("Keyword tester", "nothing is sent or stored")


async def test_j_k_g_g_move_in_every_list(live_db: Path) -> None:
    store(live_db, *(inbound(ALICE, SHOP, f"filler {i}") for i in range(3)))
    app = SmsDeskApp(live_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, CredentialsScreen)
        await wait_until(pilot, lambda: screen.loaded)
        table = screen.query_one(CredentialsTable)
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("k")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == len(table.shown) - 1
        await pilot.press("g")
        assert table.cursor_row == 0

        await pilot.press("2")
        log_screen = app.screen
        assert isinstance(log_screen, LogScreen)
        log = log_screen.log_view
        await wait_until(pilot, lambda: log.loaded)
        await pilot.press("j", "j", "k")
        assert log.cursor == 1
        await pilot.press("G")
        assert log.cursor == log.total - 1
        await pilot.press("g")
        assert log.cursor == 0

        await pilot.press("3")
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) == 5)
        grid = profiles.query_one(DataTable)
        await pilot.press("j", "j", "k")
        assert grid.cursor_row == 1
        await pilot.press("G")
        assert grid.cursor_row == 4
        await pilot.press("g")
        assert grid.cursor_row == 0


async def test_one_keymap_line_moves_every_list(tmp_path: Path) -> None:
    """`list.down = "J"` remaps the key in the credentials, the log, Profiles and Review at once;
    `j` then moves none of them."""
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"), club_credential())
    store(path, *(inbound(f"+4179302672{i}", SHOP, "STPO", message_id=f"r-{i}") for i in range(3)))
    app = SmsDeskApp(path, keymap={"list.down": "J"})
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, CredentialsScreen)
        await wait_until(pilot, lambda: screen.loaded)
        cursors: list[tuple[str, Callable[[], int]]] = [("1", lambda: screen.table.cursor_row)]
        await pilot.press("2")
        log_screen = app.screen
        assert isinstance(log_screen, LogScreen)
        await wait_until(pilot, lambda: log_screen.log_view.loaded and log_screen.log_view.total == 3)
        cursors.append(("2", lambda: log_screen.log_view.cursor))
        for key, kind in (("3", ProfilesScreen), ("5", ReviewScreen)):
            await pilot.press(key)
            view = app.screen
            assert isinstance(view, kind)
            grid = view.query_one(DataTable)
            await wait_until(pilot, lambda grid=grid: grid.row_count >= 2, what=kind.__name__)
            cursors.append((key, lambda grid=grid: grid.cursor_row))
        for key, cursor in cursors:
            await pilot.press(key, "j")
            assert cursor() == 0, key
            await pilot.press("J")
            assert cursor() == 1, key


async def test_one_filter_widget_in_every_list_live_as_you_type_and_esc_clears(live_db: Path) -> None:
    app = SmsDeskApp(live_db)
    async with app.run_test(size=SIZE) as pilot:
        for key, box_id, typed, check in (
                ("1", "#cred-filter", "club", lambda s: [c.name for c in s.table.shown] == ["Club"]),
                ("2", "#log-filter", "action:help", lambda s: s.log_view.total == 1),
                ("3", "#profiles-filter", "consent:n", lambda s: [p.number for p in s.profiles] == [BOB])):
            await pilot.press("escape", key)
            screen = app.screen
            await pilot.pause(0.2)
            await pilot.press("slash")
            box = screen.query_one(box_id, Input)
            assert box.has_focus and box.display
            await pilot.press(*typed)  # no Enter: applied as you type
            await wait_until(pilot, lambda s=screen, c=check: c(s), what=f"{box_id} applied while typing")
            await pilot.press("escape")
            assert not box.display


# ---- 2. one vocabulary ---------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("action:custom", ["DISCOUNT"]),  # what the column shows
    ("action:keyword", ["DISCOUNT"]),  # what older versions showed
    ("action:double-opt-in", ["confirm"]),
    ("action:2x", ["confirm"]),
    ("cred:club", ["start", "confirm", "START", "join"]),  # any case
    ("cred:Sh", ["Do you ship to Zürich? 🚚", "HELP", "STOP please", "DISCOUNT", "YES"]),  # a prefix
])
async def test_the_log_filter_takes_what_the_screen_shows(live_db: Path, query: str, expected: list[str]) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log = screen.log_view
        await wait_until(pilot, lambda: log.loaded)
        await pilot.press("slash")
        screen.query_one("#log-filter", Input).value = query
        await pilot.press("enter")
        await wait_until(pilot, lambda: log.loaded and log.total == len(expected), what=query)
        shown = [t for y in range(log.size.height) for t in SEED_TEXTS if t[:20] in log.render_line(y).text]
        assert shown == expected


async def test_an_empty_result_says_0_of_n_match(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await wait_until(pilot, lambda: screen.log_view.loaded)
        await pilot.press("slash", *"nothing like this", "enter")
        await wait_until(pilot, lambda: f"0 of {len(SEED)} match" in screen_text(pilot), what="0 of N match")


def test_every_stored_action_has_one_word_a_style_and_a_meaning() -> None:
    from smsdesk.domain.rules import Action
    from smsdesk.tui.vocabulary import ACTION_MEANING, ACTION_STYLES, ACTION_STYLES_NO_COLOR, resolve_action

    for action in Action:
        assert resolve_action(action.value) == action.value
        assert action.value in ACTION_MEANING and action.value in ACTION_STYLES
    # Without colour, no two actions look alike, and none is dim (dim is what read at 1.6:1).
    looks = {(s.bold, s.italic, s.underline, s.reverse) for s in ACTION_STYLES_NO_COLOR.values()}
    assert len(looks) == len(ACTION_STYLES_NO_COLOR)
    assert not any(s.dim for s in ACTION_STYLES_NO_COLOR.values())
    # Red is for errors: no action is drawn in red.
    assert not any(s.color is not None and "red" in s.color.name for s in ACTION_STYLES.values())


# ---- 7. operator conveniences --------------------------------------------------------------------

async def test_copy_a_number_and_go_from_a_message_to_its_profile(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log = screen.log_view
        await wait_until(pilot, lambda: log.loaded)
        while log.cursor_row is not None and log.cursor_row.text != "STOP please":
            await pilot.press("down")
        await pilot.press("y")
        assert app.clipboard == BOB  # copy_to_clipboard: OSC 52, so it works over SSH
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileDetailScreen), what="profile of the number")
        detail = app.screen.query_one("#profile-detail", Static)
        await wait_until(pilot, lambda: "Consent ledger" in text_of(detail))
        assert text_of(detail).startswith(BOB)


async def test_export_the_filtered_log_from_the_tui(live_db: Path, tmp_path: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        screen.export_dir = tmp_path
        await wait_until(pilot, lambda: screen.log_view.loaded)
        await pilot.press("slash", *"cred:club", "enter")
        await wait_until(pilot, lambda: screen.log_view.total == 4)
        await pilot.press("x")
        await wait_until(pilot, lambda: any("Exported 4 messages" in text for text in notification_texts(app)))
    [exported] = tmp_path.glob("smsdesk-messages-*.jsonl")
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["join", "START", "confirm", "start"]  # oldest first, as the CLI
    assert {r["credential"] for r in rows} == {"Club"}
    assert rows[2]["action"] == "double-opt-in"  # the stored word, as `smsdesk export` writes it


async def test_sort_the_credentials_by_column(db_path: Path, sample_credentials: list[StoredCredential]) -> None:
    app = SmsDeskApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, CredentialsScreen)
        await wait_until(pilot, lambda: screen.loaded)
        await pilot.press("s", "s")  # name, then sandbox
        sandboxes = [c.sandbox for c in screen.table.shown]
        assert sandboxes == sorted(sandboxes) and "sorted by sandbox" in screen_text(pilot)


async def test_an_empty_log_explains_how_messages_arrive(tmp_path: Path) -> None:
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    app = SmsDeskApp(db_path, initial_mode="log")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "No messages yet" in screen_text(pilot), what="empty-log explanation")
        shown = screen_text(pilot)
        assert "smsdesk serve" in shown
        await wait_until(pilot, lambda: "No receiver has run" in screen_text(pilot), what="never a heartbeat")
        store(db_path, inbound(ALICE, SHOP, "hello"))
        await wait_until(pilot, lambda: "No messages yet" not in screen_text(pilot), what="explanation gone")


async def test_profile_sorting_covers_every_profile_not_only_the_first_page(live_db: Path) -> None:
    """600 profiles, 500 shown: sorted by number, the first row is the lowest number of all of
    them, although it is the least recently seen (outside the "last seen" page)."""
    from smsdesk.tui.adapters import PROFILE_PAGE

    db = connect(live_db)
    with db.conn:
        db.conn.executemany(
            "INSERT INTO profiles (sandbox, number, first_seen, last_seen) VALUES ('bulk', ?, ?, ?)",
            [(f"+4420000{i:05d}", f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}",
              f"2024-{1 + i // 100:02d}-01T00:00:{i % 60:02d}") for i in range(600)])
    db.close()
    app = SmsDeskApp(live_db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        await wait_until(pilot, lambda: len(screen.profiles) == PROFILE_PAGE, what="first page")
        assert "+442000000000" not in [p.number for p in screen.profiles]  # seen longest ago
        await pilot.press("s", "s")  # sandbox, then number
        await wait_until(pilot, lambda: "sorted by number" in screen_text(pilot), what="sorted by number")
        await wait_until(pilot, lambda: screen.profiles[0].number == "+385911111111", what="sorted")
        numbers = [p.number for p in screen.profiles]
        assert numbers == sorted(numbers) and "+442000000000" in numbers
        await pilot.press("s", "s", "s")  # consent, attributes, first seen
        await wait_until(pilot, lambda: "sorted by first seen" in screen_text(pilot), what="first seen")
        await wait_until(pilot, lambda: screen.profiles[0].number == "+442000000000", what="oldest first")
        first_seen = [p.first_seen for p in screen.profiles]
        assert first_seen == sorted(first_seen)


def _beat(db_path: Path, seconds_ago: float) -> None:
    from datetime import UTC, datetime, timedelta

    from smsdesk.store.heartbeat import record_heartbeat

    db = connect(db_path)
    with db.conn:
        record_heartbeat(db.conn, 4242, datetime.now(UTC) - timedelta(seconds=seconds_ago))
    db.close()


async def test_the_empty_log_judges_a_running_receiver_by_its_heartbeat(tmp_path: Path) -> None:
    """Whether `smsdesk serve` is running comes from its heartbeat, not from stored messages
    (an empty log has none): fresh says running, three missed beats say not running."""
    db_path = make_db(tmp_path / "smsdesk.db", shop_credential())
    app = SmsDeskApp(db_path, initial_mode="log", poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        def shown() -> str:
            return " ".join(screen_text(pilot).split())

        await wait_until(pilot, lambda: "No receiver has run" in shown(), what="never a heartbeat")
        _beat(db_path, 5)
        await wait_until(pilot, lambda: "A receiver is running on this database" in shown(), what="running")
        assert "No messages yet" in shown()
        _beat(db_path, 600)
        await wait_until(pilot, lambda: "No receiver is running on this database" in shown(), what="stopped")
        assert "10 min ago" in shown()



def _log_texts(log: object) -> list[str]:
    """The texts of the rows the log holds, in the order it shows them (position 0 first)."""
    rows = log._rows  # type: ignore[attr-defined]
    return [rows[p].text for p in sorted(rows)]


async def test_s_sorts_the_log_oldest_first_and_back_and_new_messages_go_to_the_end(live_db: Path) -> None:
    app = SmsDeskApp(live_db, initial_mode="log", poll_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log = screen.log_view
        await wait_until(pilot, lambda: log.loaded)
        assert _log_texts(log) == SEED_TEXTS[::-1]
        await pilot.press("s")
        await wait_until(pilot, lambda: log.loaded and _log_texts(log) == SEED_TEXTS, what="oldest first")
        await wait_until(pilot, lambda: "OLDEST FIRST" in screen_text(pilot), what="said in the status line")
        assert screen_lines(pilot)[5].startswith("09:00:01")  # the first row drawn is the oldest
        store(live_db, inbound(ALICE, SHOP, "arrived while sorted"))
        await wait_until(pilot, lambda: log.total == len(SEED) + 1, what="the new message counted")
        assert _log_texts(log) == [*SEED_TEXTS, "arrived while sorted"]  # at the end; the view stays
        assert log.scroll_offset.y == 0 and "1 new at the end" in screen_text(pilot)
        await pilot.press("s")
        await wait_until(pilot, lambda: log.loaded and _log_texts(log)[:2] == ["arrived while sorted", SEED_TEXTS[-1]],
                         what="newest first again")
        assert "LIVE" in screen_text(pilot) and log.follow


async def test_oldest_first_pages_by_keyset_through_more_than_a_page(live_db: Path) -> None:
    """250 more messages, oldest first: paging down and End read every row once, in id order,
    with no gap and no repeat, the newest last (the queries behind it are keyset pages)."""
    store(live_db, *(inbound(ALICE, SHOP, f"bulk {i:03d}") for i in range(250)))
    app = SmsDeskApp(live_db, initial_mode="log", poll_seconds=30)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, LogScreen)
        log = screen.log_view
        await wait_until(pilot, lambda: log.loaded)
        await pilot.press("s")
        await wait_until(pilot, lambda: log.loaded and log.oldest_first and log._rows[0].text == "YES")
        for _ in range(15):
            await pilot.press("pagedown")
        await wait_until(pilot, lambda: all(p in log._rows for p in range(0, 200)), what="pages fetched")
        ids = [log._rows[p].id for p in range(0, 200)]
        assert ids == sorted(ids) and len(set(ids)) == 200
        await pilot.press("G")
        await wait_until(pilot, lambda: log.cursor_row is not None and log.cursor_row.text == "bulk 249",
                         what="End: the newest, last")
        texts = [log._rows[p].text for p in range(log.total - 250, log.total) if p in log._rows]
        assert texts == sorted(texts)
