"""Read side for the TUI and the CLI: keyset-paged message log, profiles, consent ledger, exports.

Every query is bounded (LIMIT) or streamed, so a million-row log never loads at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from smsdesk.domain.credential import Credential
from smsdesk.domain.impact import DAYS, Impact, compare
from smsdesk.store import message_search
from smsdesk.store.message_search import COUNT_CAP, SCAN_WINDOW, Search, escape_like, ids_sql, matching_ids

# A near miss waiting in the review queue shows as `review` until an operator decides
# (store/review.py); the stored action stays `near-opt-out`, which exports write.
_NOT_DEFAULT = "m.action <> 'default'"
_OPEN_REVIEW = "EXISTS (SELECT 1 FROM review_queue r WHERE r.message_row_id = m.id AND r.status = 'open')"
SHOWN_ACTION = f"CASE WHEN m.action = 'near-opt-out' AND {_OPEN_REVIEW} THEN 'review' ELSE m.action END"
MESSAGE_COLUMNS = (
    "m.id, m.message_id, m.received_at, m.stored_at, m.credential, m.sandbox, m.from_number, m.to_number, "
    f"m.text, m.normalized, {SHOWN_ACTION}, m.keyword, m.rule, m.consent_before, m.consent_after, m.source, "
    "o.text AS reply_text, o.status AS reply_status, o.delivery_status, o.delivery_detail, o.last_error, "
    "o.id AS reply_id, m.decided_at"
)
_FROM = "FROM messages m LEFT JOIN outbox o ON o.id = m.reply_id"


@dataclass(frozen=True)
class MessageFilter:
    credential: str = ""
    action: str = ""
    number: str = ""
    text: str = ""
    # Only messages with a larger id: the window a one- or two-character search reads
    # (store/message_search.py SCAN_WINDOW), set by `log_first_page` and said in the status line.
    after: int = 0

    def search(self, conn: sqlite3.Connection) -> Search:
        """How the reads find the matching messages: through an index wherever one answers
        (store/message_search.py), with the meaning of `where`."""
        return message_search.build(conn, self.credential, self.action, self.number, self.text, self.after)

    def where(self) -> tuple[list[str], list[Any]]:
        """The filter as one scan of messages (LIKE): what it means, and what the indexed reads
        of `search` return (tests compare the two on the same rows)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.credential:
            # A prefix, any case (`cred:coffee` finds "Coffee Club"): what the operator sees, not
            # necessarily the whole stored name. SQLite's LIKE folds ASCII letters only.
            clauses.append("m.credential LIKE ? ESCAPE '\\'")
            params.append(f"{escape_like(self.credential)}%")
        if self.action == "review":
            clauses.append(f"m.action = 'near-opt-out' AND {_NOT_DEFAULT} AND {_OPEN_REVIEW}")
        elif self.action:
            clauses.append("m.action = ?")
            params.append(self.action)
        if self.number:
            clauses.append("(m.from_number LIKE ? ESCAPE '\\' OR m.to_number LIKE ? ESCAPE '\\')")
            params += [f"%{escape_like(self.number)}%"] * 2
        if self.text:
            clauses.append("m.text LIKE ? ESCAPE '\\'")
            params.append(f"%{escape_like(self.text)}%")
        if self.after:
            clauses.append("m.id > ?")
            params.append(self.after)
        return clauses, params

    @property
    def active(self) -> bool:
        return any((self.credential, self.action, self.number, self.text))

    @property
    def scans(self) -> bool:
        """A one- or two-character needle: no trigram to look up, so a bounded scan."""
        return any(needle and not message_search.indexed(needle) for needle in (self.number, self.text))


