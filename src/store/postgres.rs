//! PostgreSQL backend for several nodes sharing one database: the same schema and
//! migration list as SQLite (`migrations.rs`; `INTEGER PRIMARY KEY` of `call_records`
//! becomes `BIGSERIAL`). Two connections (writer, reader), each behind a mutex, used
//! only from the blocking pool; a connection that dropped is reopened on the next call.
//!
//! Cluster behaviour:
//! - migrations run under a session advisory lock, so nodes starting together apply
//!   each version once;
//! - MAU rows are unique on `(month, caller_hash)` (`ON CONFLICT DO NOTHING`), so a
//!   caller is counted once per month whichever node took the call;
//! - every settings or number change sends `NOTIFY voxgate_settings` /
//!   `NOTIFY voxgate_numbers` in its transaction; [`SettingsListener`] on each node
//!   reloads and publishes to the [`LiveState`] (delivered only on commit).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row};

use super::migrations::{latest, MIGRATIONS};
use super::records::{caller_hash, month_of, now_millis};
use super::{
    CallEnd, CallFilter, CallOp, CallOpOutput, CallOpResult, CallOutcome, CallRecord, CallRecordId,
    CallStart, SipDetails, Store, StoreError, UnixMillis,
};
use crate::live::LiveState;
use crate::numbers::{NumberEntry, NumberSet};
use crate::settings::IntegrationSettings;

/// Channel notified when the integration settings change.
pub const SETTINGS_CHANNEL: &str = "voxgate_settings";
/// Channel notified when the number list changes.
pub const NUMBERS_CHANNEL: &str = "voxgate_numbers";
/// Advisory-lock key serialising migrations across nodes.
const MIGRATION_LOCK: i64 = 0x0076_6f78_6761_7465;

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The PostgreSQL store (cluster).
pub struct PgStore {
    url: String,
    conn: Mutex<PgClient>,
    reader: Mutex<PgClient>,
}

/// A connection that may be dropped anywhere. `postgres::Client` says goodbye to the
/// server on drop by blocking on its own runtime, which panics inside a tokio runtime
/// (the store's last owner often goes away there, at shutdown): the client is dropped on
/// a thread of its own instead.
struct PgClient(Option<Client>);

impl PgClient {
    fn new(c: Client) -> Self {
        PgClient(Some(c))
    }
}

impl std::ops::Deref for PgClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Only `Drop` takes the client out, and nothing can borrow it after that.
        self.0.as_ref().expect("the client is present until drop")
    }
}

impl std::ops::DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.as_mut().expect("the client is present until drop")
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("pg-close".into())
                .spawn(move || drop(c))
                .map(|t| t.join());
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (no TLS: the database is on a private network or loopback) and brings
    /// the schema up to date.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut conn = Client::connect(url, NoTls)?;
        migrate(&mut conn)?;
        let reader = Client::connect(url, NoTls)?;
        Ok(Self {
            url: url.to_owned(),
            conn: Mutex::new(PgClient::new(conn)),
            reader: Mutex::new(PgClient::new(reader)),
        })
    }

    fn lock<'a>(&self, m: &'a Mutex<PgClient>) -> Result<MutexGuard<'a, PgClient>, StoreError> {
        // A panic while holding the lock leaves no open transaction (dropped ones roll
        // back), so a poisoned lock is safe to reuse.
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_closed() {
            *g = PgClient::new(Client::connect(&self.url, NoTls)?);
        }
        Ok(g)
    }

    fn conn(&self) -> Result<MutexGuard<'_, PgClient>, StoreError> {
        self.lock(&self.conn)
    }

    fn reader(&self) -> Result<MutexGuard<'_, PgClient>, StoreError> {
        self.lock(&self.reader)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let row = self.reader()?.query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
            &[],
        )?;
        Ok(row.try_get(0)?)
    }
}

fn pg_sql(sql: &str) -> String {
    sql.replace(
        "id              INTEGER PRIMARY KEY,",
        "id              BIGSERIAL PRIMARY KEY,",
    )
}

fn migrate(conn: &mut Client) -> Result<(), StoreError> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let r = migrate_locked(conn);
    let unlock = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    r?;
    unlock?;
    Ok(())
}

