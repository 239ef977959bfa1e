"""Storing a webhook must not read whole tables: its cost would grow with every subscriber.

Each statement that `store_messages` runs is traced (with its parameters bound) and explained
against a real database that already holds consent, ledger, profile and message rows; no plan may
scan a table that grows with traffic. This is how `_consents_of` once read every consent row for
every webhook: a lookup by number on a table keyed by (sandbox, number).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdesk.simulator.sample_data import CLUB_NUMBER, SHOP_NUMBER, club_credential, make_db, shop_credential
from smsdesk.store.inbound import InboundMessage, RouteTable, store_messages
from tests.support.query_plans import table_scans, traced
from tests.support.store import store_directly

KEYWORDS = ("STOP", "START", "HELP", "hello", "YES", "DISCOUNT")


def traffic(start: int, count: int, at: str = "2026-11-26T10:00:00.000Z") -> list[InboundMessage]:
    """Messages to both programmes from `count` numbers, keywords among them."""
    return [InboundMessage(f"plan-{start + i}", f"+4179{start + i:07d}", "+" + (SHOP_NUMBER if i % 2 else CLUB_NUMBER),
                           KEYWORDS[i % len(KEYWORDS)], at) for i in range(count)]


@pytest.fixture()
def busy_db(tmp_path: Path) -> Path:
    db_path = make_db(tmp_path / "plans.db", shop_credential(), club_credential())
    store_directly(db_path, traffic(0, 600))
    return db_path


def traced_statements(db_path: Path, messages: list[InboundMessage]) -> list[str]:
    return traced(db_path, lambda conn: store_messages(conn, RouteTable(), messages))[1]


@pytest.mark.parametrize("count", [1, 100])
def test_storing_messages_reads_no_growing_table_whole(busy_db: Path, count: int) -> None:
    # Half the numbers already have consent, a ledger and a profile; half are new.
    statements = traced_statements(busy_db, traffic(300, count, at="2026-11-26T11:00:00.000Z"))
    assert any("FROM consent" in sql for sql in statements), "the consent lookup was not traced"
    assert table_scans(busy_db, statements) == {}


def test_the_check_sees_a_scan(busy_db: Path) -> None:
    """The check itself: a lookup by number alone is reported."""
    scans = table_scans(busy_db, ["SELECT consent FROM consent WHERE number IN ('+41790000001')"])
    assert [[detail.split()[:2] for detail in details] for details in scans.values()] == [[["SCAN", "consent"]]]


def test_a_webhook_does_not_read_the_credentials_table_while_it_is_unchanged(busy_db: Path) -> None:
    """Whether a credential changed is one keyed read (schema 10): the old check aggregated the
    whole table for every webhook, 157 us with 1,001 credentials."""
    routes = RouteTable()
    traced(busy_db, lambda conn: store_messages(conn, routes, traffic(700, 1)))  # loads the routes
    statements = traced(busy_db, lambda conn: store_messages(conn, routes, traffic(701, 1)))[1]
    assert any("credentials_version" in sql for sql in statements)
    assert not [sql for sql in statements if "FROM credentials " in sql or sql.rstrip().endswith("FROM credentials")]