@dataclass(frozen=True)
class MessageRow:
    id: int
    message_id: str
    received_at: str
    stored_at: str
    credential: str
    sandbox: str
    from_number: str
    to_number: str
    text: str
    normalized: str
    action: str
    keyword: str
    rule: str
    consent_before: str
    consent_after: str
    source: str
    reply_text: str | None
    reply_status: str | None
    delivery_status: str | None
    delivery_detail: str | None
    last_error: str | None
    reply_id: int | None = None  # the outbox row of the reply (its delivery reports: delivery_reports_of)
    decided_at: str = ""  # receivedAt was too far ahead of the receiver's clock: decided at this time instead

    @property
    def clock_flag(self) -> str:
        """One line for the operator when receivedAt was not believed, else ''."""
        if not self.decided_at:
            return ""
        return f"receivedAt is ahead of the receiver's clock: consent decided at its arrival, {self.decided_at}"


def page_messages(conn: sqlite3.Connection, *, before_id: int | None = None, after_id: int | None = None,
                  limit: int = 100, filters: MessageFilter | None = None,
                  oldest_first: bool = False) -> list[MessageRow]:
    """Newest first (or oldest first), ids strictly between `after_id` and `before_id`: keyset
    pages either way in time; `after_id` alone fetches what is newer (live tail)."""
    bounds, params = _bounds(after_id, before_id)
    return _read_page(conn, (filters or MessageFilter()).search(conn), bounds, params, not oldest_first, limit)


def _bounds(after_id: int | None, before_id: int | None) -> tuple[list[str], list[Any]]:
    bounds: list[str] = []
    params: list[Any] = []
    if before_id is not None:
        bounds.append("m.id < ?")
        params.append(before_id)
    if after_id is not None:
        bounds.append("m.id > ?")
        params.append(after_id)
    return bounds, params


def _read_page(conn: sqlite3.Connection, search: Search, bounds: list[str], params: list[Any], descending: bool,
               limit: int, offset: int = 0) -> list[MessageRow]:
    """The rows of the matching ids within `bounds`, in order: the ids come down the index that
    drives the search and stop at the page; the rows are read by id."""
    direction = "DESC" if descending else "ASC"
    if not search.clauses and not search.names:  # every message: along the primary key
        where = f"WHERE {' AND '.join(bounds)}" if bounds else ""
        sql, args = f"SELECT {MESSAGE_COLUMNS} {_FROM} {where} ORDER BY m.id {direction} LIMIT ? OFFSET ?", \
            [*params, limit, offset]
    else:
        ids, args = ids_sql(search, bounds, params, descending, limit, offset)
        sql = f"SELECT {MESSAGE_COLUMNS} {_FROM} WHERE m.id IN ({ids}) ORDER BY m.id {direction}"
    return [MessageRow(*row) for row in conn.execute(sql, args).fetchall()]


def count_and_top(conn: sqlite3.Connection, filters: MessageFilter) -> tuple[int, int]:
    """How many messages match (exactly, however long that takes: tests and tools; the log counts
    with `log_first_page`), and the newest matching id (0 when none)."""
    if not filters.active and not filters.after:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]), max_message_id(conn)
    search = filters.search(conn)
    total, _ = message_search.count(conn, search, max_message_id(conn), None)
    newest = _read_page(conn, search, [], [], True, 1)
    return total, newest[0].id if newest else 0


def count_since(conn: sqlite3.Connection, after_id: int) -> tuple[int, int]:
    """Messages of any kind newer than `after_id`, and the newest id (`after_id` when none): a
    range of the primary key, however large the log."""
    count, top = conn.execute("SELECT COUNT(*), MAX(id) FROM messages WHERE id > ?", (after_id,)).fetchone()
    return int(count), int(top) if top is not None else after_id


@dataclass(frozen=True)
class LogPage:
    """The log's first screenful: `total` matching messages of `all_total`, counted up to `top`.

    Read in one transaction (the TUI's data service reads so), so `total <= all_total`.
    `more`: `total` is where the count stopped (COUNT_CAP), more match: the list holds the first
    `total` of them. `filters`: what the log reads with from now on (a one- or two-character
    search gets `after`, the window it reads: SCAN_WINDOW messages below `all_top`)."""

    total: int
    top: int
    rows: list[MessageRow]
    all_total: int  # every message, filter or not: "0 of N match"
    all_top: int = 0  # the newest message of all, filter or not: where the next poll counts from
    more: bool = False
    filters: MessageFilter | None = None