fn migrate_locked(conn: &mut Client) -> Result<(), StoreError> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    )?;
    let current: i64 = conn
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
            &[],
        )?
        .try_get(0)?;
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let mut tx = conn.transaction()?;
        tx.batch_execute(&pg_sql(sql))?;
        let v = i32::try_from(*version).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
            &[&v, &now_millis()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn call_start(
    c: &mut impl GenericClient,
    start: &CallStart,
    store_number: bool,
    count_usage: bool,
) -> Result<CallRecordId, StoreError> {
    let hash = caller_hash(&start.caller_number);
    if count_usage {
        c.execute(
            "INSERT INTO monthly_active_users (month, caller_hash) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&month_of(start.started_at), &hash],
        )?;
    }
    let number = store_number.then_some(&start.caller_number);
    let from_uri = start.sip.from_uri.as_ref().filter(|_| store_number);
    let row = c.query_one(
        "INSERT INTO call_records (started_at, caller_hash, caller_number, called_number,
                                   sip_call_id, instance_id, from_uri, to_uri,
                                   trunk_call_id, active_calls_at_start,
                                   signaling_encrypted, sip_authenticated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        &[
            &start.started_at,
            &hash,
            &number,
            &start.called_number,
            &start.sip_call_id,
            &start.instance_id,
            &from_uri,
            &start.sip.to_uri,
            &start.sip.trunk_call_id,
            &int(start.sip.active_calls),
            &i32::from(start.sip.signaling_encrypted),
            &i32::from(start.sip.sip_authenticated),
        ],
    )?;
    Ok(CallRecordId(row.try_get(0)?))
}

fn call_answer(
    c: &mut impl GenericClient,
    id: CallRecordId,
    at: UnixMillis,
) -> Result<(), StoreError> {
    let n = c.execute(
        "UPDATE call_records SET answered_at = $2 WHERE id = $1",
        &[&id.0, &at],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn call_end(c: &mut impl GenericClient, id: CallRecordId, end: &CallEnd) -> Result<(), StoreError> {
    let latencies = to_json(&end.turn_latencies)?;
    let rtp = end.rtp.as_ref().map(to_json).transpose()?;
    let mos = end.rtp.as_ref().map(|r| r.mos());
    let custom = end.cdr_custom_data.as_ref().map(to_json).transpose()?;
    let warnings = to_json(&end.warnings)?;
    let status = end.outcome.status().map(i32::from);
    let n = c.execute(
        "UPDATE call_records SET ended_at = $2, outcome = $3, reject_status = $4,
                failure_details = $5, turns = $6, turn_latencies = $7, rtp_stats = $8,
                mos = $9, cdr_custom_data = $10, warnings = $11
         WHERE id = $1",
        &[
            &id.0,
            &end.ended_at,
            &end.outcome.label(),
            &status,
            &end.failure_details,
            &int(end.turns),
            &latencies,
            &rtp,
            &mos,
            &custom,
            &warnings,
        ],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn record_of(r: &Row) -> Result<CallRecord, StoreError> {
    let outcome: Option<String> = r.try_get(9)?;
    let status: Option<i32> = r.try_get(10)?;
    let status = status.and_then(|s| u16::try_from(s).ok());
    let latencies: String = r.try_get(13)?;
    let rtp: Option<String> = r.try_get(14)?;
    let custom: Option<String> = r.try_get(16)?;
    let turns: i32 = r.try_get(12)?;
    let active: i32 = r.try_get(20)?;
    let enc: i32 = r.try_get(21)?;
    let auth: i32 = r.try_get(22)?;
    let warnings: String = r.try_get(23)?;
    Ok(CallRecord {
        id: CallRecordId(r.try_get(0)?),
        started_at: r.try_get(1)?,
        answered_at: r.try_get(2)?,
        ended_at: r.try_get(3)?,
        caller_hash: r.try_get(4)?,
        caller_number: r.try_get(5)?,
        called_number: r.try_get(6)?,
        sip_call_id: r.try_get(7)?,
        instance_id: r.try_get(8)?,
        outcome: outcome
            .as_deref()
            .and_then(|o| CallOutcome::from_parts(o, status)),
        failure_details: r.try_get(11)?,
        turns: u32::try_from(turns).unwrap_or(0),
        turn_latencies: from_json(&latencies)?,
        rtp: rtp.as_deref().map(from_json).transpose()?,
        mos: r.try_get(15)?,
        cdr_custom_data: custom.as_deref().map(from_json).transpose()?,
        sip: SipDetails {
            from_uri: r.try_get(17)?,
            to_uri: r.try_get(18)?,
            trunk_call_id: r.try_get(19)?,
            active_calls: u32::try_from(active).unwrap_or(0),
            signaling_encrypted: enc != 0,
            sip_authenticated: auth != 0,
        },
        warnings: from_json(&warnings)?,
    })
}

impl Store for PgStore {
    fn list_numbers(&self) -> Result<Vec<NumberEntry>, StoreError> {
        let rows = self.reader()?.query(
            "SELECT number, description FROM phone_numbers ORDER BY number",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(NumberEntry {
                    number: r.try_get(0)?,
                    description: r.try_get(1)?,
                })
            })
            .collect()
    }

    fn add_number(&self, entry: &NumberEntry) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        match tx.execute(
            "INSERT INTO phone_numbers (number, description) VALUES ($1, $2)",
            &[&entry.number, &entry.description],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::DuplicateNumber(entry.number.clone()))
            }
            Err(e) => return Err(e.into()),
        }
        tx.execute("SELECT pg_notify($1, '')", &[&NUMBERS_CHANNEL])?;
        tx.commit()?;
        Ok(())
    }

    fn delete_number(&self, e164: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM phone_numbers WHERE number = $1", &[&e164])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute("SELECT pg_notify($1, '')", &[&NUMBERS_CHANNEL])?;
        tx.commit()?;
        Ok(())
    }

    fn replace_numbers(&self, entries: &[NumberEntry]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Two nodes replacing at once (both seeding on first start) would interleave
        // their DELETE and INSERTs; the table lock makes the second wait for the first.
        tx.batch_execute("LOCK TABLE phone_numbers IN SHARE ROW EXCLUSIVE MODE")?;
        tx.execute("DELETE FROM phone_numbers", &[])?;
        let stmt = tx.prepare("INSERT INTO phone_numbers (number, description) VALUES ($1, $2)")?;
        for e in entries {
            tx.execute(&stmt, &[&e.number, &e.description])
                .map_err(|err| {
                    if is_unique_violation(&err) {
                        StoreError::DuplicateNumber(e.number.clone())
                    } else {
                        err.into()
                    }
                })?;
        }
        tx.execute("SELECT pg_notify($1, '')", &[&NUMBERS_CHANNEL])?;
        tx.commit()?;
        Ok(())
    }

    fn load_integration(&self) -> Result<Option<IntegrationSettings>, StoreError> {
        let row = self.reader()?.query_opt(
            "SELECT settings FROM integration_settings WHERE id = 1",
            &[],
        )?;
        row.map(|r| {
            let j: String = r.try_get(0)?;
            from_json(&j)
        })
        .transpose()
    }

    fn save_integration(&self, settings: &IntegrationSettings) -> Result<(), StoreError> {
        let json = to_json(settings)?;
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO integration_settings (id, settings, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET settings = excluded.settings,
                                            updated_at = excluded.updated_at",
            &[&json, &now_millis()],
        )?;
        tx.execute("SELECT pg_notify($1, '')", &[&SETTINGS_CHANNEL])?;
        tx.commit()?;
        Ok(())
    }

    fn record_active_user(&self, month: &str, hash: &str) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "INSERT INTO monthly_active_users (month, caller_hash) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&month, &hash],
        )?;
        Ok(n == 1)
    }

    fn monthly_active_users(&self, month: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .reader()?
            .query_one(
                "SELECT COUNT(*) FROM monthly_active_users WHERE month = $1",
                &[&month],
            )?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    fn record_call_start(
        &self,
        start: &CallStart,
        store_number: bool,
        count_usage: bool,
    ) -> Result<CallRecordId, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let id = call_start(&mut tx, start, store_number, count_usage)?;
        tx.commit()?;
        Ok(id)
    }

    fn record_call_answer(&self, id: CallRecordId, at: UnixMillis) -> Result<(), StoreError> {
        call_answer(&mut **self.conn()?, id, at)
    }

    fn record_call_end(&self, id: CallRecordId, end: &CallEnd) -> Result<(), StoreError> {
        call_end(&mut **self.conn()?, id, end)
    }

    fn apply_call_ops(&self, ops: &[CallOp]) -> Result<Vec<CallOpResult>, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            // A failed statement aborts a PostgreSQL transaction, so each op runs in a
            // savepoint: one op's error does not undo the others (SQLite semantics).
            let mut sp = tx.savepoint(format!("op{i}"))?;
            let r = match op {
                CallOp::Start {
                    start,
                    store_number,
                    count_usage,
                } => call_start(&mut sp, start, *store_number, *count_usage)
                    .map(CallOpOutput::Started),
                CallOp::Answer { id, at } => {
                    call_answer(&mut sp, *id, *at).map(|()| CallOpOutput::Done)
                }
                CallOp::End { id, end } => call_end(&mut sp, *id, end).map(|()| CallOpOutput::Done),
            };
            if r.is_ok() {
                sp.commit()?;
            } else {
                sp.rollback()?;
            }
            results.push(r);
        }
        tx.commit()?;
        Ok(results)
    }

    fn list_calls(&self, f: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT id, started_at, answered_at, ended_at, caller_hash, caller_number,
                    called_number, sip_call_id, instance_id, outcome, reject_status,
                    failure_details, turns, turn_latencies, rtp_stats, mos, cdr_custom_data,
                    from_uri, to_uri, trunk_call_id, active_calls_at_start,
                    signaling_encrypted, sip_authenticated, warnings
             FROM call_records WHERE 1=1",
        );
        let number = f.number.clone();
        let hash = f.number.as_deref().map(caller_hash);
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(from) = &f.from {
            args.push(from);
            sql.push_str(&format!(" AND started_at >= ${}", args.len()));
        }
        if let Some(to) = &f.to {
            args.push(to);
            sql.push_str(&format!(" AND started_at < ${}", args.len()));
        }
        if let (Some(n), Some(h)) = (&number, &hash) {
            args.push(n);
            let i = args.len();
            args.push(h);
            let j = args.len();
            sql.push_str(&format!(
                " AND (called_number = ${i} OR caller_number = ${i} OR caller_hash = ${i}
                       OR caller_hash = ${j})"
            ));
        }
        if let Some(o) = &f.outcome {
            args.push(o);
            sql.push_str(&format!(" AND outcome = ${}", args.len()));
        }
        let limit = f.limit.unwrap_or(100).min(10_000);
        sql.push_str(&format!(" ORDER BY started_at DESC, id DESC LIMIT {limit}"));
        let rows = self.reader()?.query(sql.as_str(), &args)?;
        rows.iter().map(record_of).collect()
    }

    fn redact_caller_numbers(&self, before: UnixMillis) -> Result<u64, StoreError> {
        Ok(self.conn()?.execute(
            "UPDATE call_records SET caller_number = NULL, from_uri = NULL
             WHERE started_at < $1 AND (caller_number IS NOT NULL OR from_uri IS NOT NULL)",
            &[&before],
        )?)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.reader()?.execute("SELECT 1", &[])?;
        Ok(())
    }
}

