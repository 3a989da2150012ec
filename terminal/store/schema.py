"""Schema of the terminal's SQLite file, as sqlite-utils migrations.

Migrations only ever add: a terminal in the field may upgrade with sales still queued, and
those rows must come through untouched.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("pos-terminal")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        -- One row: who this terminal is. The token is a credential: never logged or printed.
        CREATE TABLE device (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            device_id TEXT NOT NULL,
            device_token TEXT NOT NULL,
            school_id TEXT NOT NULL,
            currency TEXT NOT NULL,
            server_url TEXT NOT NULL,
            name TEXT NOT NULL,
            enrolled_at TEXT NOT NULL
        );

        -- One row: the seq counter lives alone so a sale's transaction touches nothing the
        -- sync thread writes (short, independent write transactions).
        CREATE TABLE seq_counter (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_seq INTEGER NOT NULL
        );
        INSERT INTO seq_counter (id, last_seq) VALUES (1, 0);

        -- One row: what the sync client knows about the server.
        CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            epoch INTEGER NOT NULL DEFAULT 0,      -- bumped before every snapshot request
            cursor TEXT,                           -- delta cursor of the last complete pull
            settings_json TEXT,                    -- the school's settings from the snapshot
            snapshot_at TEXT,                      -- local time the last pull completed
            snapshot_server_time TEXT,
            last_sync_at TEXT,                     -- last push + pull that both succeeded
            last_contact_at TEXT,
            last_contact_ok INTEGER,               -- NULL: never tried
            last_error TEXT,
            auth_problem TEXT,                     -- 'revoked' | 'unauthorized' | NULL
            acked_seq INTEGER NOT NULL DEFAULT 0,
            missing_seqs_json TEXT NOT NULL DEFAULT '[]'
        );
        INSERT INTO sync_state (id) VALUES (1);

        -- Terminal-local preferences (reader kind, …), never sent to the server.
        CREATE TABLE local_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        -- Snapshot tables. snapshot_epoch says which pull wrote the row (see outbox.py for
        -- why the balance estimate needs it).
        CREATE TABLE wallets (
            wallet_id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            balance INTEGER NOT NULL,
            daily_limit INTEGER,
            status TEXT NOT NULL,
            balance_as_of TEXT NOT NULL,
            snapshot_epoch INTEGER NOT NULL
        );
        CREATE TABLE credentials (
            uid TEXT PRIMARY KEY,
            wallet_id TEXT NOT NULL,
            status TEXT NOT NULL,
            snapshot_epoch INTEGER NOT NULL
        );
        CREATE TABLE products (
            product_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            price INTEGER NOT NULL,
            category TEXT NOT NULL,
            active INTEGER NOT NULL,
            snapshot_epoch INTEGER NOT NULL
        );
        CREATE TABLE cashiers (
            cashier_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            pin_hash TEXT NOT NULL,
            active INTEGER NOT NULL,
            snapshot_epoch INTEGER NOT NULL
        );

        -- The outbox: every sale and void ever recorded, kept after sync (history) with the
        -- last result the server gave. Rows are never deleted by the terminal.
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('sale', 'void')),
            voids TEXT,
            created_at TEXT NOT NULL,              -- exactly as sent on the wire
            school_day TEXT NOT NULL,              -- date in the school's time zone
            cashier_id TEXT NOT NULL,
            wallet_id TEXT NOT NULL,
            credential_uid TEXT,
            lines_json TEXT NOT NULL,
            total INTEGER NOT NULL,
            offline INTEGER NOT NULL,
            last_status TEXT,                      -- applied|duplicate|conflict|rejected
            outcome TEXT,                          -- applied|conflict|rejected (duplicate resolved)
            flags_json TEXT,
            code TEXT,
            detail TEXT,
            balance_after INTEGER,
            result_at TEXT,
            applied_epoch INTEGER,                 -- sync epoch when 'applied' became known
            acked INTEGER NOT NULL DEFAULT 0       -- seq <= server's acked_seq
        );
        CREATE INDEX outbox_unacked ON outbox (seq) WHERE acked = 0;
        CREATE INDEX outbox_wallet_day ON outbox (wallet_id, school_day);
        CREATE INDEX outbox_voids ON outbox (voids) WHERE voids IS NOT NULL;
        CREATE INDEX outbox_unanswered ON outbox (wallet_id) WHERE outcome IS NULL;
        """
    )


@migrations()
def m002_needs_review_index(db: Database) -> None:
    """The status bar counts sales needing review every second; without this it scanned the
    whole outbox, which only grows."""
    db.execute("CREATE INDEX outbox_needs_review ON outbox (seq)"
               " WHERE outcome IN ('rejected', 'conflict')")


@migrations()
def m003_spent_today_and_clock(db: Database) -> None:
    """Spec v1.1: the server's ``spent_today`` per wallet (NULL on rows written before it, or
    by a server that does not send it: the terminal then counts its own sales of the day, as
    before), and the seq that was last when a sync succeeded (the clock check only trusts the
    times of sales recorded after it)."""
    db.executescript(
        """
        ALTER TABLE wallets ADD COLUMN spent_today INTEGER;
        ALTER TABLE sync_state ADD COLUMN synced_seq INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations()
def m004_restrictions_positions(db: Database) -> None:
    """Spec v1.1 snapshot additions: each wallet's grade, homeroom and restrictions (one JSON
    object of three lists; '{}' on rows written before, meaning nothing restricted), each
    product's allergens (JSON list) and button position (NULL: not set). Credentials get an
    index by wallet so the name lookup can show each student's bracelets.

    The delta cursor is dropped, so the next pull is a full snapshot: a delta would only bring
    the wallets and products that happened to change, and the others would keep selling
    without their restrictions. Queued sales are not touched."""
    db.executescript(
        """
        ALTER TABLE wallets ADD COLUMN grade TEXT;
        ALTER TABLE wallets ADD COLUMN homeroom TEXT;
        ALTER TABLE wallets ADD COLUMN restrictions_json TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE products ADD COLUMN allergens_json TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE products ADD COLUMN position INTEGER;
        CREATE INDEX credentials_wallet ON credentials (wallet_id);
        UPDATE sync_state SET cursor = NULL WHERE id = 1;
        """
    )


@migrations()
def m005_refill_and_keep(db: Database) -> None:
    """Spec v1.1, the fleet as the server's last backup: the highest ``acked_seq`` the server
    has given (starting from the one stored), so a lower one is recognised as data the server
    lost; the seq a refill started from while one is under way (NULL otherwise); and when
    sales older than the keeping period were last pruned (once a day at most)."""
    db.executescript(
        """
        ALTER TABLE sync_state ADD COLUMN highest_acked_seq INTEGER NOT NULL DEFAULT 0;
        UPDATE sync_state SET highest_acked_seq = acked_seq WHERE id = 1;
        ALTER TABLE sync_state ADD COLUMN refill_from_seq INTEGER;
        ALTER TABLE sync_state ADD COLUMN pruned_at TEXT;
        """
    )
