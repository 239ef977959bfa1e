"""Tracing the SQL a store function runs and explaining each statement against the real file.

`traced` runs a function the way `serve` or the TUI runs it (a writer job in one transaction, or a
read on a reader connection) and collects every statement with its parameters bound (sqlite3's
trace callback). `table_scans` explains them and reports each plan line that reads a table, or a
whole index of it, from end to end: a cost that grows with every message and subscriber.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

from smsdesk.store.db import connect, connect_reader, transaction

T = TypeVar("T")
# Tables of configuration: a handful of rows, read whole on purpose (the route table).
# FTS5 reads its own settings (a row or two: the trigram index of schema 18) as it opens.
SMALL_TABLES = frozenset({"credentials", "main.messages_search_config"})


def traced(db_path: Path, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> tuple[T, list[str]]:
    """`work(conn)` in one transaction (as the writer runs a job), or on a reader connection
    (`write=False`, as the TUI reads), with every statement it ran."""
    statements: list[str] = []
    if write:
        db = connect(db_path)
        try:
            db.conn.set_trace_callback(statements.append)
            with transaction(db) as conn:
                result = work(conn)
            db.conn.set_trace_callback(None)
        finally:
            db.close()
        return result, statements
    reader = connect_reader(db_path)
    try:
        reader.set_trace_callback(statements.append)
        result = work(reader)
        reader.set_trace_callback(None)
    finally:
        reader.close()
    return result, statements


def plans(db_path: Path, statements: list[str]) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN's lines for each statement that reads or writes rows, by statement."""
    conn = sqlite3.connect(db_path)
    try:
        return {sql: [detail for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in statements
                if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT"))}
    finally:
        conn.close()


def full_text_search(detail: str) -> bool:
    """A plan line of an FTS5 table asked a MATCH (its index string has M): a search of its index,
    not a scan (FTS5 explains every use of it as SCAN ... VIRTUAL TABLE)."""
    words = detail.split()
    return words[2:4] == ["VIRTUAL", "TABLE"] and "M" in detail.partition(":")[2]


def table_scans(db_path: Path, statements: list[str], allowed: Collection[str] = ()) -> dict[str, list[str]]:
    """Plan lines that scan a growing table, by statement (its first 120 characters).

    `allowed`: whole plan lines a caller accepts on purpose (say why where it is passed).
    """
    scans: dict[str, list[str]] = {}
    for sql, details in plans(db_path, statements).items():
        for detail in details:
            # SEARCH is a lookup by key; SCAN reads a table (or a whole index) from end to end.
            words = detail.split()
            # An AUTOMATIC index is built for the statement by reading its whole table first.
            if ((words[0] == "SCAN" and words[1] not in SMALL_TABLES and detail != "SCAN CONSTANT ROW"
                    and detail not in allowed and not full_text_search(detail)) or "AUTOMATIC" in detail):
                scans.setdefault(sql[:120], []).append(detail)
    return scans
