"""`smsdesk demo` in a real terminal (tmux at 80x24): the live log fills with simulated traffic."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cli import SCRIPT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
SMSDESK = str(SCRIPT)


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True,
                          check=True).stdout


def wait_for(session: str, predicate, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if predicate(screen):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"screen never matched; last screen:\n{screen}")


def message_count(screen: str) -> int:
    match = re.search(r"LIVE\s+([\d,]+) messages", screen)
    return int(match.group(1).replace(",", "")) if match else -1


@pytest.mark.timeout(120)
def test_demo_shows_live_traffic_in_a_real_terminal(tmp_path: Path) -> None:
    session = f"smsdesk-{uuid.uuid4().hex[:8]}"
    demo_db = tmp_path / "demo.db"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"{SMSDESK} demo --rate 8 --demo-db {demo_db}"], check=True)
    try:
        first = wait_for(session, lambda s: message_count(s) > 0)
        assert "time" in first and "action" in first  # the column header
        later = wait_for(session, lambda s: message_count(s) >= message_count(first) + 5)
        assert re.search(r"\b(opt-in|opt-out|help|keyword|default|unrouted)\b", later)
        subprocess.run(["tmux", "send-keys", "-t", session, "3"], check=True)
        wait_for(session, lambda s: re.search(r"\d+ profiles", s) is not None)
        subprocess.run(["tmux", "send-keys", "-t", session, "1"], check=True)
        creds = wait_for(session, lambda s: "Coffee Club" in s and "Pizza Promo" in s)
        assert "••••" in creds  # keys masked by default
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0
            if not alive:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the demo did not exit on q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert demo_db.exists()
