"""The bare baseline for bench/ingest.py: starlette + uvicorn, one durable SQLite insert per request.

Same durability as smsdesk (WAL, synchronous=FULL, commit before answering), none of the rules.
Run: python bench/baseline_receiver.py PORT DB_PATH
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def open_baseline(db_path: str | Path) -> sqlite3.Connection:
    """The bare receiver's database: WAL, synchronous=FULL, one table keyed by messageId."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS messages (message_id TEXT PRIMARY KEY, sender TEXT, text TEXT)")
    return conn


def store_baseline(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str]]) -> None:
    """(messageId, from, text) rows in one durable transaction: the whole of the bare receiver's work."""
    conn.execute("BEGIN IMMEDIATE")
    for row in rows:  # one statement per result, as a plain receiver writes it
        conn.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, ?)", row)
    conn.execute("COMMIT")


def make_app(db_path: str) -> Starlette:
    conn = open_baseline(db_path)

    async def inbound(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        store_baseline(conn, [(r["messageId"], r["from"], r["text"]) for r in body["results"]])
        return JSONResponse({"stored": len(body["results"])})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/infobip/inbound", inbound, methods=["POST"]),
                             Route("/healthz", health)])


if __name__ == "__main__":
    uvicorn.run(make_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
