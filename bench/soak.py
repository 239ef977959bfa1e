"""The long fault run: SIGKILL `serve` at random moments under sustained load, many times, and
account for every message and reply. Prints one JSON line; mismatches must be 0.

Usage: python bench/soak.py [--kills 25] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.crash_harness import run_crash_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    started = time.perf_counter()
    report = run_crash_scenario(Path(tempfile.mkdtemp(prefix="smsdesk-soak-")), kills=args.kills,
                                workers=args.workers, drain_timeout=120)
    print(json.dumps({"bench": "soak", "seconds": round(time.perf_counter() - started, 1), **report.as_dict()}))
    sys.exit(1 if report.mismatches else 0)


if __name__ == "__main__":
    main()
