"""Running the `smsdesk` command in tests: its result, and the contract every command keeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from click.testing import CliRunner

from smsdesk.cli import main as entry
from smsdesk.store import credentials as repo
from smsdesk.store.db import connect

SCRIPT = Path(sys.executable).with_name("smsdesk")  # the console script of this venv: smsdesk = cli.main:main


@dataclass
class CliRun:
    code: int
    out: str
    err: str
    secrets: ClassVar[tuple[str, ...]] = ()  # keys a subclass knows must never be printed

    def json(self) -> Any:
        return json.loads(self.out)

    def assert_no_secrets(self) -> None:
        for key in self.secrets:
            assert key not in self.out + self.err, "an API key was printed"

    def assert_ok(self) -> None:
        assert self.code == 0, (self.code, self.out, self.err)
        assert "Traceback" not in self.err
        self.assert_no_secrets()

    def assert_user_error(self, *mentions: str) -> None:
        """Status 1, exactly one line on stderr naming what is wrong, no traceback, no key."""
        assert self.code == 1, (self.code, self.out, self.err)
        assert self.err.endswith("\n") and self.err.count("\n") == 1, self.err
        assert self.err.startswith("smsdesk: ")
        assert "Traceback" not in self.err
        for mention in mentions:
            assert mention in self.err, (mention, self.err)
        self.assert_no_secrets()

    def assert_usage_error(self) -> None:
        assert self.code == 2, (self.code, self.out, self.err)
        assert "Error:" in self.err
        assert "Traceback" not in self.err


R = TypeVar("R", bound=CliRun)


def run_script(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60,
               result: type[R] = CliRun) -> R:  # type: ignore[assignment]
    """The installed console script in a subprocess, with this environment plus `env`."""
    done = subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=os.environ | (env or {}))
    return result(done.returncode, done.stdout, done.stderr)


def run_main(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
             result: type[R] = CliRun) -> R:  # type: ignore[assignment]
    """What the console script runs, `smsdesk.cli.main.main` (the command tree and its last-resort
    one-line errors), called in this process with `args` as its argv, stdin/stdout/stderr captured
    and `env` over this environment.

    A subprocess costs ~0.4 s of CPU to start Python and import smsdesk again; tests of what a
    command does and says use this. What only a process of its own shows (signals, the status the
    shell sees, stray warnings on stderr, umask, the installed script itself) stays with run_script.
    """
    argv = sys.argv
    with CliRunner().isolation(input=stdin, env=env) as (out, err, _):
        sys.argv = ["smsdesk", *args]
        try:
            entry.main()
            code = 0
        except SystemExit as exc:  # click and main() end every run this way
            if isinstance(exc.code, str):  # sys.exit("message"): Python prints it and exits 1
                sys.stderr.write(exc.code + "\n")
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            sys.argv = argv
        sys.stdout.flush()
        sys.stderr.flush()
        return result(code, out.getvalue().decode(), err.getvalue().decode())


def seed_records(path: Path, records: list[dict[str, Any]]) -> None:
    """Credentials written straight to the store, in one transaction."""
    db = connect(path)
    try:
        repo.import_credentials(db, records)
    finally:
        db.close()
