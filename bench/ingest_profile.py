"""Where ingest's time goes: CPU per message of each process, smsdesk against the bare baseline.

bench/ingest.py says how fast; this says who pays. It drives `smsdesk serve` and the baseline of
bench/baseline_receiver.py with wrk (as bench/ingest.py does) and reads, from /proc, the user and
system CPU each process used per stored message: serve's process (HTTP, parsing, sending jobs),
its writer process (rules, SQL, COMMIT and its fsync), and the baseline's one process (HTTP, one
insert, COMMIT). System time is mostly the kernel's share of writes, fsync and waking the other
process. One JSON line per load point, all in one run.

Usage: python bench/ingest_profile.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import both_servers, wrk  # noqa: E402

POINTS = ((1, 1), (4, 1), (16, 1), (64, 1), (8, 100))  # (connections, results per request)
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def writer_pid(serve_pid: int) -> int:
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one writer process under serve, found {children}")
    return int(children[0])


def per_message(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
                messages: int) -> dict[str, dict[str, float]]:
    return {name: {"user_us": round((after[name][0] - before[name][0]) / messages * 1e6, 1),
                   "sys_us": round((after[name][1] - before[name][1]) / messages * 1e6, 1)}
            for name in before}


def measure(url: str, pids: dict[str, int], connections: int, batch: int, seconds: int) -> dict[str, object]:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    stats = wrk(url, connections, seconds, batch)
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    messages = int(stats["requests"]) * batch
    return {"msgs_per_s": round(stats["msgs_per_s"]), "p50_ms": round(stats["p50_ms"], 2),
            "cpu_per_msg": per_message(before, after, messages)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    args = parser.parse_args()
    with both_servers() as servers:
        ours_pids = {"serve": servers.ours.pid, "writer": writer_pid(servers.ours.pid)}
        wrk(servers.base_url, 16, 1, 1)  # warm-up of both
        wrk(servers.ours_url, 16, 1, 1)
        for connections, batch in POINTS:
            line = {"bench": "ingest_profile", "connections": connections, "results_per_request": batch,
                    "baseline": measure(servers.base_url, {"baseline": servers.base.pid}, connections, batch,
                                        args.seconds),
                    "smsdesk": measure(servers.ours_url, ours_pids, connections, batch, args.seconds)}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