def log_first_page(conn: sqlite3.Connection, filters: MessageFilter, limit: int,
                   oldest_first: bool = False, known_all: tuple[int, int] | None = None) -> LogPage:
    """The first screenful, newest first (or oldest first: `rows` from the oldest match).

    `known_all`: (all messages, the newest id) as the caller last counted them; a filtered read
    then counts only what arrived since instead of every message again. Nothing is counted that
    the page itself shows: a page shorter than `limit` is every match."""
    if not filters.active:
        total = int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        top = max_message_id(conn)
        rows = page_messages(conn, before_id=top + 1, limit=limit, oldest_first=oldest_first)
        return LogPage(total, top, rows, total, top, filters=filters)
    if known_all is not None:
        new, all_top = count_since(conn, known_all[1])
        all_total = known_all[0] + new
    else:
        all_total, all_top = int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]), max_message_id(conn)
    if filters.scans and not filters.after and all_top > SCAN_WINDOW:
        filters = replace(filters, after=all_top - SCAN_WINDOW)
    search = filters.search(conn)
    rows = _read_page(conn, search, ["m.id <= ?"], [all_top], not oldest_first, limit)
    if len(rows) < limit:
        total, more = len(rows), False
    else:
        total, more = message_search.count(conn, search, all_top, COUNT_CAP)
    return LogPage(total, all_top, rows, max(all_total, total), all_top, more, filters)


def messages_at_offset(conn: sqlite3.Connection, filters: MessageFilter, offset: int,
                       limit: int, oldest_first: bool = False, top: int | None = None,
                       total: int | None = None) -> list[MessageRow]:
    """A page starting `offset` rows below the newest match (oldest first: above the oldest, and
    no newer than `top`, the newest the log has counted): the log's jump into the unknown (End,
    a scrollbar drag). Paging next to rows already read uses keysets instead.

    `total`: how many rows match (up to `top`), when known exactly. A jump past the middle counts
    from the other end, so End reads the last page from the oldest row instead of stepping over
    every row. Without it (a count that stopped at COUNT_CAP) the offset is walked: at most the cap."""
    search = filters.search(conn)
    bounds, params = _bounds(None, None if top is None else top + 1)
    from_far_end = total is not None and offset > total // 2
    if from_far_end:
        assert total is not None
        if offset >= total:
            return []  # past the end of what was counted
        far_offset = max(0, total - offset - limit)
        return _read_page(conn, search, bounds, params, oldest_first, min(limit, total - offset), far_offset)[::-1]
    return _read_page(conn, search, bounds, params, not oldest_first, limit, offset)


@dataclass(frozen=True)
class LogUpdate:
    """What changed for a live log since it read up to `after_id` (matching) and `all_after`
    (all messages), read in one transaction: the counts it keeps move together."""

    fresh: list[MessageRow]  # newer matching rows, newest first
    updated: dict[int, MessageRow]  # the visible rows re-read (a reply moved on: queued -> sent -> delivered)
    all_new: int  # messages of any kind newer than `all_after`: "N of M match" keeps M current
    all_top: int  # the newest message of all now


def log_updates(conn: sqlite3.Connection, filters: MessageFilter, after_id: int, limit: int,
                visible: list[int], all_after: int | None = None) -> LogUpdate:
    """Newer matching rows, the visible rows re-read, and (filtered) how many messages of any
    kind arrived after `all_after`: a range of the primary key, however large the log."""
    fresh = page_messages(conn, after_id=after_id, limit=limit, filters=filters)
    updated = messages_by_id(conn, visible)
    if all_after is None or not filters.active:
        all_new = len(fresh)
        all_top = fresh[0].id if fresh else (after_id if all_after is None else all_after)
    else:
        all_new, all_top = count_since(conn, all_after)
    return LogUpdate(fresh, updated, int(all_new), all_top)


