"""Shared fixtures: a real SQLite file per test, sample credentials, and steady cursors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from smsdesk.domain.credential import Credential, StoredCredential
from smsdesk.store.credentials import create_credential
from smsdesk.store.db import connect

# Writer jobs defined in tests/ must be importable by the writer child, which starts with -P (no
# working directory on its sys.path) and finds smsdesk itself as installed: give it the
# repository root, for `tests` only.
_ROOT = str(Path(__file__).resolve().parent.parent)

# Fixture modules shared by the tiers; their fixtures need no import in a test module.
pytest_plugins = ["tests.support.sim", "tests.support.serve_process"]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH", "")) if p)

SAMPLE_CREDENTIALS: tuple[dict[str, object], ...] = (
    {"name": "Shop UK", "sandbox": "prod", "base_url": "https://xyz1.api.infobip.com",
     "api_key": "0123456789abcdef0123456789a1b2", "inbound_number": "+447491163443",
     "opt_out_message": "You are unsubscribed. Reply START to rejoin."},
    {"name": "Shop UK staging", "sandbox": "staging", "base_url": "xyz2.api.infobip.com",
     "api_key": "fedcba9876543210fedcba98c3d4", "inbound_number": "+447491163444", "inbound_mode": "pull",
     "validity_period_hours": 24},
    {"name": "Clinic reminders", "sandbox": "health", "base_url": "https://clinic.api.infobip.com",
     "api_key": "aaaabbbbccccddddeeeeffff9z8y", "sender": "Clinic"},
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every run away from the real user data directory and the caller's smsdesk settings."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in ("SMSDESK_DB", "SMSDESK_API_KEY", "SMSDESK_WEBHOOK_USER", "SMSDESK_WEBHOOK_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "smsdesk.db"


@pytest.fixture
def sample_credentials(db_path: Path) -> list[StoredCredential]:
    db = connect(db_path)
    try:
        return [create_credential(db, Credential.model_validate(data)) for data in SAMPLE_CREDENTIALS]
    finally:
        db.close()


@pytest.fixture
def no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor is captured on or off at random: pin it on for stable snapshots."""
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


_SYSTEM = Path(__file__).resolve().parent / "system"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The quick tier, exactly `-m "not slow"`, would deselect every test of tests/system after
    collecting it: not importing those modules at all saves each xdist worker about 0.8 s of CPU
    (test_hostile_input alone builds its strategies and imports starlette's TestClient)."""
    if collection_path == _SYSTEM and " ".join(config.option.markexpr.split()) == "not slow":
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of tests/system (crash, tmux, writer process, the big hypothesis run, faults
    that need root) is `slow`: `pytest -m "not slow"` is the quick tier."""
    for item in items:
        if _SYSTEM in item.path.parents:
            item.add_marker(pytest.mark.slow)