/// Reloads settings and numbers into a [`LiveState`] whenever another node (or this
/// one) changes them: a thread holding its own connection with
/// `LISTEN voxgate_settings; LISTEN voxgate_numbers`. It reconnects after errors
/// (reloading everything, since notifications may have been missed meanwhile) and
/// stops when dropped.
#[derive(Debug)]
pub struct SettingsListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SettingsListener {
    /// Starts listening on `url`; changes are read back through `store`.
    pub fn spawn(
        url: &str,
        store: Arc<dyn Store>,
        live: LiveState,
    ) -> std::io::Result<SettingsListener> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let url = url.to_owned();
        let thread = std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen_loop(&url, store.as_ref(), &live, &s))?;
        Ok(SettingsListener {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SettingsListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reload(store: &dyn Store, live: &LiveState, settings: bool, numbers: bool) {
    if settings {
        match store.load_integration() {
            Ok(Some(s)) => live.publish_settings(s),
            Ok(None) => {}
            Err(e) => tracing::warn!("reload settings after NOTIFY: {e}"),
        }
    }
    if numbers {
        match store.list_numbers() {
            Ok(list) => live.publish_numbers(NumberSet::new(list.into_iter().map(|e| e.number))),
            Err(e) => tracing::warn!("reload numbers after NOTIFY: {e}"),
        }
    }
}

fn listen_loop(url: &str, store: &dyn Store, live: &LiveState, stop: &AtomicBool) {
    const TICK: Duration = Duration::from_millis(200);
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    while !stop.load(Ordering::Acquire) {
        let mut client = match Client::connect(url, NoTls).and_then(|mut c| {
            c.batch_execute(&format!(
                "LISTEN {SETTINGS_CHANNEL}; LISTEN {NUMBERS_CHANNEL}"
            ))?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("settings listener: {e}; retrying in {backoff:?}");
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(TICK.min(backoff));
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if !first {
            reload(store, live, true, true);
        }
        first = false;
        while !stop.load(Ordering::Acquire) {
            let mut settings = false;
            let mut numbers = false;
            let failed = {
                let mut notes = client.notifications();
                let mut it = notes.timeout_iter(TICK);
                loop {
                    match it.next() {
                        Ok(Some(n)) => match n.channel() {
                            SETTINGS_CHANNEL => settings = true,
                            NUMBERS_CHANNEL => numbers = true,
                            _ => {}
                        },
                        Ok(None) => break false,
                        Err(e) => {
                            tracing::warn!("settings listener: {e}");
                            break true;
                        }
                    }
                }
            };
            if settings || numbers {
                reload(store, live, settings, numbers);
            }
            if failed || client.is_closed() {
                break;
            }
        }
    }
}
