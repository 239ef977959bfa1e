"""The real `smsdesk serve` command in a subprocess, its log in a file, its writer process found in /proc."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smsdesk.simulator.sample_data import make_db, shop_credential
from tests.support.cli import SCRIPT
from tests.support.serve import WEBHOOK_PASSWORD, WEBHOOK_USER

AUTH = (WEBHOOK_USER, WEBHOOK_PASSWORD)
_BANNER = re.compile(r"smsdesk serve on (http://\S+)")


class LiveServe:
    def __init__(self, db_path: Path, log_path: Path, *args: str, preexec: object = None) -> None:
        self.db_path = db_path
        self.log_path = log_path
        env = dict(os.environ, SMSDESK_WEBHOOK_USER=WEBHOOK_USER, SMSDESK_WEBHOOK_PASSWORD=WEBHOOK_PASSWORD)
        env.pop("SMSDESK_DB", None)
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(
            [str(SCRIPT), "--db", str(db_path), "serve", "--port", "0", "--poll-interval", "60", *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            preexec_fn=preexec)  # type: ignore[arg-type]
        self.url = self._wait_for_banner()
        self.host, self.port = "127.0.0.1", int(self.url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 20
        while not self._healthy():
            assert time.monotonic() < deadline and self.proc.poll() is None, self.log()
            time.sleep(0.05)

    def _wait_for_banner(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = _BANNER.search(self.log())
            if found:
                return found.group(1)
            assert self.proc.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"no banner: {self.log()}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def writer_pid(self) -> int | None:
        """The writer child of serve, if one runs (found by its command line)."""
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:  # a thread that ended between the listing and the read
                continue
            for pid in children:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"smsdesk.writer.child" in cmdline:
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        return int(pid)
        return None

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        return sock

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def read_response(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """The server closed its end within `timeout` (EOF or reset), whatever it sent first."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


@pytest.fixture(name="serve")
def live_serve_fixture(tmp_path: Path, home: Path) -> Iterator[LiveServe]:
    """A real `smsdesk serve` process on the shop credential (a plugin: tests/conftest.py)."""
    server = LiveServe(make_db(tmp_path / "smsdesk.db", shop_credential()), tmp_path / "serve.log")
    try:
        yield server
    finally:
        server.stop()
