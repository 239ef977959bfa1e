"""Impact preview figures (domain/impact.py): the time from the edit form's key to the answer, for
one credential's 100,000 stored messages of the last 30 days, read through a reader connection
as the TUI's data service does.

Two mixes: `typical` (the texts repeat: keywords, a few chatty phrases) and `distinct` (every
text different, so nothing is decided only once), each with fuzzy opt-out on in the edited rules
(the slowest path: every unmatched text is checked for a near miss). Target: under 1 s.
Prints one JSON line. Usage: python bench/impact_preview.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsdesk.simulator.sample_data import make_db, shop_credential  # noqa: E402
from smsdesk.store.db import connect, connect_reader  # noqa: E402
from smsdesk.store.queries import impact_preview  # noqa: E402

TYPICAL = ("STOP", "YES", "HELP", "DISCOUNT", "hello there", "what time do you open?", "thanks", "opt out",
           "please stop texting me", "STPO")


def fill(path: Path, rows: int, distinct: bool) -> None:
    db = connect(path)
    now = datetime.now(UTC)
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")  # a bench fixture: durability is not measured here
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO messages (message_id, received_at, stored_at, credential_id, credential, sandbox, from_number, "
        "to_number, text, normalized, action, keyword, consent_before, consent_after, source) "
        "VALUES (?, ?, ?, 1, 'Shop', 'prod', ?, '+447491163443', ?, '', 'default', '', 'y', 'y', 'forward')",
        ((f"b-{i}", (now - timedelta(seconds=i * 20)).isoformat(timespec="milliseconds"), now.isoformat(),
          f"+4179{i % 10_000_000:07d}",
          f"{TYPICAL[i % len(TYPICAL)]} number {i}" if distinct else TYPICAL[i % len(TYPICAL)])
         for i in range(rows)))
    conn.execute("COMMIT")
    db.close()


def measure(rows: int, distinct: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = make_db(Path(tmp) / "bench.db", shop_credential())
        fill(path, rows, distinct)
        edited = shop_credential(opt_out_keywords=["STOP", "OPT OUT", "REVOKE"], fuzzy_opt_out="review",
                                 inbound_keywords=["DISCOUNT"])
        conn = connect_reader(path)
        try:
            times = []
            for _ in range(3):
                start = time.perf_counter()
                impact = impact_preview(conn, 1, edited)
                times.append(time.perf_counter() - start)
        finally:
            conn.close()
    return {"messages": impact.messages, "changed": impact.changed, "seconds_best": round(min(times), 3),
            "seconds_worst": round(max(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps({"rows": args.rows, "typical": measure(args.rows, False),
                      "distinct": measure(args.rows, True)}))


if __name__ == "__main__":
    main()
