"""How the log's filters find their messages without reading every one (schema 18).

- Free text and `num:` of three characters or more: the trigram index `messages_search` (FTS5)
  gives the candidates, newest first by id, and each candidate is checked with the LIKE the
  filter always meant (a literal substring, ASCII letters in any case). FTS5 folds the case of
  other letters too, so its answer is a superset: the check makes it exact. The index holds the
  messages up to `message_search_state.indexed_upto`; serve adds newer ones in batches
  (`index_new_messages`, every second), and a search reads the messages above the mark (the
  last second's, or whatever serve has not indexed yet) by id with the LIKE, merged with the
  index's answer in one ORDER BY.
- Free text or `num:` of one or two characters (no trigram to look up): a scan, bounded to the
  newest SCAN_WINDOW messages, and said so (`Search.after`).
- `cred:` (a prefix of the stored name, any case): the distinct names are read from the index
  `messages_credential` one step each (a skip scan), matched in Python, and each matching name's
  range of that index is read newest first; several names are merged by SQLite (UNION ALL under
  one ORDER BY walks each range in order and stops at the page).
- Counts that an index answers (all messages, an action, credentials) are exact; a count that
  would walk every match stops at COUNT_CAP and says "more than" (`log_first_page`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

MIN_INDEXED = 3  # a trigram: shorter needles have nothing to look up
SCAN_WINDOW = 100_000  # the newest messages a one- or two-character search reads
COUNT_CAP = 10_000  # a count that walks matches stops here: "more than 10,000"
MAX_MERGED_NAMES = 100  # credential ranges merged in one statement (SQLite allows 500 compound arms)

_NOT_DEFAULT = "m.action <> 'default'"
_OPEN_REVIEW = "EXISTS (SELECT 1 FROM review_queue r WHERE r.message_row_id = m.id AND r.status = 'open')"


def escape_like(value: str) -> str:
    """`value` matched literally inside a LIKE pattern (ESCAPE '\\'): % and _ are not wildcards."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fts_phrase(value: str) -> str:
    """`value` as one FTS5 string: every character literal (AND, NEAR(, *, col:, quotes)."""
    return '"' + value.replace('"', '""') + '"'


def ascii_lower(value: str) -> str:
    """What SQLite's LIKE folds: A-Z only."""
    return value.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def indexed(needle: str) -> bool:
    """Whether a substring search for `needle` can go through the trigram index."""
    return len(needle) >= MIN_INDEXED


def credential_names(conn: sqlite3.Connection, prefix: str) -> list[str]:
    """The stored credential names that start with `prefix` in any (ASCII) case, as LIKE 'prefix%'
    matched them: one step down messages_credential per distinct name, not a read of every message."""
    wanted = ascii_lower(prefix)
    names: list[str] = []
    row = conn.execute("SELECT MIN(credential) FROM messages INDEXED BY messages_credential").fetchone()
    name = row[0] if row else None
    while name is not None:
        if ascii_lower(name[:len(prefix)]) == wanted:
            names.append(name)
        row = conn.execute("SELECT credential FROM messages INDEXED BY messages_credential WHERE credential > ? "
                           "ORDER BY credential LIMIT 1", (name,)).fetchone()
        name = row[0] if row else None
    return names


INDEX_BATCH = 500  # messages indexed per writer job: one FTS5 segment each (not one per webhook), and
# short enough that a webhook waiting behind the job waits a few milliseconds


