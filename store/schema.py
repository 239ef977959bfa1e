"""Schema migrations: an ordered list, applied forward, recorded in schema_version."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Sequence[str]


# The traffic table's counts, from the messages themselves (store/inbound.py keeps them up to
# date per batch; the minute is stored_at cut to 16 characters, 2026-11-27T10:15).
COUNT_TRAFFIC = """INSERT INTO traffic (minute, action, count)
    SELECT substr(stored_at, 1, 16), action, COUNT(*) FROM messages GROUP BY 1, 2"""


def recount_traffic(conn: sqlite3.Connection) -> None:
    """Rebuild the traffic counts from the messages (for rows written around the writer)."""
    conn.execute("DELETE FROM traffic")
    conn.execute(COUNT_TRAFFIC)


# Migration 1 created it without AUTOINCREMENT, which lets SQLite hand a deleted credential's id
# to the next one; migration 4 rebuilds it with AUTOINCREMENT (docs/architecture.md, "Ids").
_CREDENTIALS_TABLE = """CREATE TABLE {name} (
                id INTEGER PRIMARY KEY{autoincrement},
                name TEXT NOT NULL,
                name_key TEXT NOT NULL UNIQUE,
                provider TEXT NOT NULL,
                sandbox TEXT NOT NULL,
                base_url TEXT NOT NULL,
                api_key TEXT NOT NULL,
                sender TEXT NOT NULL DEFAULT '',
                opt_in_keywords TEXT NOT NULL,
                opt_in_message TEXT NOT NULL DEFAULT '',
                opt_out_keywords TEXT NOT NULL,
                opt_out_message TEXT NOT NULL DEFAULT '',
                help_keywords TEXT NOT NULL,
                help_message TEXT NOT NULL DEFAULT '',
                double_opt_in_keywords TEXT NOT NULL,
                double_opt_in_message TEXT NOT NULL DEFAULT '',
                principal_entity_id TEXT NOT NULL DEFAULT '',
                content_template_id TEXT NOT NULL DEFAULT '',
                validity_period_hours INTEGER NOT NULL DEFAULT 48,
                callback_data TEXT NOT NULL DEFAULT '',
                inbound_number TEXT NOT NULL DEFAULT '',
                inbound_keywords TEXT NOT NULL,
                default_reply_message TEXT NOT NULL DEFAULT '',
                inbound_mode TEXT NOT NULL DEFAULT 'forward',
                version INTEGER NOT NULL DEFAULT 1,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "credentials and audit",
        (
            _CREDENTIALS_TABLE.format(name="credentials", autoincrement=""),
            """CREATE UNIQUE INDEX credentials_inbound_number
                ON credentials(inbound_number) WHERE inbound_number != ''""",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                os_user TEXT NOT NULL,
                action TEXT NOT NULL,
                credential_id INTEGER,
                credential_name TEXT NOT NULL,
                fields TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "inbound messages, consent, profiles, outbox",
        (
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                message_id TEXT NOT NULL UNIQUE,
                received_at TEXT NOT NULL,
                stored_at TEXT NOT NULL,
                credential_id INTEGER,
                credential TEXT NOT NULL DEFAULT '',
                sandbox TEXT NOT NULL DEFAULT '',
                from_number TEXT NOT NULL,
                to_number TEXT NOT NULL,
                text TEXT NOT NULL,
                normalized TEXT NOT NULL,
                action TEXT NOT NULL,
                keyword TEXT NOT NULL DEFAULT '',
                rule TEXT NOT NULL DEFAULT '',
                consent_before TEXT NOT NULL DEFAULT '',
                consent_after TEXT NOT NULL DEFAULT '',
                reply_id INTEGER,
                source TEXT NOT NULL DEFAULT 'forward'
            )""",
            "CREATE INDEX messages_credential ON messages(credential, id)",
            "CREATE INDEX messages_action ON messages(action, id)",
            "CREATE INDEX messages_from ON messages(from_number, id)",
            "CREATE INDEX messages_stored_at ON messages(stored_at, action)",
            """CREATE TABLE consent (
                sandbox TEXT NOT NULL,
                number TEXT NOT NULL,
                consent TEXT NOT NULL CHECK (consent IN ('y', 'n', 'p')),
                changed_at TEXT NOT NULL,
                PRIMARY KEY (sandbox, number)
            )""",
            """CREATE TABLE consent_ledger (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                sandbox TEXT NOT NULL,
                number TEXT NOT NULL,
                old TEXT NOT NULL DEFAULT '',
                new TEXT NOT NULL,
                message_row_id INTEGER,
                reason TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX consent_ledger_number ON consent_ledger(sandbox, number, id)",
            """CREATE TABLE profiles (
                sandbox TEXT NOT NULL,
                number TEXT NOT NULL,
                first_seen TEXT NOT NULL,
                last_seen TEXT NOT NULL,
                PRIMARY KEY (sandbox, number)
            )""",
            """CREATE TABLE profile_attributes (
                sandbox TEXT NOT NULL,
                number TEXT NOT NULL,
                name TEXT NOT NULL,
                first_at TEXT NOT NULL,
                last_at TEXT NOT NULL,
                count INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (sandbox, number, name)
            )""",
            "CREATE INDEX profile_attributes_name ON profile_attributes(sandbox, name)",
            """CREATE TABLE outbox (
                id INTEGER PRIMARY KEY,
                message_row_id INTEGER,
                credential_id INTEGER NOT NULL,
                our_message_id TEXT NOT NULL UNIQUE,
                sender TEXT NOT NULL,
                to_number TEXT NOT NULL,
                text TEXT NOT NULL,
                validity_period_hours INTEGER NOT NULL,
                callback_data TEXT NOT NULL DEFAULT '',
                principal_entity_id TEXT NOT NULL DEFAULT '',
                content_template_id TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL DEFAULT 'queued',
                infobip_message_id TEXT NOT NULL DEFAULT '',
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL DEFAULT 0,
                last_error TEXT NOT NULL DEFAULT '',
                delivery_status TEXT NOT NULL DEFAULT '',
                delivery_detail TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX outbox_pending ON outbox(status, next_attempt_at)",
            "CREATE INDEX outbox_infobip_id ON outbox(infobip_message_id)",
        ),
    ),
    Migration(
        3,
        "traffic counted per minute and action instead of indexed per message",
        (
            # The traffic strip reads an hour of minutes, not an hour of messages, and the ingest
            # path updates one row per minute and action per batch instead of one index entry per
            # message (an index on stored_at was a large share of each insert: bench/ingest.py).
            """CREATE TABLE traffic (
                minute TEXT NOT NULL,
                action TEXT NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (minute, action)
            ) WITHOUT ROWID""",
            COUNT_TRAFFIC,
            "DROP INDEX messages_stored_at",
        ),
    ),
    Migration(
        4,
        "ids never reused; replies tied to their credential, number and kind; consent by receivedAt",
        (
            # Credentials: rebuilt with AUTOINCREMENT, its sequence starting above every id that
            # any row has ever pointed at, so a reply or message can never name a newer account.
            _CREDENTIALS_TABLE.format(name="credentials_v4", autoincrement=" AUTOINCREMENT"),
            "INSERT INTO credentials_v4 SELECT * FROM credentials",
            "DROP TABLE credentials",
            "ALTER TABLE credentials_v4 RENAME TO credentials",
            """CREATE UNIQUE INDEX credentials_inbound_number
                ON credentials(inbound_number) WHERE inbound_number != ''""",
            "DELETE FROM sqlite_sequence WHERE name IN ('credentials', 'credentials_v4')",
            """INSERT INTO sqlite_sequence (name, seq) SELECT 'credentials', COALESCE(MAX(top), 0) FROM (
                SELECT MAX(id) AS top FROM credentials UNION ALL SELECT MAX(credential_id) FROM audit
                UNION ALL SELECT MAX(credential_id) FROM messages UNION ALL SELECT MAX(credential_id) FROM outbox)""",
            # Messages and replies are evidence and are never deleted; the writer numbers new rows
            # MAX(id) + 1, which can only reuse an id if a row is deleted, so deleting is refused.
            """CREATE TRIGGER messages_are_kept BEFORE DELETE ON messages
                BEGIN SELECT RAISE(ABORT, 'messages are kept: their ids must never be reused'); END""",
            """CREATE TRIGGER replies_are_kept BEFORE DELETE ON outbox
                BEGIN SELECT RAISE(ABORT, 'replies are kept: their ids must never be reused'); END""",
            # What a reply is for (the action of its message), whose consent governs it, and the
            # name of the account it was queued for (kept when the credential is deleted).
            "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE outbox ADD COLUMN sandbox TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE outbox ADD COLUMN credential_name TEXT NOT NULL DEFAULT ''",
            """UPDATE outbox SET (kind, sandbox, credential_name) =
                (SELECT m.action, m.sandbox, m.credential FROM messages m WHERE m.id = outbox.message_row_id)
                WHERE message_row_id IS NOT NULL""",
            "CREATE INDEX outbox_number ON outbox(to_number, credential_id, id)",
            # Consent follows Infobip's receivedAt: the time of the message behind each change.
            "ALTER TABLE consent ADD COLUMN received_at TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE consent_ledger ADD COLUMN received_at TEXT NOT NULL DEFAULT ''",
            # changed: the entry moved consent; reaffirmed: the keyword repeated the consent in force
            # (its time is now the number's latest wish); overruled: older than the change in
            # force, stored as evidence and not applied.
            """ALTER TABLE consent_ledger ADD COLUMN effect TEXT NOT NULL DEFAULT 'changed'
                CHECK (effect IN ('changed', 'reaffirmed', 'overruled'))""",
            """UPDATE consent_ledger SET received_at =
                COALESCE((SELECT m.received_at FROM messages m WHERE m.id = consent_ledger.message_row_id), at)""",
            """UPDATE consent SET received_at = COALESCE((SELECT l.received_at FROM consent_ledger l
                WHERE l.sandbox = consent.sandbox AND l.number = consent.number ORDER BY l.id DESC LIMIT 1),
                changed_at)""",
        ),
    ),
    Migration(
        5,
        "every delivery report kept, not only the latest",
        (
            # One row per report of one of our replies, in arrival order: the intermediate ones
            # (ACCEPTED, PENDING) and the late ones that no longer move the reply's status.
            # `applied` says whether this report is the one the reply's shown status came from.
            """CREATE TABLE delivery_reports (
                id INTEGER PRIMARY KEY,
                outbox_id INTEGER NOT NULL,
                message_id TEXT NOT NULL,
                group_name TEXT NOT NULL,
                detail TEXT NOT NULL DEFAULT '',
                done_at TEXT NOT NULL DEFAULT '',
                received_at TEXT NOT NULL,
                applied INTEGER NOT NULL DEFAULT 0
            )""",
            # A report Infobip posts again (its retry after our 503 that had committed) or that
            # is pulled twice is recorded once.
            """CREATE UNIQUE INDEX delivery_reports_once
                ON delivery_reports(outbox_id, message_id, group_name, detail, done_at)""",
        ),
    ),
)

# Migration 6 rebuilds the ledger (SQLite cannot change a CHECK in place) with two more effects
# and the operator who made a decision by hand.
_LEDGER_V6 = """CREATE TABLE consent_ledger_v6 (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                sandbox TEXT NOT NULL,
                number TEXT NOT NULL,
                old TEXT NOT NULL DEFAULT '',
                new TEXT NOT NULL,
                message_row_id INTEGER,
                reason TEXT NOT NULL DEFAULT '',
                received_at TEXT NOT NULL DEFAULT '',
                effect TEXT NOT NULL DEFAULT 'changed'
                    CHECK (effect IN ('changed', 'reaffirmed', 'overruled', 'dismissed', 'expired')),
                operator TEXT NOT NULL DEFAULT ''
            )"""

MIGRATIONS = (*MIGRATIONS, Migration(
    6,
    "keyword engine 2: custom keyword replies, fuzzy opt-out and its review queue, double opt-in expiry",
    (
        "ALTER TABLE credentials ADD COLUMN custom_keyword_replies TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE credentials ADD COLUMN fuzzy_opt_out TEXT NOT NULL DEFAULT 'off'",
        "ALTER TABLE credentials ADD COLUMN fuzzy_opt_out_message TEXT NOT NULL DEFAULT 'Reply STOP to unsubscribe.'",
        "ALTER TABLE credentials ADD COLUMN double_opt_in_expiry_days INTEGER NOT NULL DEFAULT 30",
        # dismissed: an operator decided a near miss was no opt-out (consent unchanged);
        # expired: a pending double opt-in not confirmed in time went back to the consent before it.
        _LEDGER_V6,
        """INSERT INTO consent_ledger_v6 (id, at, sandbox, number, old, new, message_row_id, reason, received_at,
            effect) SELECT id, at, sandbox, number, old, new, message_row_id, reason, received_at, effect
            FROM consent_ledger""",
        "DROP TABLE consent_ledger",
        "ALTER TABLE consent_ledger_v6 RENAME TO consent_ledger",
        "CREATE INDEX consent_ledger_number ON consent_ledger(sandbox, number, id)",
        # Near misses waiting for an operator (fuzzy_opt_out review modes), one per message.
        """CREATE TABLE review_queue (
            id INTEGER PRIMARY KEY,
            message_row_id INTEGER NOT NULL UNIQUE,
            credential_id INTEGER,
            credential TEXT NOT NULL DEFAULT '',
            sandbox TEXT NOT NULL,
            number TEXT NOT NULL,
            text TEXT NOT NULL,
            keyword TEXT NOT NULL DEFAULT '',
            received_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'opted-out', 'dismissed')),
            resolved_at TEXT NOT NULL DEFAULT '',
            resolved_by TEXT NOT NULL DEFAULT '',
            ledger_id INTEGER
        )""",
        "CREATE INDEX review_queue_open ON review_queue(status, received_at, id)",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    7,
    "receiver heartbeat",
    (
        # One row: when a running `smsdesk serve` last showed it could write to this file
        # (store/heartbeat.py record_heartbeat, every HEARTBEAT_SECONDS). The TUI's empty log
        # tells "a receiver is running" from it, not from the newest message.
        """CREATE TABLE receiver_heartbeat (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            at TEXT NOT NULL,
            pid INTEGER NOT NULL DEFAULT 0
        )""",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    8,
    "no index on messages.credential",
    (
        # No query can use it: the log filters credentials by a case-blind prefix (LIKE), which
        # SQLite cannot answer from an index of a BINARY column. Every stored message paid for
        # one more B-tree insert and one more page written at each commit.
        "DROP INDEX IF EXISTS messages_credential",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    9,
    "pending consent indexed for the double opt-in expiry sweep",
    (
        # The sweep (store/expiry.py, every few minutes in serve, holding the write lock) looks at
        # every pending number; without this it read the whole consent table, every subscriber,
        # to find them. Partial: only pending rows are in it, so keeping it costs writes of
        # pending consent only.
        "CREATE INDEX consent_pending ON consent(sandbox, number) WHERE consent = 'p'",
    ),
))

_BUMP_CREDENTIALS_VERSION = "UPDATE credentials_version SET version = version + 1 WHERE id = 1"

MIGRATIONS = (*MIGRATIONS, Migration(
    10,
    "a version number of the credentials, kept by triggers, for the route table's check",
    (
        # The writer's route table (store/inbound.py) checks for every webhook whether a credential
        # changed. It used to aggregate the whole credentials table for that: 157 us per webhook
        # with 1,001 credentials, half of a webhook's own cost. One keyed read instead. A migration
        # that rebuilds `credentials` drops these triggers with the old table: it must create them again.
        "CREATE TABLE credentials_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
        "INSERT INTO credentials_version (id, version) VALUES (1, 0)",
        f"CREATE TRIGGER credentials_inserted AFTER INSERT ON credentials BEGIN {_BUMP_CREDENTIALS_VERSION}; END",
        f"CREATE TRIGGER credentials_updated AFTER UPDATE ON credentials BEGIN {_BUMP_CREDENTIALS_VERSION}; END",
        f"CREATE TRIGGER credentials_deleted AFTER DELETE ON credentials BEGIN {_BUMP_CREDENTIALS_VERSION}; END",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    11,
    "the action index leaves out `default`, the action of most messages",
    (
        # Every stored message paid for an entry in it, and a WAL page at each commit, for a filter
        # that, for `default`, matches most rows anyway: the log finds them reading in id order.
        # The filter for any other action (opt-out, help, review) stays an index search
        # (store/queries.py, MessageFilter).
        "DROP INDEX IF EXISTS messages_action",
        "CREATE INDEX messages_action ON messages(action, id) WHERE action <> 'default'",
    ),
))


MIGRATIONS = (*MIGRATIONS, Migration(
    12,
    "consent keeps its wishes and never loses a row; the ledger names each event; clock and input problems kept",
    (
        # '' is a consent now (a double opt-in that expired): the row stays, with the time of the
        # expiry and the history a late confirmation or opt-out is folded into
        # (domain/consent_decider.py). `history` is JSON, '' for rows written before it (read as
        # their one wish), `expires_at` the end of a pending opt-in's window.
        """CREATE TABLE consent_v12 (
            sandbox TEXT NOT NULL,
            number TEXT NOT NULL,
            consent TEXT NOT NULL CHECK (consent IN ('', 'y', 'n', 'p')),
            changed_at TEXT NOT NULL,
            received_at TEXT NOT NULL DEFAULT '',
            cause TEXT NOT NULL DEFAULT '',
            expires_at TEXT NOT NULL DEFAULT '',
            history TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (sandbox, number)
        )""",
        """INSERT INTO consent_v12 (sandbox, number, consent, changed_at, received_at)
            SELECT sandbox, number, consent, changed_at, received_at FROM consent""",
        "DROP TABLE consent",
        "ALTER TABLE consent_v12 RENAME TO consent",
        "CREATE INDEX consent_pending ON consent(sandbox, number) WHERE consent = 'p'",
        # The event each entry records, so that verification replays it through the decider:
        # what the wish asked for (y, n, p, c), the double opt-in days it came with, and its cause.
        "ALTER TABLE consent_ledger ADD COLUMN wish TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE consent_ledger ADD COLUMN expiry_days INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE consent_ledger ADD COLUMN cause TEXT NOT NULL DEFAULT ''",
        # A receivedAt too far ahead of the receiver's clock: the time the message was decided by
        # instead ('' when its receivedAt was used).
        "ALTER TABLE messages ADD COLUMN decided_at TEXT NOT NULL DEFAULT ''",
        # Inbound results that could not be read, kept raw for the operator instead of refusing
        # their neighbours (a STOP among them).
        """CREATE TABLE unreadable_inbound (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            raw TEXT NOT NULL
        )""",
    ),
))


MIGRATIONS = (*MIGRATIONS, Migration(
    13,
    "the sender's generation fences a dead serve's late writes; lost pull answers are kept for the operator",
    (
        # One row: the generation of the sender that owns the outbox now (writer/fencing.py). A
        # sender that starts moves it on before it touches what an earlier one left in flight;
        # a job of an older generation (a writer child of a serve that was killed, committing
        # when it finally gets the lock) then changes nothing. pid and started_at: for operators.
        """CREATE TABLE sender_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation INTEGER NOT NULL,
            pid INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL DEFAULT ''
        )""",
        "INSERT INTO sender_generation (id, generation) VALUES (1, 0)",
        # The generation that claimed a reply (0: claimed before 0.4, or never).
        "ALTER TABLE outbox ADD COLUMN sender_generation INTEGER NOT NULL DEFAULT 0",
        # Pulls whose answer was lost or could not be read (store/pull_losses.py): Infobip's inbox
        # pull is read-once, so what that answer held may be gone; the TUI and /healthz say so.
        """CREATE TABLE pull_losses (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            credential_id INTEGER NOT NULL,
            credential TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
    ),
))

