"""The credentials list: a DataTable that knows how to filter, mask and keep its cursor."""

from __future__ import annotations

from urllib.parse import urlsplit

from rich.text import Text
from textual.widgets import DataTable

from store.credentials import masked_key
from store.models import StoredCredential
from store.text import make_inert

COLUMNS = ("name", "sandbox", "host", "api key", "inbound", "mode", "valid")
# Clip widths chosen so all seven columns fit 80 columns with the scrollbar: the full values
# are one keypress away (Enter) and `/` searches the unclipped text.
NAME_WIDTH = 13
SANDBOX_WIDTH = 8
HOST_WIDTH = 15
MODE_LABEL = {"forward": "fwd", "pull": "pull"}


def host_of(base_url: str) -> str:
    return urlsplit(base_url).netloc or base_url


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: str, width: int | None = None, style: str = "") -> Text:
    # Text objects are never parsed as Rich markup, and make_inert turns control characters
    # into visible escapes: a credential name like "[red]x" or "\x1b]0;" shows up literally.
    value = make_inert(text)
    return Text(_clip(value, width) if width else value, style=style)


def search_text(cred: StoredCredential) -> str:
    """What `/` matches against. Never the API key: the filter must not become a key oracle."""
    parts = (cred.name, cred.sandbox, cred.base_url, cred.inbound_number, cred.sender,
             cred.inbound_mode.value, cred.principal_entity_id, cred.content_template_id)
    return " ".join(parts).casefold()


def matches(cred: StoredCredential, filter_text: str) -> bool:
    haystack = search_text(cred)
    return all(word in haystack for word in filter_text.casefold().split())


class CredentialsTable(DataTable[Text]):
    """Rows keyed by credential id, so the cursor stays on the same credential across reloads."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.credentials: list[StoredCredential] = []
        self.shown: list[StoredCredential] = []
        self.filter_text = ""
        self.reveal = False

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def show(self, credentials: list[StoredCredential], *, select_id: int | None = None) -> None:
        self.credentials = credentials
        self._rebuild(select_id)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._rebuild()

    def set_reveal(self, reveal: bool) -> None:
        self.reveal = reveal
        self._rebuild()

    @property
    def selected(self) -> StoredCredential | None:
        if not self.shown or not 0 <= self.cursor_row < len(self.shown):
            return None
        return self.shown[self.cursor_row]

    def _row(self, cred: StoredCredential) -> tuple[Text, ...]:
        key = cred.api_key if self.reveal else masked_key(cred.api_key)
        return (
            _cell(cred.name, NAME_WIDTH, "bold"),
            _cell(cred.sandbox, SANDBOX_WIDTH),
            _cell(host_of(cred.base_url), HOST_WIDTH),
            _cell(key, style="yellow" if self.reveal else "dim"),
            _cell(cred.inbound_number or "-"),
            _cell(MODE_LABEL.get(cred.inbound_mode.value, cred.inbound_mode.value)),
            _cell(f"{cred.validity_period_hours}h"),
        )

    def _rebuild(self, select_id: int | None = None) -> None:
        if select_id is None and (current := self.selected) is not None:
            select_id = current.id
        self.shown = [c for c in self.credentials if matches(c, self.filter_text)]
        # Clearing while keeping columns: widths are recomputed from the new cells, so a revealed
        # key widens its column and hiding it narrows it again.
        self.clear(columns=True)
        self.add_columns(*COLUMNS)
        self.add_rows([self._row(c) for c in self.shown])
        if select_id is not None:
            for index, cred in enumerate(self.shown):
                if cred.id == select_id:
                    self.move_cursor(row=index, animate=False)
                    break
