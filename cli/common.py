"""Shared CLI plumbing: the database option, user errors, JSON output."""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import sqlite_utils

from smsdesk.domain.inert import make_inert
from smsdesk.infobip.net import listen_socket
from smsdesk.store.db import connect
from smsdesk.store.errors import StorageTrouble, classify
from smsdesk.store.paths import ENV_DB, resolve_db_path
from smsdesk.usecases.exports import inert_json


class UserError(click.ClickException):
    """Exit status 1 with one line on stderr, no traceback."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        # One line, inert: messages quote file names, settings and input that may hold anything.
        click.echo(make_inert(f"smsdesk: {self.format_message()}"), err=True)


def fail(message: str) -> NoReturn:
    raise UserError(message)


def listen_or_fail(host: str, port: int, message: str) -> socket.socket:
    """A listening socket, or `fail(message)` with {address} and {reason} filled in. Bound here,
    before the server runs, so a banner can name the real port (--port 0)."""
    try:
        return listen_socket(host, port)
    except OSError as exc:
        fail(message.format(address=f"{host}:{port}", reason=exc.strerror or exc))


class Context:
    def __init__(self, db_option: str | None) -> None:
        self.db_option = db_option

    @property
    def db_path(self) -> Path:
        return resolve_db_path(self.db_option)

    @property
    def by_default(self) -> bool:
        """Neither --db nor SMSDESK_DB chose the database: it is the one in the user's data directory."""
        return not self.db_option and not os.environ.get(ENV_DB)

    def open_db(self, *, existing: bool = False) -> sqlite_utils.Database:
        """The database, closed when the command ends (whatever way it ends). `existing`: for
        commands that read or change what is there, which must never create a database (or its
        directories) at a mistyped path."""
        path = self.db_path
        if existing and not path.exists():
            fail(f"database {path}: no such file (check --db or SMSDESK_DB; `smsdesk creds add` or `smsdesk` "
                 "creates one)")
        if existing and self.by_default:
            # Named on stderr: beside `smsdesk demo` (or another database), a command that quietly read
            # the user's own database would answer from the wrong file.
            click.echo(make_inert(f"smsdesk: database {path} (the default; --db or SMSDESK_DB names another)"),
                       err=True)
        try:
            db = connect(path)
        except sqlite3.Error as exc:  # not a database, locked, ...
            fail(f"database {path}: {sqlite_error_line(exc)}")
        except (OSError, RuntimeError) as exc:
            fail(f"database {path}: {exc}")
        click_context = click.get_current_context(silent=True)
        if click_context is not None:
            click_context.call_on_close(db.close)
        return db


def sqlite_error_line(exc: sqlite3.Error) -> str:
    """One line for an SQLite error; a lock held elsewhere says what to do about it."""
    if classify(exc) is StorageTrouble.BUSY:
        return "database is locked (another process holds it); retry"
    text = str(exc)
    return text.splitlines()[0] if text else exc.__class__.__name__


pass_context = click.make_pass_decorator(Context)


def print_json(data: Any) -> None:
    sys.stdout.write(inert_json(data, indent=2))
    sys.stdout.write("\n")
