"""Benchmark: what a Blocklist outage costs a STOP (issue 29: it must cost nothing).

`smsdesk serve` (in this process, its writer in a child process) on a fresh database with one
credential, and the Infobip simulator (in this process) as its Infobip. N people text STOP, one
webhook after another on one connection; measured per mode: the webhook's answer time (p50,
p99) and the seconds until every confirmation reply was at the simulator.

Modes, in one run: `off` (blocklist_sync off: the baseline), `push` (push, the Blocklist
healthy), `push_hanging` (push, every Blocklist request held unanswered), `push_500` (push, every
Blocklist request answered 500). Each push mode's ratios are against `off`.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsdesk.engine.receiver import BasicAuth  # noqa: E402
from smsdesk.engine.service import ServeConfig, ServerThread  # noqa: E402
from smsdesk.simulator.http_api import FaultKind, SimulatorState, SimulatorThread  # noqa: E402
from smsdesk.simulator.sample_data import SHOP_NUMBER, make_db, mo_body, mo_result, shop_credential  # noqa: E402
from smsdesk.simulator.state import Gate  # noqa: E402

KEY = "bench-key-0123456789abcdef"
USER, PASSWORD = "bench", "bench-password-123"
BLOCKLIST = "/platform/1/blocklists"


def run_mode(mode: str, people: int, workdir: Path) -> dict[str, float]:
    state = SimulatorState(keys={KEY}, record_bodies=False)
    gate = Gate()
    with SimulatorThread(state) as sim:
        if mode == "push_hanging":
            state.inject(FaultKind.SLOW, None, gate=gate, path_prefix=BLOCKLIST, duration=3600)
        elif mode == "push_500":
            state.inject(FaultKind.SERVER_ERROR, None, path_prefix=BLOCKLIST, duration=3600)
        db = make_db(workdir / f"{mode}.db", shop_credential(
            sim.url, api_key=KEY, blocklist_sync="off" if mode == "off" else "push"))
        config = ServeConfig(db_path=db, port=0, auth=BasicAuth(USER, PASSWORD), run_poller=False,
                             outbox_interval=0.05)
        numbers = [f"4179{4000000 + i:07d}" for i in range(people)]
        answers: list[float] = []
        with ServerThread(config) as server, httpx.Client(auth=(USER, PASSWORD), timeout=30) as http:
            for number in numbers[:5]:  # warm up the connection and serve's paths (not measured)
                http.post(server.url + "/infobip/inbound", json=mo_body(mo_result("HELLO", sender=number)))
            started = time.perf_counter()
            for number in numbers:
                begin = time.perf_counter()
                answer = http.post(server.url + "/infobip/inbound", json=mo_body(mo_result("STOP", sender=number)))
                answers.append((time.perf_counter() - begin) * 1000)
                assert answer.status_code == 200, answer.text
            wanted = set(numbers)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with state.lock:
                    confirmed = {m.to for m in state.sent if m.text == "Shop: unsubscribed."}
                if wanted <= confirmed:
                    break
                time.sleep(0.005)
            else:
                raise SystemExit(f"{mode}: not every confirmation was sent in 120 s")
            all_confirmed = time.perf_counter() - started
            gate.release()
    answers.sort()
    return {"webhook_p50_ms": round(statistics.median(answers), 2),
            "webhook_p99_ms": round(answers[int(len(answers) * 0.99) - 1], 2),
            "all_confirmations_s": round(all_confirmed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=300, help="STOPs per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {mode: run_mode(mode, args.people, Path(tmp)) for mode in ("off", "push", "push_hanging", "push_500")}
    base = results["off"]
    for mode in ("push", "push_hanging", "push_500"):
        results[mode]["p50_ratio_to_off"] = round(results[mode]["webhook_p50_ms"] / base["webhook_p50_ms"], 2)
        results[mode]["confirmations_ratio_to_off"] = round(
            results[mode]["all_confirmations_s"] / base["all_confirmations_s"], 2)
    print(json.dumps({"bench": "blocklist_outage", "people": args.people, "number": SHOP_NUMBER, **results}))


if __name__ == "__main__":
    main()
