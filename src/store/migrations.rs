//! Versioned, forward-only schema migrations. Each entry runs once, in order, in the
//! same transaction as the `schema_version` row that records it. Never edit a shipped
//! entry: append a new one. The SQL sticks to types PostgreSQL also accepts
//! (`BIGINT`, `TEXT`, `INTEGER`, `DOUBLE PRECISION`), so the same list serves both
//! backends (`INTEGER PRIMARY KEY` becomes `BIGSERIAL` there).

/// `(version, SQL)` in ascending order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE phone_numbers (
            number      TEXT PRIMARY KEY,
            description TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE integration_settings (
            id       INTEGER PRIMARY KEY CHECK (id = 1),
            settings TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE TABLE monthly_active_users (
            month       TEXT NOT NULL,
            caller_hash TEXT NOT NULL,
            PRIMARY KEY (month, caller_hash)
        );
        CREATE TABLE call_records (
            id              INTEGER PRIMARY KEY,
            started_at      BIGINT NOT NULL,
            answered_at     BIGINT,
            ended_at        BIGINT,
            caller_hash     TEXT NOT NULL,
            caller_number   TEXT,
            called_number   TEXT NOT NULL,
            sip_call_id     TEXT NOT NULL,
            instance_id     TEXT NOT NULL,
            outcome         TEXT,
            reject_status   INTEGER,
            failure_details TEXT,
            turns           INTEGER NOT NULL DEFAULT 0,
            turn_latencies  TEXT NOT NULL DEFAULT '[]',
            rtp_stats       TEXT,
            mos             DOUBLE PRECISION,
            cdr_custom_data TEXT
        );
        CREATE INDEX call_records_started ON call_records (started_at);
        CREATE INDEX call_records_called ON call_records (called_number, started_at);
        CREATE INDEX call_records_caller ON call_records (caller_hash, started_at);
        CREATE INDEX call_records_call_id ON call_records (sip_call_id);",
    ),
    (
        2,
        "ALTER TABLE call_records ADD COLUMN from_uri TEXT;
        ALTER TABLE call_records ADD COLUMN to_uri TEXT;
        ALTER TABLE call_records ADD COLUMN trunk_call_id TEXT;
        ALTER TABLE call_records ADD COLUMN active_calls_at_start INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE call_records ADD COLUMN signaling_encrypted INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE call_records ADD COLUMN sip_authenticated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE call_records ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';",
    ),
];

/// Highest schema version this build knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}
