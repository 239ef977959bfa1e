"""The layer rules of docs/architecture.md, checked on every import in the source, lazy ones too.

- domain (pure functions and types) imports nothing of ours, and no storage, network or terminal
  library either;
- store imports only domain; the writer (the write machinery) only domain and store;
- infobip (the client) imports only domain and store below it;
- use cases (what both front ends do) import domain, store and infobip, never a front end;
- the engine and the TUI never import each other;
- the simulator is imported only by itself, the `simulate` and `demo` commands, tests and bench;
- nothing imports the CLI.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"domain": "domain", "store": "store", "writer": "writer", "usecases": "usecases",
           "infobip": "infobip", "engine": "engine", "simulator": "simulator", "tui": "tui",
           "cli": "cli"}

# layer -> layers of ours it may import (besides itself)
ALLOWED = {
    "domain": set(),
    "store": {"domain"},
    "writer": {"domain", "store"},
    "infobip": {"domain", "store"},
    "usecases": {"domain", "store", "infobip"},
    "engine": {"domain", "store", "writer", "infobip"},
    "tui": {"domain", "store", "infobip", "usecases"},
    "simulator": {"domain", "store", "writer", "infobip", "engine"},
    "cli": {"domain", "store", "writer", "infobip", "usecases", "engine", "tui", "simulator"},
}
# The domain is pure: what it may not import from outside either (I/O, storage, the network, a terminal).
DOMAIN_FORBIDDEN = {"sqlite3", "sqlite_utils", "httpx", "socket", "starlette", "uvicorn", "textual", "rich",
                    "subprocess", "os", "threading", "asyncio"}
# The only modules outside the simulator that may import it: the commands that run it.
SIMULATOR_FRONT_DOORS = {"smsdesk.cli.gateway_cmds", "smsdesk.cli.demo_cmd"}


def imports_of(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import of smsdesk, wherever it stands in the file."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names[:1] if node.module != "smsdesk" else names[1:]:
                if name.startswith("smsdesk."):
                    yield node.lineno, name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("smsdesk."):
                    yield node.lineno, alias.name


def outside_imports(source: str) -> Iterator[tuple[int, str]]:
    """(line, top-level name) for every import of a module that is not ours."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]


def violations(module: str, source: str) -> list[str]:
    layer = module.split(".")[1]
    found = []
    if layer == "domain":
        found += [f"{module}:{line} imports {name} (the domain is pure: no I/O, storage or terminal)"
                  for line, name in outside_imports(source) if name in DOMAIN_FORBIDDEN]
    for line, imported in imports_of(source):
        target = imported.split(".")[1]
        if target == layer or target not in FOLDERS:
            continue
        if target not in ALLOWED[layer]:
            found.append(f"{module}:{line} imports {imported} ({layer} may not import {target})")
        elif target == "simulator" and layer != "simulator" and module not in SIMULATOR_FRONT_DOORS:
            found.append(f"{module}:{line} imports {imported} (only the simulate and demo commands may)")
    return found


def our_modules() -> Iterator[tuple[str, Path]]:
    for layer, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            dotted = ".".join(part for part in parts if part != "__init__")
            yield f"smsdesk.{layer}" + (f".{dotted}" if dotted else ""), path


def test_every_import_in_the_source_keeps_the_layer_rules() -> None:
    modules = list(our_modules())
    assert len(modules) > 50, "the source was not found"
    found = [problem for module, path in modules for problem in violations(module, path.read_text())]
    assert found == []


@pytest.mark.parametrize(("module", "source"), [
    ("smsdesk.store.db", "from smsdesk.tui.app import SmsDeskApp"),
    ("smsdesk.store.db", "def f():\n    import smsdesk.engine.service\n"),
    ("smsdesk.store.db", "from smsdesk import engine"),
    ("smsdesk.tui.app", "from smsdesk.engine.service import ServeConfig"),
    ("smsdesk.engine.service", "from smsdesk.tui.app import SmsDeskApp"),
    ("smsdesk.engine.service", "from smsdesk.simulator.http_api import SimulatorThread"),
    ("smsdesk.cli.creds", "from smsdesk.simulator.http_api import SimulatorThread"),
    ("smsdesk.infobip.client", "from smsdesk.engine.mo import parse_inbound"),
    ("smsdesk.domain.rules", "from smsdesk.store.db import transaction"),
    ("smsdesk.domain.rules", "def f():\n    from smsdesk.store import queries\n"),
    ("smsdesk.domain.consent_decider", "import sqlite3"),
    ("smsdesk.domain.credential", "import httpx"),
    ("smsdesk.store.db", "from smsdesk.infobip.client import InfobipClient"),
])
def test_the_check_catches_a_forbidden_import(module: str, source: str) -> None:
    assert violations(module, source)


@pytest.mark.parametrize(("module", "source"), [
    ("smsdesk.engine.service", "from smsdesk.writer.parent import ProcessWriter"),
    ("smsdesk.cli.demo_cmd", "from smsdesk.simulator.demo import start_demo"),
    ("smsdesk.simulator.demo", "from smsdesk.engine.service import ServerThread"),
    ("smsdesk.tui.app", "from smsdesk.store import queries"),
    ("smsdesk.store.inbound", "from smsdesk.domain.rules import decide"),
    ("smsdesk.domain.rules", "from smsdesk.domain.normalize import normalize"),
    ("smsdesk.domain.credential", "import pydantic"),
])
def test_the_check_allows_what_the_rules_allow(module: str, source: str) -> None:
    assert violations(module, source) == []