def indexed_upto(conn: sqlite3.Connection) -> int:
    """The newest message id the trigram index holds; every message up to it is in it."""
    row = conn.execute("SELECT indexed_upto FROM message_search_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def index_new_messages(conn: sqlite3.Connection, batch: int = INDEX_BATCH) -> int:
    """A writer job: add up to `batch` messages above the mark to the trigram index, in id order,
    and move the mark past them; how many. Ids are never reused (schema 15), so the messages
    above the mark are exactly those not indexed."""
    upto = indexed_upto(conn)
    top = conn.execute("SELECT MAX(id) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
                       (upto, batch)).fetchone()[0]
    if top is None:
        return 0
    added = conn.execute("INSERT INTO messages_search (rowid, text, from_number, to_number) "
                         "SELECT id, text, from_number, to_number FROM messages WHERE id > ? AND id <= ?",
                         (upto, top)).rowcount
    conn.execute("UPDATE message_search_state SET indexed_upto = ? WHERE id = 1", (top,))
    return int(added)


@dataclass(frozen=True)
class Search:
    """The matching messages of one filter, as SQL: `source` names them `m` (and the index `f`);
    `key` is the id column their order and keyset bounds are written on (the index's rowid when
    it drives, so that FTS5 walks its own order and bounds). `names`: credential ranges merged."""

    source: str
    key: str
    clauses: list[str]
    params: list[Any]
    names: list[str] = field(default_factory=list)  # merged per-name ranges of messages_credential
    index_counts: bool = False  # an index answers the count exactly (no filter, an action, credentials)
    # The trigram index's mark: messages above it are read by id with the LIKE (`clauses[1:]`,
    # `params[1:]`: the search without its MATCH) and merged with the index's answer.
    indexed_upto: int | None = None

    def where(self, extra: list[str] | None = None) -> str:
        clauses = [*self.clauses, *(extra or [])]
        return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def build(conn: sqlite3.Connection, credential: str, action: str, number: str, text: str,
          after: int) -> Search:
    """The Search of a filter (store/queries.py MessageFilter); `after`: only ids above it."""
    clauses: list[str] = []
    params: list[Any] = []
    if action == "review":
        clauses.append(f"m.action = 'near-opt-out' AND {_NOT_DEFAULT} AND {_OPEN_REVIEW}")
    elif action == "default":  # most messages: read in id order, no index needed
        clauses.append("m.action = 'default'")
    elif action:
        # messages_action indexes every action but `default` (schema 11), and SQLite uses a
        # partial index only when the query says in as many words that it excludes `default`.
        clauses.append(f"m.action = ? AND {_NOT_DEFAULT}")
        params.append(action)
    phrases: list[str] = []
    if number:
        clauses.append("(m.from_number LIKE ? ESCAPE '\\' OR m.to_number LIKE ? ESCAPE '\\')")
        params += [f"%{escape_like(number)}%"] * 2
        if indexed(number):
            phrases.append("{from_number to_number} : " + fts_phrase(number))
    if text:
        clauses.append("m.text LIKE ? ESCAPE '\\'")
        params.append(f"%{escape_like(text)}%")
        if indexed(text):
            phrases.append("text : " + fts_phrase(text))
    if after:
        clauses.append("m.id > ?")
        params.append(after)
    names: list[str] = []
    if credential:
        names = credential_names(conn, credential)
        if not names:
            clauses.append("0")  # no message has such a credential: nothing to read
        elif phrases or len(names) > MAX_MERGED_NAMES:
            clauses.append(f"m.credential IN ({','.join('?' * len(names))})")
            params += names
            names = []
    if phrases:
        return Search("messages_search f CROSS JOIN messages m ON m.id = f.rowid", "f.rowid",
                      ["f.messages_search MATCH ?", *clauses], [" AND ".join(phrases), *params],
                      indexed_upto=indexed_upto(conn))
    # Exact counts where one index range holds the answer: an action's (not `default`, most
    # messages), or the credentials' ranges alone; anything more walks matches, up to the cap.
    exact = not (number or text or after) and action != "default" and not (action and names)
    return Search("messages m", "m.id", clauses, params, names, index_counts=exact)


def ids_sql(search: Search, bounds: list[str], bound_params: list[Any], descending: bool,
            limit: int, offset: int = 0) -> tuple[str, list[Any]]:
    """The matching ids within `bounds` (written on `m.id`), in order, `limit` from `offset`: each
    through the index that drives the search, stopping at the page."""
    direction = "DESC" if descending else "ASC"
    if search.names:
        arms, params = [], []
        for name in search.names:
            where = search.where(["m.credential = ?", *bounds])
            arms.append(f"SELECT m.id FROM messages m INDEXED BY messages_credential {where}")
            params += [*search.params, name, *bound_params]
        return (f"{' UNION ALL '.join(arms)} ORDER BY 1 {direction} LIMIT ? OFFSET ?",
                [*params, limit, offset])
    if search.indexed_upto is not None:
        # The index up to its mark and the messages above it by id, merged (MERGE (UNION ALL):
        # each arm in id order, stopping at the page).
        sql, params = matching_ids(search, bounds, bound_params)
        return f"{sql} ORDER BY 1 {direction} LIMIT ? OFFSET ?", [*params, limit, offset]
    keyed = [bound.replace("m.id", search.key) for bound in bounds]
    return (f"SELECT {search.key} FROM {search.source} {search.where(keyed)} ORDER BY {search.key} {direction} "
            "LIMIT ? OFFSET ?", [*search.params, *bound_params, limit, offset])


def matching_ids(search: Search, bounds: list[str], bound_params: list[Any]) -> tuple[str, list[Any]]:
    """A trigram search's matching ids within `bounds` (on `m.id`), unordered: the index's up to
    its mark, UNION ALL the messages above the mark checked with the LIKE."""
    assert search.indexed_upto is not None
    keyed = [bound.replace("m.id", search.key) for bound in bounds]
    indexed = f"SELECT {search.key} FROM {search.source} {search.where([f'{search.key} <= ?', *keyed])}"
    newer = f"SELECT m.id FROM messages m WHERE {' AND '.join(['m.id > ?', *search.clauses[1:], *bounds])}"
    return (f"{indexed} UNION ALL {newer}",
            [*search.params, search.indexed_upto, *bound_params,
             search.indexed_upto, *search.params[1:], *bound_params])


def count(conn: sqlite3.Connection, search: Search, top: int, cap: int | None) -> tuple[int, bool]:
    """How many match up to id `top`, and whether that is only a lower bound ("more than"): exact
    where an index answers (each credential's range, an action's), else at most `cap` + 1 walked."""
    if search.index_counts or cap is None:
        if search.names:
            found = 0
            for name in search.names:
                found += conn.execute(
                    f"SELECT COUNT(*) FROM messages m INDEXED BY messages_credential "
                    f"{search.where(['m.credential = ?', 'm.id <= ?'])}", (*search.params, name, top)).fetchone()[0]
            return int(found), False
        if search.indexed_upto is not None:
            sql, params = matching_ids(search, ["m.id <= ?"], [top])
            return int(conn.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0]), False
        where = search.where([f"{search.key} <= ?"])
        return int(conn.execute(f"SELECT COUNT(*) FROM {search.source} {where}",
                                (*search.params, top)).fetchone()[0]), False
    sql, params = ids_sql(search, ["m.id <= ?"], [top], True, cap + 1)
    found = int(conn.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()[0])
    return min(found, cap), found > cap
