"""Data export commands (filled in with the inbound pipeline)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
