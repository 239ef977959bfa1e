"""Checking a user's keymap against the bindings smsdesk has, before the TUI starts.

Textual applies a keymap without a word about ids it does not know, key names it cannot
produce, or two actions given one key; a file that rebinds `q` to delete leaves a key bar with no
Quit. Each problem here is one line naming the entry.

Scopes: every screen and widget class of the TUI with bindings that have ids. A view (not a
modal dialog) also has the app's bindings (`q` quit, `F1` help, the view keys), so a view binding
on one of their keys would take them away; a dialog's keys are its own (`q` closes a dialog).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator, Mapping
from functools import lru_cache

import textual.keys
from textual.binding import Binding
from textual.screen import ModalScreen

import smsdesk.tui

_MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
_PROTECTED = ("app.quit", "app.help")  # the key bar keeps these on every screen
_LIST_MOVES = ("up", "down", "pageup", "pagedown", "top", "bottom")
# Ids of earlier versions: each list had its own names for the keys every list shares, now one
# `list.*` (tui/widgets/list_navigation.py). A file that still says `"log.down" = "n"` is refused
# naming the new id, rather than applied to one list only or ignored.
RENAMED = {f"{view}.{move}": f"list.{move}" for view, moves in (
    ("log", _LIST_MOVES), ("profiles", ("up", "down", "top", "bottom")), ("review", ("up", "down")))
    for move in moves}


@lru_cache(maxsize=1)
def _key_names() -> frozenset[str]:
    names = {key.value for key in textual.keys.Keys if not key.value.startswith("<")}
    names |= {textual.keys._character_to_key(chr(code)) for code in range(33, 127)}  # slash, question_mark
    names |= set(textual.keys.KEY_ALIASES) | set(textual.keys.KEY_NAME_REPLACEMENTS.values())
    return frozenset(name for name in names if name)


def is_key_name(key: str) -> bool:
    """A key Textual can report: `x`, `L`, `?`, `f5`, `ctrl+g`, `shift+tab`, `question_mark`..."""
    *modifiers, base = key.split("+")
    if not base or any(modifier not in _MODIFIERS for modifier in modifiers):
        return False
    return (len(base) == 1 and base.isprintable() and not base.isspace()) or base in _key_names()


def _classes() -> Iterator[type]:
    for module_info in pkgutil.walk_packages(smsdesk.tui.__path__, "smsdesk.tui."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and any(
                    isinstance(b, Binding) and b.id for b in cls.__dict__.get("BINDINGS", ())):
                yield cls


@lru_cache(maxsize=1)
def binding_scopes() -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Scope name -> (binding id, default keys, description) of the bindings active there."""
    from smsdesk.tui.app import SmsDeskApp

    def ids(cls: type) -> list[tuple[str, str, str]]:
        return [(b.id, b.key, b.description or b.action) for b in cls.__dict__.get("BINDINGS", ())
                if isinstance(b, Binding) and b.id]

    app = ids(SmsDeskApp)
    scopes = {"the app": tuple(app)}
    for cls in _classes():
        if cls is SmsDeskApp:
            continue
        own = ids(cls)
        scopes[cls.__name__] = tuple(own if issubclass(cls, ModalScreen) else [*app, *own])
    return scopes


def known_ids() -> set[str]:
    return {binding_id for bindings in binding_scopes().values() for binding_id, _, _ in bindings}


def keymap_problems(keymap: Mapping[str, str]) -> list[str]:
    """Every problem of `keymap` (binding id -> comma-separated keys), one line each."""
    problems = []
    known = known_ids()
    for binding_id, keys in keymap.items():
        if binding_id in RENAMED:
            problems.append(f"keymap {binding_id!r}: now {RENAMED[binding_id]!r}, one name for that key in "
                            "every list (F1 lists each screen's ids)")
            continue
        if binding_id not in known:
            problems.append(f"keymap {binding_id!r}: no such binding id (F1 lists each screen's ids)")
            continue
        for key in keys.split(","):
            if not is_key_name(key.strip()):
                problems.append(f"keymap {binding_id!r}: {key.strip()!r} is not a key name Textual knows "
                                "(such as x, L, f5, ctrl+g, question_mark)")
    if problems:
        return problems
    for scope, bindings in binding_scopes().items():
        owners: dict[str, set[str]] = {}
        for binding_id, default, _ in bindings:
            for key in keymap.get(binding_id, default).split(","):
                owners.setdefault(key.strip(), set()).add(binding_id)
        for key, found in sorted(owners.items()):
            if len(found) < 2:
                continue
            taken = [b for b in _PROTECTED if b in found]
            if taken:
                others = ", ".join(sorted(found - set(taken)))
                problems.append(f"keymap: {others} on {key!r} in {scope} would take {key!r} from "
                                f"{'Quit' if taken[0] == 'app.quit' else 'Help'} ({taken[0]})")
            else:
                problems.append(f"keymap: {' and '.join(sorted(found))} share {key!r} in {scope}")
    return list(dict.fromkeys(problems))
