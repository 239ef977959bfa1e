"""The bare baseline for bench/ingest.py: starlette + uvicorn, one durable SQLite insert per request.

Same durability as smsdesk (WAL, synchronous=FULL, commit before answering), none of the rules.
Run: python bench/baseline_receiver.py PORT DB_PATH
"""

from __future__ import annotations

import json
import sqlite3
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(db_path: str) -> Starlette:
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS messages (message_id TEXT PRIMARY KEY, sender TEXT, text TEXT)")

    async def inbound(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        conn.execute("BEGIN IMMEDIATE")
        for r in body["results"]:
            conn.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, ?)", (r["messageId"], r["from"], r["text"]))
        conn.execute("COMMIT")
        return JSONResponse({"stored": len(body["results"])})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/infobip/inbound", inbound, methods=["POST"]),
                             Route("/healthz", health)])


if __name__ == "__main__":
    uvicorn.run(make_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
