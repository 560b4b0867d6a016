//! SQLite backend in WAL mode with `synchronous=FULL`: one writer connection and one
//! reader connection, each behind a mutex (callers are on the blocking pool, never the
//! async control thread). In WAL mode the reader sees the last committed snapshot and
//! never waits for the writer, so admin queries do not delay call-record writes and a
//! 100k-row CSV replace does not block `GET /v1/numbers`.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::migrations::{latest, MIGRATIONS};
use super::records::{caller_hash, month_of, now_millis};
use super::{
    CallEnd, CallFilter, CallOp, CallOpOutput, CallOpResult, CallOutcome, CallRecord, CallRecordId,
    CallStart, Store, StoreError, UnixMillis,
};
use crate::numbers::NumberEntry;
use crate::settings::IntegrationSettings;

/// The SQLite store (single node).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        let mut store = Self::setup(conn)?;
        let reader = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(Duration::from_secs(5))?;
        store.reader = Mutex::new(reader);
        Ok(store)
    }

    /// Opens `voxgate.sqlite3` inside `dir`, creating the directory.
    pub fn open_in_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Task(format!("create {}: {e}", dir.display())))?;
        Self::open(&dir.join("voxgate.sqlite3"))
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // journal_mode returns a row; query it rather than execute.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not switch to WAL (got {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            // Replaced by a file reader in `open`; in-memory databases read via the writer.
            reader: Mutex::new(Connection::open_in_memory()?),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction
        // (rusqlite rolls back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if current > latest() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            params![version, now_millis()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn call_start(
    conn: &Connection,
    start: &CallStart,
    store_number: bool,
    count_usage: bool,
) -> Result<CallRecordId, StoreError> {
    let hash = caller_hash(&start.caller_number);
    if count_usage {
        conn.execute(
            "INSERT INTO monthly_active_users (month, caller_hash) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            params![month_of(start.started_at), hash],
        )?;
    }
    conn.execute(
        "INSERT INTO call_records (started_at, caller_hash, caller_number, called_number,
                                   sip_call_id, instance_id, from_uri, to_uri,
                                   trunk_call_id, active_calls_at_start,
                                   signaling_encrypted, sip_authenticated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            start.started_at,
            hash,
            store_number.then_some(&start.caller_number),
            start.called_number,
            start.sip_call_id,
            start.instance_id,
            start.sip.from_uri.as_ref().filter(|_| store_number),
            start.sip.to_uri,
            start.sip.trunk_call_id,
            start.sip.active_calls,
            start.sip.signaling_encrypted,
            start.sip.sip_authenticated
        ],
    )?;
    Ok(CallRecordId(conn.last_insert_rowid()))
}

