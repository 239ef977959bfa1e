"""Every hint that names a key names it as the keymap has it now (issue 27).

Status lines, placeholders, button labels and F1's notes write a binding by its id, `{key:log.live}`,
and `with_keys` puts in the key the key bar would show for it: remap `log.live` to `L` and the
log's status line says `L: back to live`. A binding id no screen declares is a mistake in the
hint and raises, so a test finds it.
"""

from __future__ import annotations

import re
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode

from smsdesk.tui.textual_private import app_keymap

TOKEN = re.compile(r"\{key:([A-Za-z0-9_.\-]+)\}")
_declared: dict[type, dict[str, Binding]] = {}  # per class: its BINDINGS and its bases', by id


def _bindings_of(cls: type) -> dict[str, Binding]:
    if cls not in _declared:
        found: dict[str, Binding] = {}
        for klass in reversed(cls.__mro__):
            for binding in vars(klass).get("BINDINGS", ()):
                if isinstance(binding, Binding) and binding.id:
                    found[binding.id] = binding
        _declared[cls] = found
    return _declared[cls]


def declared_binding(node: DOMNode, binding_id: str) -> Binding:
    """The binding `binding_id` as declared by the node's screen, a widget on it, or the app."""
    screen = node.screen  # a screen's screen is itself; the app's, the one on top
    for owner in (node, screen, node.app):
        binding = _bindings_of(type(owner)).get(binding_id)
        if binding is not None:
            return binding
    for widget in screen.walk_children():
        binding = _bindings_of(type(widget)).get(binding_id)
        if binding is not None:
            return binding
    raise LookupError(f"a hint names {binding_id!r}, which no binding of this screen has")


def key_name(node: DOMNode, binding_id: str) -> str:
    """The first key of `binding_id` as the key bar shows it (`l`, `F2`, `/`, `esc`, `^g`)."""
    app: App[Any] = node.app
    binding = declared_binding(node, binding_id)
    remapped = app_keymap(app).get(binding_id)
    keys = remapped or binding.key
    first = keys.split(",")[0].strip()
    return app.get_key_display(binding.with_key(first, key_display=None if remapped else binding.key_display))


def with_keys(node: DOMNode, text: str) -> str:
    """`text` with each `{key:ID}` replaced by the key bound to ID now."""
    return TOKEN.sub(lambda match: key_name(node, match.group(1)), text)


def label_buttons(screen: DOMNode, labels: dict[str, str]) -> None:
    """Each button (by selector) labelled with its text, keys as mapped now: `Save ({key:edit.save})`."""
    from textual.widgets import Button

    for selector, text in labels.items():
        for button in screen.query(selector).results(Button):
            button.label = with_keys(screen, text)
