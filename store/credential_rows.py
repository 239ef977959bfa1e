"""Light read of the credentials list for the TUI: plain tuples in, small dataclasses out.

`store.credentials.list_credentials` re-validates every row through the pydantic model (keyword
JSON, URL normalisation, phone parsing): right for code that acts on a credential, but far too
slow for a list of a thousand (bench/startup.py). Rows in the
table were validated when they were written, so the list only needs the columns it shows, read
as they are. Whoever edits, copies, verifies or sends fetches the full `StoredCredential` by id.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from smsdesk.domain.credential_records import masked_key

# Only what the list shows or filters on: never the keyword lists or reply messages.
_LIST_COLUMNS = (
    "id, version, name, sandbox, base_url, api_key, sender, inbound_number, inbound_mode, "
    "validity_period_hours, principal_entity_id, content_template_id"
)
# The whole list as one JSON value, so one sqlite3_step instead of one per row. Python's
# sqlite3 releases the GIL around every step; in a TUI worker thread each re-acquire can wait
# out the UI thread's switch interval while it paints, so rows read one by one arrive slowly.
_LIST_SQL = (
    f"SELECT json_group_array(json_array({_LIST_COLUMNS})) "
    f"FROM (SELECT {_LIST_COLUMNS} FROM credentials ORDER BY name_key)"
)


def host_of(base_url: str) -> str:
    # Stored URLs are normalised to scheme://host[:port] (domain/credential.py: normalize_base_url), so a
    # partition does what urlsplit did at a fifth of the cost; urlsplit stays for anything odd.
    _scheme, sep, rest = base_url.partition("://")
    if sep and rest and "/" not in rest and "?" not in rest and "#" not in rest and "@" not in rest:
        return rest
    return urlsplit(base_url).netloc or base_url


@dataclass(slots=True)
class CredentialRow:
    """One line of the credentials list (treat as read-only).

    Not `frozen`: a frozen dataclass sets each field through object.__setattr__, which is slower
    to build, and the rows are built on the first screen's critical path.
    """

    id: int
    version: int
    name: str
    sandbox: str
    base_url: str
    host: str
    masked_key: str
    inbound_number: str
    inbound_mode: str
    validity_period_hours: int
    search_text: str  # what `/` matches, casefolded; never contains the key
    # Held for "reveal" only; kept out of repr so a stray log line or traceback cannot show it.
    api_key: str = field(repr=False, default="")


def _search_text(*parts: str) -> str:
    """The filter must not become a key oracle: the API key is never part of this."""
    return " ".join(parts).casefold()


def list_credential_rows(conn: sqlite3.Connection) -> list[CredentialRow]:
    (listing,) = conn.execute(_LIST_SQL).fetchone()
    rows: list[CredentialRow] = []
    for (cid, version, name, sandbox, base_url, api_key, sender, inbound, mode, validity, entity,
         template) in json.loads(listing):
        rows.append(CredentialRow(
            id=cid, version=version, name=name, sandbox=sandbox, base_url=base_url, host=host_of(base_url),
            masked_key=masked_key(api_key), inbound_number=inbound, inbound_mode=mode,
            validity_period_hours=int(validity),
            search_text=_search_text(name, sandbox, base_url, inbound, sender, mode, entity, template),
            api_key=api_key,
        ))
    return rows