@dataclass(frozen=True)
class Versions:
    """Where what the TUI shows stands, and the receiver's heartbeat, apart (store/schema.py 14).

    `content` moves with every change a view shows: the newest id of each table that is only
    added to (messages, replies, delivery reports, ledger entries, review items, lost pulls), the
    credentials' version and the content version (both kept by triggers) for rows changed in
    place (a credential; a reply sent or delivered, consent, a review decided). Profiles,
    attributes and traffic counts change only with a new message. The heartbeat (a running
    `smsdesk serve` commits one every 30 s) is none of these: a TUI that sees only it moved
    re-reads nothing."""

    content: tuple[Any, ...]
    heartbeat: str | None


def versions(conn: sqlite3.Connection) -> Versions:
    """One statement, one snapshot; each part a keyed search or the end of a primary key."""
    *content, heartbeat = conn.execute(
        "SELECT (SELECT MAX(id) FROM messages), (SELECT MAX(id) FROM outbox), (SELECT MAX(id) FROM delivery_reports), "
        "(SELECT MAX(id) FROM consent_ledger), (SELECT MAX(id) FROM review_queue), (SELECT MAX(id) FROM pull_losses), "
        "(SELECT version FROM credentials_version WHERE id = 1), (SELECT version FROM content_version WHERE id = 1), "
        "(SELECT at FROM receiver_heartbeat WHERE id = 1)").fetchone()
    return Versions(tuple(content), heartbeat)


def receiver_heartbeat_at(conn: sqlite3.Connection) -> str | None:
    """When a running `smsdesk serve` last recorded it was alive on this file (store/heartbeat.py), or None."""
    row = conn.execute("SELECT at FROM receiver_heartbeat WHERE id = 1").fetchone()
    return row[0] if row else None


def max_message_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])


def messages_by_id(conn: sqlite3.Connection, ids: list[int]) -> dict[int, MessageRow]:
    """The rows with these ids, read 500 at a time (SQLite's bound-parameter limit)."""
    found: dict[int, MessageRow] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" for _ in chunk)
        for row in conn.execute(f"SELECT {MESSAGE_COLUMNS} {_FROM} WHERE m.id IN ({marks})", chunk):
            found[row[0]] = MessageRow(*row)
    return found


def messages_of(conn: sqlite3.Connection, sandbox: str, number: str, limit: int = 50) -> list[MessageRow]:
    """Newest first, exactly this number in this sandbox: a LIKE on the number would also list
    the messages of every longer number that contains it (another person's evidence)."""
    return [MessageRow(*row) for row in conn.execute(
        f"SELECT {MESSAGE_COLUMNS} {_FROM} WHERE m.from_number = ? AND m.sandbox = ? ORDER BY m.id DESC LIMIT ?",
        (number, sandbox, limit))]


@dataclass(frozen=True)
class DeliveryReport:
    group_name: str
    detail: str
    done_at: str  # Infobip's doneAt in UTC, or '' when the report had none
    received_at: str
    applied: bool  # False: kept, but it did not move the reply (not newer than what was shown)


def delivery_reports_of(conn: sqlite3.Connection, outbox_id: int, limit: int = 50) -> list[DeliveryReport]:
    """Every delivery report of one reply, in arrival order (the first `limit`)."""
    return [DeliveryReport(group, detail, done_at, received_at, bool(applied)) for group, detail, done_at, received_at,
            applied in conn.execute(
                "SELECT group_name, detail, done_at, received_at, applied FROM delivery_reports WHERE outbox_id = ? "
                "ORDER BY id LIMIT ?", (outbox_id, limit))]


@dataclass(frozen=True)
class Profile:
    sandbox: str
    number: str
    consent: str
    first_seen: str
    last_seen: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)


