"""Faults against the real `smsdesk serve` process: a killed writer, a read-only database, a full disk.

/healthz must answer 503 whenever a webhook would and 200 again as soon as storing works, with
nobody sending webhooks in between. The read-only and disk-full cases need root (chattr +i, a
small tmpfs mount): they are skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdesk.simulator.sample_data import make_db, mo_body, mo_result, shop_credential
from smsdesk.writer.parent import RESPAWN_INTERVAL_S
from tests.support.serve import WEBHOOK_PASSWORD, wait_until
from tests.support.serve_process import AUTH, LiveServe


def health(server: LiveServe) -> tuple[int, str]:
    response = httpx.get(server.url + "/healthz", timeout=10)
    return response.status_code, response.json()["status"]


def post(server: LiveServe, *results: dict) -> httpx.Response:
    return httpx.post(server.url + "/infobip/inbound", json=mo_body(*results), auth=AUTH, timeout=30)


def stored(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def test_killed_writer_is_respawned_without_any_traffic(serve: LiveServe) -> None:
    """SIGKILL the writer and send nothing at all: a new writer runs within the respawn interval,
    and the first /healthz after that answers 200."""
    first = serve.writer_pid()
    assert first is not None
    killed_at = time.monotonic()
    os.kill(first, signal.SIGKILL)
    # No request of any kind until a new writer process exists: nothing but the supervisor can start it.
    assert wait_until(lambda: serve.writer_pid() not in (None, first), RESPAWN_INTERVAL_S + 2), serve.log()
    assert wait_until(lambda: health(serve) == (200, "ok"), 10), health(serve)
    assert time.monotonic() - killed_at < RESPAWN_INTERVAL_S + 2
    assert post(serve, mo_result("STOP", message_id="after-kill")).status_code == 200
    log = serve.log()
    assert "Traceback" not in log
    assert "starting a new one" in log


def test_writer_process_inherits_none_of_the_secrets(tmp_path: Path, home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """README: the writer process does not inherit SMSDESK_WEBHOOK_PASSWORD, SMSDESK_WEBHOOK_USER
    or SMSDESK_API_KEY (it only writes SQLite; /proc/PID/environ and a core dump would carry them)."""
    api_key = "an-api-key-the-writer-has-no-use-for-0001"
    monkeypatch.setenv("SMSDESK_API_KEY", api_key)
    serve = LiveServe(make_db(tmp_path / "smsdesk.db", shop_credential()), tmp_path / "serve.log")
    try:
        pid = serve.writer_pid()
        assert pid is not None
        serve_env = Path(f"/proc/{serve.proc.pid}/environ").read_bytes()
        writer_env = Path(f"/proc/{pid}/environ").read_bytes()
        for name in ("SMSDESK_WEBHOOK_PASSWORD", "SMSDESK_WEBHOOK_USER", "SMSDESK_API_KEY"):
            assert f"{name}=".encode() in serve_env  # serve has it...
            assert f"{name}=".encode() not in writer_env, name  # ...its writer does not
        for secret in (WEBHOOK_PASSWORD, api_key):
            assert secret.encode() not in writer_env
    finally:
        serve.stop()


def _can(command: list[str]) -> bool:
    return os.geteuid() == 0 and shutil.which(command[0]) is not None


@pytest.mark.skipif(not _can(["chattr"]), reason="needs root and chattr (immutable file: read-only even for root)")
def test_read_only_database_health_says_so_and_recovers_when_writable(serve: LiveServe) -> None:
    """A writer started while the file cannot be written gets a read-only connection from SQLite.
    /healthz says 503 as webhooks get 503; once the file is writable again both recover at once."""
    db = serve.db_path
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("file system without the immutable attribute")
    try:
        old = serve.writer_pid()
        os.kill(old, signal.SIGKILL)  # the next writer opens the file while it is read-only
        assert wait_until(lambda: serve.writer_pid() not in (None, old), RESPAWN_INTERVAL_S + 2)
        assert wait_until(lambda: health(serve) == (503, "database not writable"), 10), health(serve)
        response = post(serve, mo_result("STOP", message_id="ro-1"))
        assert response.status_code == 503 and response.headers["retry-after"]
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    restored_at = time.monotonic()
    assert wait_until(lambda: health(serve) == (200, "ok"), 5), health(serve)
    assert time.monotonic() - restored_at < 2
    assert post(serve, mo_result("STOP", message_id="ro-1")).status_code == 200
    assert stored(db) == 1
    assert "Traceback" not in serve.log()


@pytest.fixture
def small_disk(tmp_path: Path, home: Path) -> Iterator[Path]:
    if not _can(["mount"]):
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write zeros until the disk is full. Unbuffered: a buffered file that met a short write
    keeps the rest in its buffer and raises ENOSPC again when it is closed, outside the suppress
    (which happened as soon as the free space stopped being a multiple of the chunk)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while out.write(b"\0" * 65536):
            os.fsync(out.fileno())
    return filler


def test_full_disk_health_says_so_and_recovers_when_space_returns(small_disk: Path, tmp_path: Path) -> None:
    db = make_db(small_disk / "smsdesk.db", shop_credential())
    server = LiveServe(db, tmp_path / "serve.log")
    try:
        assert health(server) == (200, "ok")
        filler = fill(small_disk)
        time.sleep(0.3)  # past the time /healthz reuses its last check
        assert health(server) == (503, "disk full"), server.log()
        big = [mo_result("x" * 1500, sender=f"4179000{i:04d}", message_id=f"full-{i}") for i in range(200)]
        response = post(server, *big)
        assert response.status_code == 503, response.text
        filler.unlink()
        freed_at = time.monotonic()
        assert wait_until(lambda: health(server) == (200, "ok"), 5)
        assert time.monotonic() - freed_at < 2
        assert post(server, *big).json() == {"stored": 200, "duplicates": 0}
        assert "Traceback" not in server.log()
    finally:
        server.stop()