fn call_answer(conn: &Connection, id: CallRecordId, at: UnixMillis) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE call_records SET answered_at = ?2 WHERE id = ?1",
        params![id.0, at],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn call_end(conn: &Connection, id: CallRecordId, end: &CallEnd) -> Result<(), StoreError> {
    let latencies = to_json(&end.turn_latencies)?;
    let rtp = end.rtp.as_ref().map(to_json).transpose()?;
    let mos = end.rtp.as_ref().map(|r| r.mos());
    let custom = end.cdr_custom_data.as_ref().map(to_json).transpose()?;
    let warnings = to_json(&end.warnings)?;
    let n = conn.execute(
        "UPDATE call_records SET ended_at = ?2, outcome = ?3, reject_status = ?4,
                failure_details = ?5, turns = ?6, turn_latencies = ?7, rtp_stats = ?8,
                mos = ?9, cdr_custom_data = ?10, warnings = ?11
         WHERE id = ?1",
        params![
            id.0,
            end.ended_at,
            end.outcome.label(),
            end.outcome.status(),
            end.failure_details,
            end.turns,
            latencies,
            rtp,
            mos,
            custom,
            warnings
        ],
    )?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl Store for SqliteStore {
    fn list_numbers(&self) -> Result<Vec<NumberEntry>, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT number, description FROM phone_numbers ORDER BY number")?;
        let rows = stmt.query_map([], |r| {
            Ok(NumberEntry {
                number: r.get(0)?,
                description: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_number(&self, entry: &NumberEntry) -> Result<(), StoreError> {
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO phone_numbers (number, description) VALUES (?1, ?2)",
            params![entry.number, entry.description],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::DuplicateNumber(entry.number.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn delete_number(&self, e164: &str) -> Result<(), StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM phone_numbers WHERE number = ?1", [e164])?;
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    fn replace_numbers(&self, entries: &[NumberEntry]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM phone_numbers", [])?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO phone_numbers (number, description) VALUES (?1, ?2)",
            )?;
            for e in entries {
                stmt.execute(params![e.number, e.description])
                    .map_err(|err| {
                        if is_unique_violation(&err) {
                            StoreError::DuplicateNumber(e.number.clone())
                        } else {
                            err.into()
                        }
                    })?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load_integration(&self) -> Result<Option<IntegrationSettings>, StoreError> {
        let json: Option<String> = self
            .reader()
            .query_row(
                "SELECT settings FROM integration_settings WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| from_json(&j)).transpose()
    }

    fn save_integration(&self, settings: &IntegrationSettings) -> Result<(), StoreError> {
        let json = to_json(settings)?;
        self.conn().execute(
            "INSERT INTO integration_settings (id, settings, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET settings = excluded.settings,
                                            updated_at = excluded.updated_at",
            params![json, now_millis()],
        )?;
        Ok(())
    }

    fn record_active_user(&self, month: &str, hash: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO monthly_active_users (month, caller_hash) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            params![month, hash],
        )?;
        Ok(n == 1)
    }

    fn monthly_active_users(&self, month: &str) -> Result<u64, StoreError> {
        let n: i64 = self.reader().query_row(
            "SELECT COUNT(*) FROM monthly_active_users WHERE month = ?1",
            [month],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn record_call_start(
        &self,
        start: &CallStart,
        store_number: bool,
        count_usage: bool,
    ) -> Result<CallRecordId, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = call_start(&tx, start, store_number, count_usage)?;
        tx.commit()?;
        Ok(id)
    }

    fn record_call_answer(&self, id: CallRecordId, at: UnixMillis) -> Result<(), StoreError> {
        call_answer(&self.conn(), id, at)
    }

    fn record_call_end(&self, id: CallRecordId, end: &CallEnd) -> Result<(), StoreError> {
        call_end(&self.conn(), id, end)
    }

    fn apply_call_ops(&self, ops: &[CallOp]) -> Result<Vec<CallOpResult>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let results = ops
            .iter()
            .map(|op| match op {
                CallOp::Start {
                    start,
                    store_number,
                    count_usage,
                } => call_start(&tx, start, *store_number, *count_usage).map(CallOpOutput::Started),
                CallOp::Answer { id, at } => {
                    call_answer(&tx, *id, *at).map(|()| CallOpOutput::Done)
                }
                CallOp::End { id, end } => call_end(&tx, *id, end).map(|()| CallOpOutput::Done),
            })
            .collect();
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
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(from) = f.from {
            args.push(from.into());
            sql.push_str(&format!(" AND started_at >= ?{}", args.len()));
        }
        if let Some(to) = f.to {
            args.push(to.into());
            sql.push_str(&format!(" AND started_at < ?{}", args.len()));
        }
        if let Some(n) = &f.number {
            args.push(n.clone().into());
            let i = args.len();
            args.push(caller_hash(n).into());
            let j = args.len();
            sql.push_str(&format!(
                " AND (called_number = ?{i} OR caller_number = ?{i} OR caller_hash = ?{i}
                       OR caller_hash = ?{j})"
            ));
        }
        if let Some(o) = &f.outcome {
            args.push(o.clone().into());
            sql.push_str(&format!(" AND outcome = ?{}", args.len()));
        }
        let limit = f.limit.unwrap_or(100).min(10_000);
        sql.push_str(&format!(" ORDER BY started_at DESC, id DESC LIMIT {limit}"));
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let outcome: Option<String> = r.get(9)?;
            let status: Option<u16> = r.get(10)?;
            let latencies: String = r.get(13)?;
            let rtp: Option<String> = r.get(14)?;
            let custom: Option<String> = r.get(16)?;
            out.push(CallRecord {
                id: CallRecordId(r.get(0)?),
                started_at: r.get(1)?,
                answered_at: r.get(2)?,
                ended_at: r.get(3)?,
                caller_hash: r.get(4)?,
                caller_number: r.get(5)?,
                called_number: r.get(6)?,
                sip_call_id: r.get(7)?,
                instance_id: r.get(8)?,
                outcome: outcome
                    .as_deref()
                    .and_then(|o| CallOutcome::from_parts(o, status)),
                failure_details: r.get(11)?,
                turns: r.get(12)?,
                turn_latencies: from_json(&latencies)?,
                rtp: rtp.as_deref().map(from_json).transpose()?,
                mos: r.get(15)?,
                cdr_custom_data: custom.as_deref().map(from_json).transpose()?,
                sip: crate::store::SipDetails {
                    from_uri: r.get(17)?,
                    to_uri: r.get(18)?,
                    trunk_call_id: r.get(19)?,
                    active_calls: r.get(20)?,
                    signaling_encrypted: r.get(21)?,
                    sip_authenticated: r.get(22)?,
                },
                warnings: from_json(&r.get::<_, String>(23)?)?,
            });
        }
        Ok(out)
    }

    fn redact_caller_numbers(&self, before: UnixMillis) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "UPDATE call_records SET caller_number = NULL, from_uri = NULL
             WHERE started_at < ?1 AND (caller_number IS NOT NULL OR from_uri IS NOT NULL)",
            [before],
        )?;
        Ok(n as u64)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.reader().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(name: &str) -> (SqliteStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "voxgate-store-{name}-{}-{}",
            std::process::id(),
            now_millis()
        ));
        let s = SqliteStore::open_in_dir(&dir).unwrap();
        (s, dir)
    }

    #[test]
    fn migrations_are_recorded_and_rerun_is_a_no_op() {
        let (s, dir) = temp_store("migrate");
        assert_eq!(s.schema_version().unwrap(), latest());
        drop(s);
        let s = SqliteStore::open_in_dir(&dir).unwrap();
        assert_eq!(s.schema_version().unwrap(), latest());
        let n: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
        let mode: String = s
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = s
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_version_1_database_upgrades_keeping_its_rows() {
        let dir = std::env::temp_dir().join(format!(
            "voxgate-v1-{}-{}",
            std::process::id(),
            now_millis()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("voxgate.sqlite3");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0].1).unwrap();
            c.execute_batch(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
                 INSERT INTO schema_version VALUES (1, 0);
                 INSERT INTO call_records (started_at, caller_hash, called_number, sip_call_id, instance_id)
                 VALUES (5, 'h', '+19585550123', 'old-call', 'n');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), latest());
        let calls = s.list_calls(&CallFilter::default()).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].sip_call_id, "old-call");
        assert!(calls[0].warnings.is_empty() && calls[0].sip.from_uri.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn caller_numbers_are_redactable_and_optional() {
        let (s, dir) = temp_store("redact");
        let start = |t: i64, id: &str| CallStart {
            started_at: t,
            caller_number: "+15550001111".into(),
            called_number: "+19585550123".into(),
            sip_call_id: id.into(),
            instance_id: "n".into(),
            sip: crate::store::SipDetails {
                from_uri: Some("sip:+15550001111@198.51.100.1".into()),
                ..Default::default()
            },
        };
        s.record_call_start(&start(1000, "a"), true, true).unwrap();
        s.record_call_start(&start(3000, "b"), true, true).unwrap();
        s.record_call_start(&start(4000, "c"), false, true).unwrap();
        assert_eq!(s.redact_caller_numbers(2000).unwrap(), 1);
        let calls = s.list_calls(&CallFilter::default()).unwrap();
        let by = |id: &str| calls.iter().find(|c| c.sip_call_id == id).unwrap();
        assert_eq!(by("a").caller_number, None);
        assert_eq!(by("a").sip.from_uri, None);
        assert_eq!(by("b").caller_number.as_deref(), Some("+15550001111"));
        assert!(by("b").sip.from_uri.is_some());
        assert_eq!(
            by("c").caller_number,
            None,
            "not kept when store_number is off"
        );
        assert_eq!(by("c").sip.from_uri, None);
        // The hash stays, so filtering by number still finds every call.
        let f = CallFilter {
            number: Some("+15550001111".into()),
            ..Default::default()
        };
        assert_eq!(s.list_calls(&f).unwrap().len(), 3);
        assert_eq!(s.monthly_active_users("1970-01").unwrap(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (s, dir) = temp_store("newer");
        s.conn()
            .execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)",
                [],
            )
            .unwrap();
        drop(s);
        assert!(matches!(
            SqliteStore::open_in_dir(&dir),
            Err(StoreError::SchemaTooNew { found: 999, .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn replace_is_atomic_when_a_row_collides() {
        let (s, dir) = temp_store("atomic");
        let e = |n: &str| NumberEntry {
            number: n.into(),
            description: String::new(),
        };
        s.replace_numbers(&[e("+19585550123")]).unwrap();
        let err = s
            .replace_numbers(&[e("+19585550124"), e("+19585550124")])
            .unwrap_err();
        assert!(matches!(err, StoreError::DuplicateNumber(_)));
        assert_eq!(s.list_numbers().unwrap(), vec![e("+19585550123")]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
