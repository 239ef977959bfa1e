"""Server-side commands: serve, simulate, demo, send (filled in with the gateway)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
