"""CPU an idle TUI burns while watching the live log (no new messages), next to a bare Textual
app idling in the same run. Prints one JSON line; target: under 2% of a core.

Usage: python bench/idle_cpu.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def idle_share(app_factory, seconds: float) -> float:
    app = app_factory()
    async with app.run_test(size=(80, 24)):
        await asyncio.sleep(2.0)  # let start-up work finish
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from smsdesk.simulator.bulk_log import fill_messages
    from smsdesk.simulator.sample_data import make_db, shop_credential
    from smsdesk.tui.app import SmsDeskApp

    db = make_db(Path(tempfile.mkdtemp(prefix="smsdesk-idle-")) / "idle.db", shop_credential())
    fill_messages(db, 100_000)

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("bare")

    bare = asyncio.run(idle_share(Bare, args.seconds))
    log = asyncio.run(idle_share(lambda: SmsDeskApp(db, initial_mode="log"), args.seconds))
    print(json.dumps({"bench": "idle_cpu", "seconds": args.seconds, "rows": 100_000,
                      "smsdesk_log_view_core_percent": round(log * 100, 2),
                      "bare_textual_core_percent": round(bare * 100, 2)}))


if __name__ == "__main__":
    main()
