"""The `smsdesk` command."""

from __future__ import annotations

import os
import sqlite3
import sys

import click

from smsdesk.cli.common import Context, UserError, sqlite_error_line
from smsdesk.store.paths import ENV_DB


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_option",
    envvar=ENV_DB,
    metavar="PATH",
    help=f"SQLite database file (default: the user data directory; env {ENV_DB}).",
)
@click.version_option(package_name="smsdesk")
@click.pass_context
def cli(ctx: click.Context, db_option: str | None) -> None:
    """smsdesk: Infobip SMS credentials, inbound keywords, consent and replies, in a terminal.

    Without a command, opens the terminal UI on the database.
    """
    ctx.obj = Context(db_option)
    if ctx.invoked_subcommand is None:
        from smsdesk.tui.app import run_tui  # imported late: CLI commands need not pay for Textual
        from smsdesk.tui.config import ConfigError

        path = ctx.obj.db_path
        ctx.obj.open_db().close()  # create/migrate up front so errors are one clean line
        try:
            run_tui(path)
        except ConfigError as exc:  # the user's tui.toml: one line naming the file and the problem
            raise UserError(str(exc)) from exc


def _register() -> None:
    from smsdesk.cli import (
        config_cmd,
        consent_cmd,
        creds,
        demo_cmd,
        export_cmd,
        gateway_cmds,
        inbound_cmd,
        purge_cmd,
        review_cmd,
        serve_cmd,
    )

    cli.add_command(creds.creds)
    for command in (*export_cmd.COMMANDS, *serve_cmd.COMMANDS, *demo_cmd.COMMANDS, *consent_cmd.COMMANDS,
                    *config_cmd.COMMANDS, *review_cmd.COMMANDS, *inbound_cmd.COMMANDS,
                    *purge_cmd.COMMANDS):
        cli.add_command(command)
    gateway_cmds.register(cli)  # simulate, send, creds verify


_register()


def main() -> None:
    try:
        cli.main(prog_name="smsdesk", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except sqlite3.Error as exc:  # mid-command: the database locked past the busy timeout, ...
        if os.environ.get("SMSDESK_DEBUG"):
            raise
        print(f"smsdesk: {sqlite_error_line(exc)}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        # The promise is one line per error, whatever the input. Only the exception's class: its
        # text may quote the input (a key, a hostile file's content). SMSDESK_DEBUG=1 shows all.
        if os.environ.get("SMSDESK_DEBUG"):
            raise
        print(f"smsdesk: internal error ({exc.__class__.__name__}); run with SMSDESK_DEBUG=1 for the traceback",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
