"""Time to first paint of the credentials screen with 1,000 credentials, next to a bare app.

Both apps run headless (App.run_test at 80x24) in the same process, alternating, after one
warm-up each so imports are not counted. smsdesk's time runs from start-up until the table holds
every row and a frame has been painted after it (Pilot.pause: messages processed, then idle);
the bare app's until its first frame, measured the same way. After each smsdesk run (outside the
timing) the painted screen is checked to contain the first screenful of rows, so a table that
only claims its rows cannot pass. Prints one JSON line with both medians from the same run.
Usage: python bench/startup.py [--credentials N] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult  # noqa: E402
from textual.widgets import Static  # noqa: E402

from smsdesk.store.credentials import import_credentials  # noqa: E402
from smsdesk.store.db import connect  # noqa: E402
from smsdesk.tui.app import SmsDeskApp  # noqa: E402
from smsdesk.tui.screens.credentials import CredentialsScreen  # noqa: E402
from smsdesk.tui.textual_private import screen_lines  # noqa: E402
from smsdesk.tui.widgets.credentials_table import CredentialsTable  # noqa: E402

SIZE = (80, 24)


class BareApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello")


def make_db(path: Path, count: int) -> None:
    records = [
        {"name": f"Credential {i:04d}", "sandbox": f"sb{i % 7}", "base_url": f"h{i}.api.infobip.com",
         "api_key": f"key-{i:012d}-abcdef", "inbound_number": f"+4474911{i:05d}",
         "opt_out_message": "You are unsubscribed."}
        for i in range(count)
    ]
    db = connect(path)
    try:
        import_credentials(db, records)  # one transaction
    finally:
        db.close()


def first_screenful(count: int) -> list[str]:
    """Inbound numbers (shown unclipped, unique per row) of the rows that must be on screen."""
    visible = SIZE[1] - 4  # status line, table header, key bar, a spare line
    return [f"+4474911{i:05d}" for i in range(min(count, visible))]


async def time_smsdesk(path: Path, count: int) -> tuple[float, float]:
    """(ms until the rows are loaded into the table, ms until the frame showing them)."""
    start = time.perf_counter()
    app = SmsDeskApp(path, poll_seconds=30)
    async with app.run_test(size=SIZE) as pilot:
        while True:
            screen = app.screen
            if isinstance(screen, CredentialsScreen) and screen.query_one(CredentialsTable).row_count >= count:
                break
            await asyncio.sleep(0.001)
        loaded = time.perf_counter() - start
        await pilot.pause()  # the frame showing the rows
        elapsed = time.perf_counter() - start
        painted = "\n".join(screen_lines(app.screen))
        missing = [name for name in first_screenful(count) if name not in painted]
        assert not missing, f"first screenful not painted: {missing[:3]}"
    return loaded * 1000, elapsed * 1000


async def time_bare() -> float:
    start = time.perf_counter()
    async with BareApp().run_test(size=SIZE) as pilot:
        await pilot.pause()
        elapsed = time.perf_counter() - start
    return elapsed * 1000


async def main(count: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        make_db(path, count)
        await time_smsdesk(path, count)
        await time_bare()
        loaded, smsdesk, bare = [], [], []
        for _ in range(repeat):
            rows_ms, paint_ms = await time_smsdesk(path, count)
            loaded.append(rows_ms)
            smsdesk.append(paint_ms)
            bare.append(await time_bare())
    smsdesk_ms = statistics.median(smsdesk)
    bare_ms = statistics.median(bare)
    return {"bench": "startup", "credentials": count, "smsdesk_ms": round(smsdesk_ms, 1),
            "bare_textual_ms": round(bare_ms, 1), "ratio": round(smsdesk_ms / bare_ms, 2),
            "smsdesk_rows_loaded_ms": round(statistics.median(loaded), 1),
            "smsdesk_min_ms": round(min(smsdesk), 1), "bare_min_ms": round(min(bare), 1),
            "ratio_of_minimums": round(min(smsdesk) / min(bare), 2), "repeat": repeat}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--credentials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.credentials, args.repeat))))
