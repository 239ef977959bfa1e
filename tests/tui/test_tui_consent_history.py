"""The consent history in Profiles (issue 27, point 1): `changed:`, `since:` and `until:` over the
ledger answer "who opted out between A and B, how and why" (review decisions and operator opt-outs
included), and `x` exports what the list shows, the bytes `smsdesk export consent` writes. The real
app at 80x24 on a real SQLite file written by the real rules and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.inbound import InboundMessage
from smsdesk.tui.app import SmsDeskApp
from smsdesk.tui.filter_parser import FilterSyntaxError
from smsdesk.tui.profile_filter import HistoryFilter, parse_moment, parse_view_filter
from smsdesk.tui.screens.profiles import COLUMNS, ProfileDetailScreen, ProfilesScreen
from smsdesk.tui.widgets.filter_line import FilterLine
from tests.support.cli import run_main
from tests.support.live import screen_text, wait_until
from tests.support.store import rows, store_directly

SIZE = (80, 24)
SHOP = "+447491163443"
ALICE, BOB, CAROL, DAN = "+41790000001", "+41790000002", "+41790000003", "+41790000004"


def arrive(db: Path, number: str, text: str, at: str) -> None:
    store_directly(db, [InboundMessage(f"{number}-{at}", number, SHOP, text, at)], arrived_at=at)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "smsdesk.db", shop_credential(fuzzy_opt_out="review"))
    arrive(path, ALICE, "START", "2026-01-13T09:00:00.000+00:00")
    arrive(path, ALICE, "STOP", "2026-01-14T10:00:00.000+00:00")
    arrive(path, BOB, "START", "2026-01-14T11:00:00.000+00:00")
    arrive(path, BOB, "STOP please", "2026-01-15T08:00:00.000+00:00")
    arrive(path, CAROL, "START", "2026-01-15T08:30:00.000+00:00")
    arrive(path, CAROL, "STOP", "2026-01-15T09:00:00.000+00:00")
    arrive(path, CAROL, "START", "2026-01-15T09:30:00.000+00:00")
    arrive(path, DAN, "stpo", "2026-01-15T07:00:00.000+00:00")  # a near miss, for the review queue
    [(review_id,)] = rows(path, "SELECT id FROM review_queue")
    assert run_main("--db", str(path), "review", "resolve", str(review_id), "--opt-out").code == 0
    done = run_main("--db", str(path), "consent", "opt-out", ALICE, "--sandbox", "prod", "--reason", "called support")
    assert done.code == 0, done.err
    return path


async def _filter(pilot, profiles: ProfilesScreen, text: str) -> None:
    await pilot.press("/")
    profiles.query_one(FilterLine).input.value = ""
    await pilot.press(*text, "enter")


def _numbers(profiles: ProfilesScreen) -> list[str]:
    return [c["number"] for c in profiles.changes]


async def test_changed_since_until_lists_who_opted_out_in_the_window_and_x_exports_the_cli_bytes(
        db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    app = SmsDeskApp(db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        profiles.export_dir = out
        await wait_until(pilot, lambda: len(profiles.profiles) == 4, what="the profiles")
        await _filter(pilot, profiles, "changed:n since:2026-01-15 until:2026-01-15T09:15")
        await wait_until(pilot, lambda: _numbers(profiles) == [CAROL, BOB], what="the window's opt-outs, newest first")
        shown = screen_text(pilot)
        assert "2 consent changes, 2 numbers" in shown
        assert "keyword" in shown and "texted \"STOP\"" in shown
        why = str(profiles.query_one("#profiles-why", Static).render())
        assert CAROL in why and "y → n" in why and "how: keyword" in why and 'why: texted "STOP"' in why
        await pilot.press("down")
        await wait_until(pilot, lambda: "STOP please" in str(profiles.query_one("#profiles-why", Static).render()),
                         what="the why of the highlighted number")
        await pilot.press("x")
        await wait_until(pilot, lambda: any(out.iterdir()), what="the export")
    [written] = list(out.iterdir())
    assert written.name.startswith("smsdesk-consent-") and written.stat().st_mode & 0o777 == 0o600
    cli = run_main("--db", str(db), "export", "consent", "--since", "2026-01-15", "--until", "2026-01-15T09:15",
                   "--consent", "n", "--format", "jsonl")
    assert cli.code == 0, cli.err
    assert written.read_text(encoding="utf-8") == cli.out
    assert len(cli.out.splitlines()) == 2


async def test_review_decisions_and_operator_opt_outs_are_in_the_history_with_who_and_why(
        db: Path, tmp_path: Path) -> None:
    app = SmsDeskApp(db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) == 4, what="the profiles")
        await _filter(pilot, profiles, "changed:n since:2026-01-15")
        await wait_until(pilot, lambda: sorted(set(_numbers(profiles))) == [ALICE, BOB, CAROL, DAN],
                         what="every opt-out since, the operator's included")
        by_number = {c["number"]: c for c in profiles.changes}
        assert by_number[DAN]["cause"] == "operator" and "review #" in by_number[DAN]["reason"]
        assert by_number[ALICE]["cause"] == "operator" and by_number[ALICE]["reason"].endswith("called support")
        table = profiles.query_one(DataTable)
        table.move_cursor(row=next(i for i, c in enumerate(profiles.changes) if c["number"] == ALICE))
        await wait_until(pilot, lambda: "called support" in str(profiles.query_one("#profiles-why", Static).render()),
                         what="the operator's reason under the list")
        why = str(profiles.query_one("#profiles-why", Static).render())
        operator = by_number[ALICE]["operator"]
        assert "how: operator" in why and why.count(f"operator {operator}") == 1  # named once
        assert "s Sort" not in screen_text(pilot).splitlines()[-1]  # the history is in ledger order
        await pilot.press("enter")  # the number's profile and ledger
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileDetailScreen), what="the profile")
        assert app.screen.profile.number == ALICE


async def test_a_bad_date_is_refused_by_name_and_esc_brings_the_profiles_back(db: Path) -> None:
    app = SmsDeskApp(db, initial_mode="profiles")
    async with app.run_test(size=SIZE) as pilot:
        profiles = app.screen
        assert isinstance(profiles, ProfilesScreen)
        await wait_until(pilot, lambda: len(profiles.profiles) == 4, what="the profiles")
        await _filter(pilot, profiles, "since:yesterday")
        await pilot.pause()
        assert profiles.history is None and len(profiles.profiles) == 4
        assert "is not a date or time" in screen_text(pilot)
        await _filter(pilot, profiles, "changed:n")
        await wait_until(pilot, lambda: len(profiles.changes) >= 4, what="the history")
        await pilot.press("escape", "escape")
        await wait_until(pilot, lambda: len(profiles.profiles) == 4, what="the profiles again")
        assert [str(c.label) for c in profiles.query_one(DataTable).columns.values()] == list(COLUMNS)
        assert not profiles.query_one("#profiles-why").display


def test_the_history_terms_read_as_the_cli_reads_its_options() -> None:
    filters, history = parse_view_filter("changed:none since:2026-12-06 until:2026-12-07T09:30+01:00 num:4179")
    assert history == HistoryFilter("2026-12-06T00:00:00.000+00:00", "2026-12-07T08:30:00.000+00:00", "")
    assert filters["number"] == "4179"
    assert parse_view_filter("consent:y")[1] is None
    assert parse_moment("2026-12-06") == "2026-12-06T00:00:00.000+00:00"
    for bad in ("changed:maybe", "since:2026-13-01", "since:2026-12-07 until:2026-12-06"):
        with pytest.raises(FilterSyntaxError):
            parse_view_filter(bad)