# The orders the profiles view offers (`s` cycles through them), each done by SQLite over every
# matching profile before the LIMIT, so the first page is the first of all of them.
PROFILE_ORDERS = {
    "sandbox": "p.sandbox, p.number",
    "number": "p.number, p.sandbox",
    "consent": "COALESCE(c.consent, '') = '', c.consent, p.number",  # never expressed last
    "attributes": ("(SELECT COALESCE(SUM(a.count), 0) FROM profile_attributes a WHERE a.sandbox = p.sandbox "
                   "AND a.number = p.number) DESC, p.number"),  # the most keywords sent first
    "first seen": "p.first_seen, p.number",
    "last seen": "p.last_seen DESC, p.number",  # most recent contact first
}


# Every profile with its number's consent in its sandbox (none: no row, shown as '').
_PROFILES = "profiles p LEFT JOIN consent c ON c.sandbox = p.sandbox AND c.number = p.number"
_PROFILE_COLUMNS = "p.sandbox, p.number, COALESCE(c.consent, ''), p.first_seen, p.last_seen"


def _matching_profiles(sandbox: str = "", consent: str | None = None, attribute: str = "",
                       number: str = "") -> tuple[str, list[Any]]:
    """FROM ... WHERE of the profiles a filter selects, and its parameters."""
    clauses, params = _profile_filter(sandbox, consent, attribute, number)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"FROM {_PROFILES}{where}", params


def list_profiles(conn: sqlite3.Connection, *, sandbox: str = "", consent: str | None = None,
                  attribute: str = "", number: str = "", limit: int = 500, offset: int = 0,
                  order: str = "last seen") -> list[Profile]:
    """consent: None = any, '' = never expressed, or y/n/p. attribute: a segment by custom keyword.
    order: one of PROFILE_ORDERS."""
    source, params = _matching_profiles(sandbox, consent, attribute, number)
    rows = conn.execute(f"SELECT {_PROFILE_COLUMNS} {source} ORDER BY {PROFILE_ORDERS[order]} LIMIT ? OFFSET ?",
                        (*params, limit, offset)).fetchall()
    profiles = [Profile(*row) for row in rows]
    found = attributes_of_many(conn, [(p.sandbox, p.number) for p in profiles])
    for profile in profiles:
        profile.attributes.update(found.get((profile.sandbox, profile.number), {}))
    return profiles


def profile_of(conn: sqlite3.Connection, sandbox: str, number: str) -> Profile | None:
    """One number's profile in one sandbox (exactly), or None."""
    row = conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM {_PROFILES} WHERE p.sandbox = ? AND p.number = ?",
                       (sandbox, number)).fetchone()
    if row is None:
        return None
    profile = Profile(*row)
    profile.attributes.update(attributes_of(conn, sandbox, number))
    return profile


def count_profiles(conn: sqlite3.Connection, *, sandbox: str = "", consent: str | None = None,
                   attribute: str = "", number: str = "") -> int:
    source, params = _matching_profiles(sandbox, consent, attribute, number)
    return int(conn.execute(f"SELECT COUNT(*) {source}", params).fetchone()[0])


def count_profiles_up_to(conn: sqlite3.Connection, cap: int, **filters: Any) -> tuple[int, bool]:
    """How many profiles match, walking at most `cap` + 1 of them, and whether more match than
    `cap` ("more than"): a consent or segment filter has no index that counts it, and counting
    every match read 0.68 s of 500,000 profiles at 5M messages."""
    source, params = _matching_profiles(**filters)
    found = int(conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 {source} LIMIT ?)", (*params, cap + 1)).fetchone()[0])
    return min(found, cap), found > cap


def _profile_filter(sandbox: str, consent: str | None, attribute: str, number: str) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if sandbox:
        clauses.append("p.sandbox = ?")
        params.append(sandbox)
    if consent is not None:
        clauses.append("COALESCE(c.consent, '') = ?")
        params.append(consent)
    if attribute:
        clauses.append("EXISTS (SELECT 1 FROM profile_attributes a WHERE a.sandbox = p.sandbox "
                       "AND a.number = p.number AND a.name = ? COLLATE NOCASE)")
        params.append(attribute)
    if number:
        clauses.append("p.number LIKE ?")
        params.append(f"%{number}%")
    return clauses, params


