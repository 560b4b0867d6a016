//! Durable state: phone numbers, integration settings, monthly active users and call
//! records.
//!
//! [`Store`] is the backend trait (blocking calls, one transaction each). SQLite
//! ([`SqliteStore`]) is the single-node default; a PostgreSQL backend implements the same
//! trait over the same schema (`migrations.rs` keeps the SQL portable: no SQLite-only
//! column types, times as integer Unix ms, JSON as text).
//!
//! Async code never calls a backend directly: [`StoreHandle`] runs each call on tokio's
//! blocking pool (`spawn_blocking`), so the control thread never waits on disk.
//!
//! Durability: every method returns only after its transaction committed with
//! `synchronous=FULL` in WAL mode, so anything acknowledged survives kill -9 (and power
//! loss). Call records are written at start (a row with no outcome) and completed at
//! end, so a crash mid-call leaves the call visible with `outcome = null`.

pub mod emodel;
mod migrations;
pub mod postgres;
pub mod records;
mod sqlite;
mod writer;

use std::sync::Arc;

pub use postgres::{is_postgres_url, PgStore, SettingsListener};
pub use records::{
    caller_hash, CallEnd, CallFilter, CallOutcome, CallRecord, CallRecordId, CallStart, CdrWarning,
    MaxResponseMs, RtpStats, SipDetails, StreamStats, TurnLatency, UnixMillis,
};
pub use sqlite::SqliteStore;
pub use writer::CallRecordWriter;

use crate::numbers::NumberEntry;
use crate::settings::IntegrationSettings;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The number is already on the list.
    #[error("{0} is already on the list")]
    DuplicateNumber(String),
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The database file was written by a newer voxgate (schema version too high).
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// Stored JSON did not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// SQLite error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL error.
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// The blocking task was cancelled or panicked.
    #[error("store task failed: {0}")]
    Task(String),
}

/// Opens the backend `database_url` names (`postgres://…` → [`PgStore`]), else SQLite in
/// `data_dir`.
pub fn open_store(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) if is_postgres_url(url) => Ok(Arc::new(PgStore::open(url)?)),
        Some(other) => Err(StoreError::Task(format!(
            "database_url must start with postgres:// (got {})",
            other.split(':').next().unwrap_or("")
        ))),
        None => Ok(Arc::new(SqliteStore::open_in_dir(data_dir)?)),
    }
}

/// A storage backend. Every method is one committed transaction.
pub trait Store: Send + Sync + 'static {
    /// All numbers, sorted by E.164 text.
    fn list_numbers(&self) -> Result<Vec<NumberEntry>, StoreError>;
    /// Adds a number (already validated E.164).
    fn add_number(&self, entry: &NumberEntry) -> Result<(), StoreError>;
    /// Deletes a number; `NotFound` when absent.
    fn delete_number(&self, e164: &str) -> Result<(), StoreError>;
    /// Replaces the whole list atomically (entries already validated and unique).
    fn replace_numbers(&self, entries: &[NumberEntry]) -> Result<(), StoreError>;

    /// The saved integration settings, if any were saved.
    fn load_integration(&self) -> Result<Option<IntegrationSettings>, StoreError>;
    /// Saves the integration settings (already validated).
    fn save_integration(&self, settings: &IntegrationSettings) -> Result<(), StoreError>;

    /// Counts `caller_hash` as active in `month` (`YYYY-MM`); true when it is new.
    fn record_active_user(&self, month: &str, caller_hash: &str) -> Result<bool, StoreError>;
    /// Monthly active users of `month`.
    fn monthly_active_users(&self, month: &str) -> Result<u64, StoreError>;

    /// Writes the start of a call and, when `count_usage`, counts the caller as a monthly
    /// active user of the start's month, in one transaction; `store_number = false`
    /// keeps only the caller hash.
    fn record_call_start(
        &self,
        start: &CallStart,
        store_number: bool,
        count_usage: bool,
    ) -> Result<CallRecordId, StoreError>;
    /// Marks the call answered.
    fn record_call_answer(&self, id: CallRecordId, at: UnixMillis) -> Result<(), StoreError>;
    /// Completes the record.
    fn record_call_end(&self, id: CallRecordId, end: &CallEnd) -> Result<(), StoreError>;
    /// Call records matching `filter`, newest first.
    fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError>;
    /// Applies call-record operations in one transaction (one fsync for the batch),
    /// returning each operation's own result; `Err` only when the batch as a whole
    /// failed (nothing applied). Used by [`CallRecordWriter`] for group commit.
    fn apply_call_ops(&self, ops: &[CallOp]) -> Result<Vec<CallOpResult>, StoreError>;
    /// Erases caller numbers of calls started before `before` (hashes stay); returns rows.
    fn redact_caller_numbers(&self, before: UnixMillis) -> Result<u64, StoreError>;

    /// Whether the backend answers (readiness).
    fn ping(&self) -> Result<(), StoreError>;
}

/// A call-record operation (see [`Store::apply_call_ops`]).
#[derive(Debug, Clone)]
pub enum CallOp {
    /// [`Store::record_call_start`].
    Start {
        /// The start.
        start: CallStart,
        /// Keep the caller number.
        store_number: bool,
        /// Count the caller for MAU.
        count_usage: bool,
    },
    /// [`Store::record_call_answer`].
    Answer {
        /// Record.
        id: CallRecordId,
        /// Answer time.
        at: UnixMillis,
    },
    /// [`Store::record_call_end`].
    End {
        /// Record.
        id: CallRecordId,
        /// The end.
        end: CallEnd,
    },
}

/// What a successful [`CallOp`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOpOutput {
    /// A start: the new record's id.
    Started(CallRecordId),
    /// An answer or end.
    Done,
}

/// One operation's result within a batch.
pub type CallOpResult = Result<CallOpOutput, StoreError>;

/// Async access to a [`Store`]: each call runs on the blocking pool.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<dyn Store>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// Wraps a backend.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { inner: store }
    }

    /// The backend, for blocking contexts (tests, startup, tools).
    pub fn blocking(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Runs `f` against the backend on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// See [`Store::record_call_start`] (usage counted).
    pub async fn record_call_start(
        &self,
        start: CallStart,
        store_number: bool,
    ) -> Result<CallRecordId, StoreError> {
        self.run(move |s| s.record_call_start(&start, store_number, true))
            .await
    }

    /// See [`Store::record_call_answer`].
    pub async fn record_call_answer(
        &self,
        id: CallRecordId,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.run(move |s| s.record_call_answer(id, at)).await
    }

    /// See [`Store::record_call_end`].
    pub async fn record_call_end(&self, id: CallRecordId, end: CallEnd) -> Result<(), StoreError> {
        self.run(move |s| s.record_call_end(id, &end)).await
    }
}
