"""`smsdesk review list` says when it lists a part: "first N of M", the true M (issue 28)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smsdesk.cli.main import cli
from smsdesk.simulator.sample_data import make_db, shop_credential
from smsdesk.store.review import count_reviews, review_page
from tests.support.live import inbound, store

SHOP = "+447491163443"


def smsdesk(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args])


@pytest.fixture
def five_open(tmp_path: Path) -> Path:
    path = make_db(tmp_path / "d.db", shop_credential(fuzzy_opt_out="review"))
    store(path, *(inbound(f"+4179500000{i}", SHOP, "STPO", message_id=f"near-{i}") for i in range(5)))
    return path


def test_a_part_says_first_n_of_m(five_open: Path) -> None:
    result = smsdesk(five_open, "review", "list", "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[:2] == [line for line in lines if line.startswith("#")]
    assert lines[-1] == "first 2 of 5 open near misses listed, oldest first (--limit to list more)"


def test_json_stays_an_array_and_the_note_goes_to_standard_error(five_open: Path) -> None:
    result = smsdesk(five_open, "review", "list", "--json", "--limit", "4")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4
    assert "first 4 of 5 open near misses listed" in result.stderr


def test_everything_listed_says_nothing_more(five_open: Path) -> None:
    for args in ((), ("--limit", "5")):
        result = smsdesk(five_open, "review", "list", *args)
        assert result.exit_code == 0 and "first" not in result.output, result.output
        assert len(result.stdout.splitlines()) == 5


def test_all_counts_every_status(five_open: Path) -> None:
    first = json.loads(smsdesk(five_open, "review", "list", "--json").stdout)[0]
    assert smsdesk(five_open, "review", "resolve", str(first["id"]), "--dismiss").exit_code == 0
    assert smsdesk(five_open, "review", "list", "--limit", "2").stdout.splitlines()[-1].startswith("first 2 of 4 open")
    assert smsdesk(five_open, "review", "list", "--all", "--limit", "2").stdout.splitlines()[-1].startswith(
        "first 2 of 5 near misses")


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_a_bad_limit_is_refused(five_open: Path, limit: str) -> None:
    result = smsdesk(five_open, "review", "list", "--limit", limit)
    assert result.exit_code == 2 and "--limit" in result.output


def test_the_count_is_the_true_count_beyond_the_page(five_open: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(five_open)
    try:
        items, total = review_page(conn, limit=3)
        assert (len(items), total, count_reviews(conn, status="")) == (3, 5, 5)
    finally:
        conn.close()