def attributes_of(conn: sqlite3.Connection, sandbox: str, number: str) -> dict[str, dict[str, Any]]:
    return {
        name: {"first_at": first, "last_at": last, "count": count}
        for name, first, last, count in conn.execute(
            "SELECT name, first_at, last_at, count FROM profile_attributes WHERE sandbox = ? AND number = ? "
            "ORDER BY name", (sandbox, number))
    }


# Pairs of (sandbox, number) per statement: two bound parameters each, under the 999 that
# SQLite builds before 3.32 allow; a page of profiles (500) takes two statements.
_KEYS_PER_STATEMENT = 450


def attributes_of_many(conn: sqlite3.Connection,
                       keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """`attributes_of` for many numbers at once: one statement per 450 of them, each number a
    search of the primary key (the keys are a constant table joined to it). The primary key is
    named: without it the planner built an AUTOMATIC index over every attribute row on each call
    (0.27 s a page at 5M messages, against 2 ms); `(sandbox, number) IN (VALUES ...)` read the
    whole table."""
    found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for start in range(0, len(keys), _KEYS_PER_STATEMENT):
        chunk = keys[start:start + _KEYS_PER_STATEMENT]
        values = ",".join("(?, ?)" for _ in chunk)
        for sandbox, number, name, first, last, count in conn.execute(
                f"WITH k(sandbox, number) AS (VALUES {values}) "
                "SELECT a.sandbox, a.number, a.name, a.first_at, a.last_at, a.count FROM k "
                "CROSS JOIN profile_attributes a INDEXED BY sqlite_autoindex_profile_attributes_1 "
                "ON a.sandbox = k.sandbox AND a.number = k.number "
                "ORDER BY a.sandbox, a.number, a.name", [part for key in chunk for part in key]):
            found.setdefault((sandbox, number), {})[name] = {"first_at": first, "last_at": last, "count": count}
    return found


def attribute_names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT name FROM profile_attributes ORDER BY name")]


def consent_ledger(conn: sqlite3.Connection, sandbox: str, number: str) -> list[dict[str, Any]]:
    cursor = conn.execute(
        "SELECT id, at, old, new, message_row_id, reason, received_at, effect, operator FROM consent_ledger "
        "WHERE sandbox = ? AND number = ? "
        "ORDER BY id", (sandbox, number))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _export_source(conn: sqlite3.Connection, filters: MessageFilter | None) -> tuple[str, list[Any]]:
    """FROM ... ORDER BY of an export: every match, oldest first, through the search's index (the
    trigram index in its own order) or along the primary key (an export reads whole tables)."""
    search = (filters or MessageFilter()).search(conn)
    if search.names:  # credentials' ranges are merged for pages; an export reads in id order
        search = Search(search.source, search.key, [*search.clauses,
                        f"m.credential IN ({','.join('?' * len(search.names))})"], [*search.params, *search.names])
    if search.indexed_upto is not None:  # the index up to its mark and the newer messages, as one set of ids
        ids, params = matching_ids(search, [], [])
        return f"FROM messages m LEFT JOIN outbox o ON o.id = m.reply_id WHERE m.id IN ({ids}) ORDER BY m.id", params
    return (f"FROM {search.source} LEFT JOIN outbox o ON o.id = m.reply_id {search.where()} ORDER BY {search.key}",
            search.params)


MESSAGE_EXPORT_KEYS = ("id", "message_id", "received_at", "credential", "sandbox", "from", "to", "text", "action",
                       "keyword", "consent_before", "consent_after", "reply_text", "reply_status", "reply_reason")


def iter_message_export_rows(conn: sqlite3.Connection, filters: MessageFilter | None = None) -> Iterator[tuple]:
    """Export rows as tuples in MESSAGE_EXPORT_KEYS order, oldest first, streamed (a cursor,
    fetched in batches); only those matching `filters` when given."""
    source, params = _export_source(conn, filters)
    cursor = conn.execute(
        "SELECT m.id, m.message_id, m.received_at, m.credential, m.sandbox, m.from_number, m.to_number, m.text, "
        f"m.action, m.keyword, m.consent_before, m.consent_after, o.text, o.status, o.last_error {source}", params)
    while batch := cursor.fetchmany(1000):
        yield from batch


_EXPORT_VALUES = ("m.id", "json_quote(m.message_id)", "json_quote(m.received_at)", "json_quote(m.credential)",
                  "json_quote(m.sandbox)", "json_quote(m.from_number)", "json_quote(m.to_number)",
                  "json_quote(m.text)", "json_quote(m.action)", "json_quote(m.keyword)",
                  "json_quote(m.consent_before)", "json_quote(m.consent_after)", "json_quote(o.text)",
                  "json_quote(o.status)", "json_quote(o.last_error)")
# One export line as json.dumps(ensure_ascii=False) writes the row's dict: its keys and separators
# as constant strings, each value JSON-encoded by SQLite, concatenated (16% faster than a printf
# format parsed for every row). json_quote escapes exactly what json.dumps escapes (", \\, \b \f
# \n \r \t, other C0 controls as \u00xx, nothing else) and writes NULL as the text null, so no part
# is ever NULL; the id is an integer. tests/integration/test_export_lines.py holds the two to the
# same bytes.
_EXPORT_LINE = " || ".join(
    f"'{'{' if i == 0 else ', '}{json.dumps(key)}: ' || {value}"
    for i, (key, value) in enumerate(zip(MESSAGE_EXPORT_KEYS, _EXPORT_VALUES, strict=True))) + " || '}'"


def iter_message_export_json(conn: sqlite3.Connection, filters: MessageFilter | None = None,
                             lines_per_block: int = 2000) -> Iterator[str]:
    """The export as JSON Lines, in blocks of lines each ending with a newline, oldest first,
    streamed: what json.dumps(ensure_ascii=False) writes for each of `iter_message_export`'s rows,
    built by SQLite, one string a row (a dict and json.dumps per row cost five times SQLite's own
    JSON output). Not yet inert: usecases/exports.py write_json_blocks makes it so."""
    source, params = _export_source(conn, filters)
    cursor = conn.execute(f"SELECT {_EXPORT_LINE} {source}", params)
    while batch := cursor.fetchmany(lines_per_block):
        yield "\n".join([line for (line,) in batch]) + "\n"


def iter_message_export(conn: sqlite3.Connection, filters: MessageFilter | None = None) -> Iterator[dict[str, Any]]:
    """Export rows in DESIGN.md's column order, oldest first, streamed; only those matching
    `filters` when given (the TUI exports what its log shows)."""
    for row in iter_message_export_rows(conn, filters):
        yield dict(zip(MESSAGE_EXPORT_KEYS, row, strict=True))


def iter_consent_export(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    for sandbox, number, consent, changed_at in conn.execute(
            "SELECT sandbox, number, consent, changed_at FROM consent ORDER BY sandbox, number"):
        yield {"sandbox": sandbox, "number": number, "consent": consent, "changed_at": changed_at}


def iter_profile_export(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every profile with its attributes, streamed: profiles and their attributes are read side by
    side in the same (sandbox, number) order, each down its primary key, so memory stays flat."""
    profiles = conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM {_PROFILES} ORDER BY p.sandbox, p.number")
    attributes = conn.execute("SELECT sandbox, number, name, first_at, last_at, count FROM profile_attributes "
                              "ORDER BY sandbox, number, name")
    pending = attributes.fetchone()
    for sandbox, number, consent, first_seen, last_seen in profiles:
        key = (sandbox, number)
        found: dict[str, dict[str, Any]] = {}
        while pending is not None and (pending[0], pending[1]) <= key:
            if (pending[0], pending[1]) == key:  # (an attribute of a number with no profile is skipped)
                found[pending[2]] = {"first_at": pending[3], "last_at": pending[4], "count": pending[5]}
            pending = attributes.fetchone()
        yield {"sandbox": sandbox, "number": number, "consent": consent, "attributes": found,
               "first_seen": first_seen, "last_seen": last_seen}


def json_cell(value: Any) -> Any:
    """CSV cells: nested objects as JSON text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else value


@dataclass(frozen=True)
class Traffic:
    per_minute: list[int]  # oldest first, one bucket per minute of the last hour
    today_by_action: dict[str, int]


def traffic(conn: sqlite3.Connection, now: datetime | None = None, minutes: int = 60) -> Traffic:
    """Inbound per minute over the last hour and per action since UTC midnight, from the
    per-minute counts the writer keeps (a few hundred rows, however busy the hour was)."""
    moment = now or datetime.now(UTC)
    start = (moment - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    buckets = [0] * minutes
    for minute, count in conn.execute(
            "SELECT minute, SUM(count) FROM traffic WHERE minute >= ? GROUP BY minute", (_minute(start),)):
        index = int((datetime.fromisoformat(minute + ":00+00:00") - start).total_seconds() // 60)
        if 0 <= index < minutes:
            buckets[index] += count
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    by_action = dict(conn.execute(
        "SELECT action, SUM(count) FROM traffic WHERE minute >= ? GROUP BY action", (_minute(midnight),)).fetchall())
    return Traffic(buckets, by_action)


def _minute(moment: datetime) -> str:
    """The traffic table's key: UTC, to the minute, as the writer cuts it from stored_at."""
    return moment.astimezone(UTC).isoformat(timespec="minutes")[:16]


# The impact preview's read (domain/impact.py decides the rows again): reads only.
def recent_messages(conn: sqlite3.Connection, credential_id: int, since: str) -> list[tuple[str, str, str, str]]:
    """(text, consent_before, action, keyword) of the credential's messages received since `since`.

    Read from a range of the primary key: ids follow the time messages were stored, so the first
    id stored a day before `since` is found by bisection (a keyed read per step), and only the
    rows after it are read, not every message (a day's margin for receivedAt that trails arrival)."""
    start = first_id_stored_since(conn, _day_before(since))
    return conn.execute(
        "SELECT text, consent_before, action, keyword FROM messages "
        "WHERE id >= ? AND credential_id = ? AND received_at >= ?",
        (start, credential_id, since)).fetchall()


def _day_before(moment: str) -> str:
    return (datetime.fromisoformat(moment) - timedelta(days=1)).isoformat(timespec="milliseconds")


def first_id_stored_since(conn: sqlite3.Connection, moment: str) -> int:
    """The lowest message id whose stored_at is at or after `moment` (ids grow with stored_at), or
    one past the newest: a bisection over the primary key, some 25 keyed reads for 5M rows."""
    # MIN and MAX apart: together in one statement SQLite reads every row for them.
    low = conn.execute("SELECT COALESCE(MIN(id), 1) FROM messages").fetchone()[0]
    high = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM messages").fetchone()[0]
    while low < high:
        middle = (low + high) // 2
        row = conn.execute("SELECT id, stored_at FROM messages WHERE id >= ? ORDER BY id LIMIT 1",
                           (middle,)).fetchone()
        if row is None or _utc(row[1]) >= _utc(moment):
            high = middle
        else:
            low = row[0] + 1
    return int(low)


def _utc(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def impact_preview(conn: sqlite3.Connection, credential_id: int, edited: Credential,
                   now: datetime | None = None, days: int = DAYS) -> Impact:
    """A read for the data service: the last `days` days of `credential_id` against `edited`."""
    since = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="milliseconds")
    impact = compare(recent_messages(conn, credential_id, since), edited)
    impact.since = since
    return impact
