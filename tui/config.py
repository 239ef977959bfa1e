"""The user's TUI settings: a TOML file in the user config directory.

    # ~/.config/smsdesk/smsdesk.tui.toml  (`smsdesk config path` prints where it is on this machine)
    theme = "ansi-dark"         # any Textual theme: textual-dark, textual-light, ansi-dark, ...

    [keymap]                    # binding id = key(s); F1 lists the ids of every screen
    "credentials.delete" = "x"
    "log.live" = "L"
    "list.pagedown" = "pagedown,ctrl+f"  # list.*: the keys every list shares

Environment: SMSDESK_CONFIG names another file. A file that cannot be read or does not say
what smsdesk understands is one clear error (`ConfigError`), naming the file and the problem;
nothing is half-applied. No file is no settings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

ENV_CONFIG = "SMSDESK_CONFIG"
FILE_NAME = "smsdesk.tui.toml"
KNOWN_KEYS = {"theme", "keymap"}

EXAMPLE = """\
# smsdesk TUI settings (TOML). Every line is optional.
theme = "textual-dark"        # or textual-light, ansi-dark (16 colours), ansi-light, nord, ...

[keymap]                      # binding id = key or comma-separated keys; F1 shows each screen's ids
# "credentials.delete" = "x"
# "log.live" = "L"
# "list.pagedown" = "pagedown,ctrl+f"   # list.*: the keys of every list at once
"""


MAX_BYTES = 64 * 1024  # a settings file is a few lines; /dev/zero or a log named by mistake is not


class ConfigError(ValueError):
    """The config file is there but unusable; the message names the file and the problem (the
    first, when there are several: `problems` holds them all, each naming the file)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class TuiConfig:
    theme: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    path: Path | None = None  # the file read, None when there was none


def config_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir("smsdesk", appauthor=False)) / FILE_NAME


def load_config(path: Path | None = None, *, themes: set[str] | None = None, bindings: bool = False) -> TuiConfig:
    """Read the config file; `themes` (the names available) checks the theme when given;
    `bindings` checks the keymap against the TUI's bindings (tui/keymap_check.py)."""
    path = config_path() if path is None else path
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return TuiConfig()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; a settings file is a few lines")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a settings file") from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r} (known: theme, [keymap])")
    theme = data.get("theme")
    if theme is not None and not isinstance(theme, str):
        raise ConfigError(f"{path}: theme must be a name in quotes, such as \"textual-light\"")
    if theme is not None and themes is not None and theme not in themes:
        raise ConfigError(f"{path}: unknown theme {theme!r} (available: {', '.join(sorted(themes))})")
    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict):
        raise ConfigError(f"{path}: [keymap] must be a table of binding id = \"key\"")
    for binding_id, keys in keymap.items():
        if not isinstance(keys, str) or not keys.strip():
            raise ConfigError(f"{path}: keymap {binding_id!r} must be a key in quotes, such as \"x\"")
    found = TuiConfig(theme=theme, keymap={str(k): v.strip() for k, v in keymap.items()}, path=path)
    if bindings:
        from smsdesk.tui.keymap_check import keymap_problems

        problems = [f"{path}: {problem}" for problem in keymap_problems(found.keymap)]
        if problems:
            more = f" (and {len(problems) - 1} more: smsdesk config check lists them)" if len(problems) > 1 else ""
            raise ConfigError(problems[0] + more, problems)
    return found
