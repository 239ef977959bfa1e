"""The long fault run: SIGKILL `serve` at random moments under sustained load, many times, and
account for every message and reply. Prints one JSON line; mismatches must be 0.

Besides the kills, an operator and Infobip at work (tests/support/crash_harness.py, `operator`): opt-ins,
some dated in 2099; the credential's sandbox edited while replies wait; Infobip failing, then
answering late. The line says `replies_after_opt_out` (must be 0), `max_send_after_stop_ms` (how
long after a STOP was stored the latest reply it forbids reached Infobip; 0: none did) and
`consent_verify_ok` (`smsdesk consent verify` on the final file).

With --faults Infobip also loses answers (5% of the send requests: accepted, then the connection
closes), answers 200 in a shape it never sends (1%), answers 500 (3%) and answers late (5%)
(tests/support/crash_harness.py, FAULT_MIX). The line then says how many answers were lost
(`answers_lost`), how many replies Infobip's message logs settled (`unknown_resolved_by_logs`)
and `replies_sent_twice` (the simulator logs a message at once, so it should be 0).

Usage: python bench/soak.py [--kills 25] [--workers 8] [--between 0.3 1.2] [--no-operator] [--faults]
                            [--logs-lag 1.0] [--drain 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.crash_harness import run_crash_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--between", type=float, nargs=2, default=(0.3, 1.2), metavar=("MIN", "MAX"),
                        help="seconds between kills, drawn between MIN and MAX")
    parser.add_argument("--no-operator", dest="operator", action="store_false",
                        help="kills and load only: no opt-ins, sandbox edits or Infobip faults")
    parser.add_argument("--faults", action="store_true",
                        help="a fault mix on the sends for the whole run: lost answers, strange 200s, 500s, late ones")
    parser.add_argument("--logs-lag", type=float, default=1.0,
                        help="serve --logs-lag: seconds before a lost answer's replies are looked up in the logs")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds the last serve may take to drain")
    args = parser.parse_args()
    started = time.perf_counter()
    report = run_crash_scenario(Path(tempfile.mkdtemp(prefix="smsdesk-soak-")), kills=args.kills,
                                seconds_between=tuple(args.between), workers=args.workers, drain_timeout=args.drain,
                                operator=args.operator, faults=args.faults, logs_lag=args.logs_lag)
    print(json.dumps({"bench": "soak", "seconds": round(time.perf_counter() - started, 1), **report.as_dict()}))
    sys.exit(1 if report.mismatches else 0)


if __name__ == "__main__":
    main()