_BUMP_CONTENT_VERSION = "UPDATE content_version SET version = version + 1 WHERE id = 1"

MIGRATIONS = (*MIGRATIONS, Migration(
    14,
    "a version number of the rows the TUI shows that change in place, kept by triggers",
    (
        # The TUI re-read every view after any commit, the receiver's heartbeat (every 30 s) included.
        # It now re-reads when what its views show moved (store/queries.py `versions`): the newest
        # id of each table that is only added to, the credentials' version, and this one, bumped
        # by every change in place of a reply (sent, delivered, cancelled), a consent row or a
        # review item. Not messages, profiles, attributes or traffic: they change with a new
        # message only, and a webhook's commit pays for no trigger. A migration that rebuilds
        # outbox, consent or review_queue drops these triggers with the old table: create them again.
        "CREATE TABLE content_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
        "INSERT INTO content_version (id, version) VALUES (1, 0)",
        f"CREATE TRIGGER outbox_changed AFTER UPDATE ON outbox BEGIN {_BUMP_CONTENT_VERSION}; END",
        f"CREATE TRIGGER consent_inserted AFTER INSERT ON consent BEGIN {_BUMP_CONTENT_VERSION}; END",
        f"CREATE TRIGGER consent_changed AFTER UPDATE ON consent BEGIN {_BUMP_CONTENT_VERSION}; END",
        f"CREATE TRIGGER consent_deleted AFTER DELETE ON consent BEGIN {_BUMP_CONTENT_VERSION}; END",
        f"CREATE TRIGGER review_queue_changed AFTER UPDATE ON review_queue BEGIN {_BUMP_CONTENT_VERSION}; END",
        f"CREATE TRIGGER review_queue_deleted AFTER DELETE ON review_queue BEGIN {_BUMP_CONTENT_VERSION}; END",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    15,
    "retention: old messages and replies may be purged, never the newest (ids are never reused)",
    (
        # Before, no message or reply could be deleted, so that SQLite never handed an id out
        # twice (an id is how the TUI and exports refer to a row). Ids come from MAX(id) + 1, so
        # deleting any row but the newest keeps that promise; store/retention.py deletes only rows
        # older than the retention period, in small transactions, and never the newest.
        "DROP TRIGGER messages_are_kept",
        "DROP TRIGGER replies_are_kept",
        """CREATE TRIGGER newest_message_is_kept BEFORE DELETE ON messages
            WHEN OLD.id >= (SELECT MAX(id) FROM messages)
            BEGIN SELECT RAISE(ABORT, 'the newest message is kept: its id must never be reused'); END""",
        """CREATE TRIGGER newest_reply_is_kept BEFORE DELETE ON outbox
            WHEN OLD.id >= (SELECT MAX(id) FROM outbox)
            BEGIN SELECT RAISE(ABORT, 'the newest reply is kept: its id must never be reused'); END""",
        # A purge keeps every message a ledger entry points at (the evidence of a consent change):
        # asked once per old message, so it needs an index.
        "CREATE INDEX consent_ledger_message ON consent_ledger(message_row_id) WHERE message_row_id IS NOT NULL",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    16,
    "indexes for reads at scale: the outbox claim, Profiles' default order, the ledger by time",
    (
        # The outbox claim (store/outbox.py claim_due) walks queued replies in id order and asks,
        # for each, whether its line has an earlier unfinished reply. Both read only unfinished
        # replies now: a backlog of queued ones, not every reply ever sent to the number.
        "CREATE INDEX outbox_queued ON outbox(id) WHERE status = 'queued'",
        """CREATE INDEX outbox_unfinished ON outbox(to_number, credential_id, id)
            WHERE status IN ('queued', 'sending', 'unknown')""",
        # Profiles open sorted by last contact: read in this order, 500 rows, no sort of them all.
        "CREATE INDEX profiles_last_seen ON profiles(last_seen DESC, number)",
        # `smsdesk export consent --since/--until` (store/consent_history.py) reads a window of time.
        "CREATE INDEX consent_ledger_received ON consent_ledger(received_at, id)",
    ),
))

MIGRATIONS = (*MIGRATIONS, Migration(
    17,
    "Infobip's Blocklist: each credential's sync setting, a durable queue of pushes, the last reconcile",
    (
        # off | push | two-way (domain/credential.py BlocklistSync)
        "ALTER TABLE credentials ADD COLUMN blocklist_sync TEXT NOT NULL DEFAULT 'off'",
        # Blocks and unblocks to push to Infobip (store/blocklist_queue.py), filled in the
        # transaction of the consent change (store/consent_store.py write_consent) and drained by
        # serve (engine/blocklist_sync.py): queued | sending | unknown | done | superseded | refused.
        """CREATE TABLE blocklist_queue (
            id INTEGER PRIMARY KEY,
            credential_id INTEGER NOT NULL,
            sandbox TEXT NOT NULL,
            number TEXT NOT NULL,
            sender TEXT NOT NULL,
            action TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            queued_ts REAL NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE INDEX blocklist_queue_open ON blocklist_queue(credential_id, number)
            WHERE status IN ('queued', 'sending', 'unknown')""",
        # The last `smsdesk consent reconcile` per credential (store/blocklist_reconcile.py), for the TUI.
        """CREATE TABLE blocklist_reconcile (
            credential_id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            applied INTEGER NOT NULL,
            blocked_there INTEGER NOT NULL,
            opted_out_here INTEGER NOT NULL,
            opted_in_after INTEGER NOT NULL,
            brought_here INTEGER NOT NULL,
            pushed INTEGER NOT NULL,
            error TEXT NOT NULL DEFAULT ''
        )""",
    ),
))

# The log's free-text and `num:` filters find substrings through this index instead of reading
# every message (store/message_search.py): FTS5's trigram tokenizer indexes every run of three
# characters, so a literal substring of three or more characters is a phrase of trigrams. External
# content: the index holds no copy of the texts, only the trigrams, read back by id from messages.
# Not kept in the webhook's transaction: an FTS5 insert writes a segment of its own at every
# commit, and one message per commit cost 22% of single-message ingest (bench/ingest.py
# --search-ab). serve indexes what is newer than `message_search_state.indexed_upto` in batches
# (store/message_search.py index_new_messages, every second), and a search reads the few newer
# messages by id with the LIKE. Deletes (retention's purge) and updates (nothing updates these
# columns today) of indexed messages are kept by triggers.
_SEARCHED = "text, from_number, to_number"
_NEW_SEARCHED = "new.text, new.from_number, new.to_number"
_OLD_SEARCHED = "old.text, old.from_number, old.to_number"
_OLD_INDEXED = "old.id <= (SELECT indexed_upto FROM message_search_state WHERE id = 1)"
SEARCH_TRIGGERS = (
    f"""CREATE TRIGGER messages_search_deleted AFTER DELETE ON messages WHEN {_OLD_INDEXED} BEGIN
        INSERT INTO messages_search (messages_search, rowid, {_SEARCHED}) VALUES ('delete', old.id, {_OLD_SEARCHED});
        END""",
    f"""CREATE TRIGGER messages_search_updated AFTER UPDATE OF {_SEARCHED} ON messages WHEN {_OLD_INDEXED} BEGIN
        INSERT INTO messages_search (messages_search, rowid, {_SEARCHED}) VALUES ('delete', old.id, {_OLD_SEARCHED});
        INSERT INTO messages_search (rowid, {_SEARCHED}) VALUES (new.id, {_NEW_SEARCHED}); END""",
)

MIGRATIONS = (*MIGRATIONS, Migration(
    18,
    "a trigram index of message texts and numbers for the log's substring filters; messages by credential again",
    (
        f"""CREATE VIRTUAL TABLE messages_search USING fts5({_SEARCHED}, content='messages', content_rowid='id',
            tokenize='trigram')""",
        # Every message up to `indexed_upto` is in the index; ids are never reused (schema 15).
        """CREATE TABLE message_search_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            indexed_upto INTEGER NOT NULL)""",
        # Every message stored before this version: 12.8 s and 193 MB for 1,000,000 messages, 69 s at 5M
        # (docs/architecture.md, "Reads at scale"); serve runs it once as it starts.
        "INSERT INTO messages_search (messages_search) VALUES ('rebuild')",
        "INSERT INTO message_search_state (id, indexed_upto) SELECT 1, COALESCE(MAX(id), 0) FROM messages",
        *SEARCH_TRIGGERS,
        # `cred:` (a prefix of the stored name, any case) reads each matching name's range of this
        # index, newest first, and counts them there; migration 8 dropped it when the filter was a
        # LIKE no index could answer.
        "CREATE INDEX IF NOT EXISTS messages_credential ON messages(credential, id)",
    ),
))

LATEST_VERSION = MIGRATIONS[-1].version
