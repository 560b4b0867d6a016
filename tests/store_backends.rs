//! The same store tests against both backends: SQLite (a temp file) and PostgreSQL (a
//! throwaway server from `pg_common`, a fresh database per case). Plus what only a
//! shared database can show: two nodes' stores counting MAU once, and a settings change
//! through one node reaching the other's live state by LISTEN/NOTIFY.

mod pg_common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use voxgate::live::LiveState;
use voxgate::numbers::{NumberEntry, NumberSet};
use voxgate::settings::IntegrationSettings;
use voxgate::store::{
    CallEnd, CallFilter, CallOp, CallOpOutput, CallOutcome, CallRecordId, CallStart, PgStore,
    SettingsListener, SipDetails, SqliteStore, Store, StoreError, TurnLatency,
};

static PG: OnceLock<pg_common::TempPostgres> = OnceLock::new();
static NEXT_DB: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn pg() -> &'static pg_common::TempPostgres {
    PG.get_or_init(|| pg_common::TempPostgres::start("store"))
}

fn fresh_pg_url() -> String {
    let n = NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    pg().create_db(&format!("t{n}"))
}

fn sqlite(name: &str) -> SqliteStore {
    let dir = std::env::temp_dir().join(format!(
        "voxgate-backends-{name}-{}-{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    SqliteStore::open_in_dir(&dir).expect("sqlite")
}

/// Runs `case` on a fresh SQLite store and a fresh PostgreSQL store.
fn both(name: &str, case: impl Fn(&dyn Store)) {
    case(&sqlite(name));
    let url = fresh_pg_url();
    case(&PgStore::open(&url).expect("pg store"));
}

fn entry(n: &str, d: &str) -> NumberEntry {
    NumberEntry {
        number: n.into(),
        description: d.into(),
    }
}

fn start(t: i64, caller: &str, id: &str) -> CallStart {
    CallStart {
        started_at: t,
        caller_number: caller.into(),
        called_number: "+19585550123".into(),
        sip_call_id: id.into(),
        instance_id: "node-a".into(),
        sip: SipDetails {
            from_uri: Some(format!("sip:{caller}@198.51.100.1")),
            to_uri: Some("sip:+19585550123@gw".into()),
            trunk_call_id: None,
            active_calls: 3,
            signaling_encrypted: true,
            sip_authenticated: false,
        },
    }
}

fn end(t: i64, outcome: CallOutcome) -> CallEnd {
    CallEnd {
        ended_at: t,
        outcome,
        failure_details: None,
        turns: 2,
        turn_latencies: vec![TurnLatency {
            speech_to_text_ms: Some(120),
            assistant_ms: Some(40),
            text_to_speech_ms: None,
            input: Some("my order".into()),
            response: Some("Which order?".into()),
        }],
        rtp: None,
        cdr_custom_data: Some(serde_json::json!({"k": "v"})),
        warnings: Vec::new(),
    }
}

#[test]
fn numbers_add_list_delete_replace() {
    both("numbers", |s| {
        assert!(s.list_numbers().unwrap().is_empty());
        s.add_number(&entry("+19585550124", "b")).unwrap();
        s.add_number(&entry("+19585550123", "a")).unwrap();
        assert!(matches!(
            s.add_number(&entry("+19585550123", "again")),
            Err(StoreError::DuplicateNumber(n)) if n == "+19585550123"
        ));
        assert_eq!(
            s.list_numbers().unwrap(),
            vec![entry("+19585550123", "a"), entry("+19585550124", "b")]
        );
        s.delete_number("+19585550124").unwrap();
        assert!(matches!(
            s.delete_number("+19585550124"),
            Err(StoreError::NotFound)
        ));
        // A replace with a collision changes nothing.
        let err = s
            .replace_numbers(&[entry("+19585550125", ""), entry("+19585550125", "")])
            .unwrap_err();
        assert!(matches!(err, StoreError::DuplicateNumber(_)));
        assert_eq!(s.list_numbers().unwrap(), vec![entry("+19585550123", "a")]);
        s.replace_numbers(&[entry("+19585550126", "c")]).unwrap();
        assert_eq!(s.list_numbers().unwrap(), vec![entry("+19585550126", "c")]);
    });
}

#[test]
fn settings_round_trip() {
    both("settings", |s| {
        assert!(s.load_integration().unwrap().is_none());
        let mut v = IntegrationSettings::default();
        v.disable_ringing = !v.disable_ringing;
        s.save_integration(&v).unwrap();
        assert_eq!(s.load_integration().unwrap(), Some(v.clone()));
        v.disable_ringing = !v.disable_ringing;
        s.save_integration(&v).unwrap();
        assert_eq!(s.load_integration().unwrap(), Some(v));
    });
}

#[test]
fn mau_counts_each_caller_once_a_month() {
    both("mau", |s| {
        assert!(s.record_active_user("2026-11", "h1").unwrap());
        assert!(!s.record_active_user("2026-11", "h1").unwrap());
        assert!(s.record_active_user("2026-12", "h1").unwrap());
        // Calls count their caller too (1970-01 from the start times below).
        s.record_call_start(&start(1000, "+15550001111", "a"), true, true)
            .unwrap();
        s.record_call_start(&start(2000, "+15550001111", "b"), true, true)
            .unwrap();
        s.record_call_start(&start(3000, "+15550002222", "c"), true, false)
            .unwrap();
        assert_eq!(s.monthly_active_users("2026-11").unwrap(), 1);
        assert_eq!(s.monthly_active_users("1970-01").unwrap(), 1);
    });
}

#[test]
fn call_records_start_answer_end_filter_and_redact() {
    both("calls", |s| {
        let a = s
            .record_call_start(&start(1000, "+15550001111", "call-a"), true, true)
            .unwrap();
        let b = s
            .record_call_start(&start(2000, "+15550002222", "call-b"), false, true)
            .unwrap();
        assert_ne!(a, b);
        s.record_call_answer(a, 1100).unwrap();
        s.record_call_end(a, &end(5000, CallOutcome::Completed))
            .unwrap();
        s.record_call_end(b, &end(2500, CallOutcome::Rejected { status: 486 }))
            .unwrap();
        assert!(matches!(
            s.record_call_answer(CallRecordId(999_999), 1),
            Err(StoreError::NotFound)
        ));
        let all = s.list_calls(&CallFilter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].sip_call_id, "call-b", "newest first");
        let ca = &all[1];
        assert_eq!(ca.answered_at, Some(1100));
        assert_eq!(ca.ended_at, Some(5000));
        assert_eq!(ca.outcome, Some(CallOutcome::Completed));
        assert_eq!(ca.turns, 2);
        assert_eq!(ca.turn_latencies.len(), 1);
        assert_eq!(ca.sip.active_calls, 3);
        assert!(ca.sip.signaling_encrypted && !ca.sip.sip_authenticated);
        assert_eq!(ca.cdr_custom_data, Some(serde_json::json!({"k": "v"})));
        assert_eq!(all[0].outcome, Some(CallOutcome::Rejected { status: 486 }));
        assert_eq!(all[0].caller_number, None, "store_number off");
        let f = CallFilter {
            outcome: Some("rejected".into()),
            ..Default::default()
        };
        assert_eq!(s.list_calls(&f).unwrap().len(), 1);
        let f = CallFilter {
            number: Some("+15550002222".into()),
            ..Default::default()
        };
        assert_eq!(s.list_calls(&f).unwrap().len(), 1, "found by hash");
        let f = CallFilter {
            from: Some(1500),
            to: Some(3000),
            ..Default::default()
        };
        assert_eq!(s.list_calls(&f).unwrap().len(), 1);
        assert_eq!(s.redact_caller_numbers(1500).unwrap(), 1);
        let all = s.list_calls(&CallFilter::default()).unwrap();
        assert!(all.iter().all(|c| c.caller_number.is_none()));
        s.ping().unwrap();
    });
}

#[test]
fn batched_ops_keep_each_result_and_a_bad_one_does_not_undo_the_rest() {
    both("batch", |s| {
        let r = s
            .apply_call_ops(&[
                CallOp::Start {
                    start: start(1000, "+15550001111", "x"),
                    store_number: true,
                    count_usage: true,
                },
                CallOp::Answer {
                    id: CallRecordId(424_242),
                    at: 5,
                },
                CallOp::Start {
                    start: start(2000, "+15550003333", "y"),
                    store_number: true,
                    count_usage: true,
                },
            ])
            .unwrap();
        assert_eq!(r.len(), 3);
        assert!(matches!(r[0], Ok(CallOpOutput::Started(_))));
        assert!(matches!(r[1], Err(StoreError::NotFound)));
        let Ok(CallOpOutput::Started(id)) = r[2] else {
            panic!("{:?}", r[2])
        };
        s.apply_call_ops(&[CallOp::End {
            id,
            end: end(3000, CallOutcome::CallFailed),
        }])
        .unwrap();
        let calls = s.list_calls(&CallFilter::default()).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].outcome, Some(CallOutcome::CallFailed));
        assert_eq!(s.monthly_active_users("1970-01").unwrap(), 2);
    });
}

#[test]
fn postgres_migrations_run_once_and_reopen_is_a_no_op() {
    let url = fresh_pg_url();
    // Two nodes starting together: the advisory lock serialises the migration.
    let u1 = url.clone();
    let u2 = url.clone();
    let t1 = std::thread::spawn(move || PgStore::open(&u1).map(|s| s.schema_version().unwrap()));
    let t2 = std::thread::spawn(move || PgStore::open(&u2).map(|s| s.schema_version().unwrap()));
    let v1 = t1.join().unwrap().expect("node 1 opens");
    let v2 = t2.join().unwrap().expect("node 2 opens");
    assert_eq!(v1, v2);
    assert!(v1 >= 2);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, v1, "each version recorded once");
    c.execute("INSERT INTO schema_version VALUES (999, 0)", &[])
        .unwrap();
    assert!(matches!(
        PgStore::open(&url),
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
}

#[test]
fn two_nodes_count_a_caller_once_and_see_each_others_records() {
    let url = fresh_pg_url();
    let a = Arc::new(PgStore::open(&url).unwrap());
    let b = Arc::new(PgStore::open(&url).unwrap());
    // The same 50 callers call both nodes at once.
    let run = |s: Arc<PgStore>, node: &'static str| {
        std::thread::spawn(move || {
            for i in 0..50 {
                let mut st = start(
                    1_000 + i,
                    &format!("+1555000{i:04}"),
                    &format!("{node}-{i}"),
                );
                st.instance_id = node.into();
                s.record_call_start(&st, false, true).unwrap();
            }
        })
    };
    let ta = run(Arc::clone(&a), "node-a");
    let tb = run(Arc::clone(&b), "node-b");
    ta.join().unwrap();
    tb.join().unwrap();
    assert_eq!(a.monthly_active_users("1970-01").unwrap(), 50);
    let calls = b
        .list_calls(&CallFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(calls.len(), 100);
    assert_eq!(
        calls.iter().filter(|c| c.instance_id == "node-a").count(),
        50
    );
}

#[test]
fn a_settings_or_numbers_change_on_one_node_reaches_the_other_live() {
    let url = fresh_pg_url();
    let a = PgStore::open(&url).unwrap();
    let b: Arc<dyn Store> = Arc::new(PgStore::open(&url).unwrap());
    let live_b = LiveState::new(IntegrationSettings::default(), NumberSet::new(Vec::new()));
    let _listener = SettingsListener::spawn(&url, Arc::clone(&b), live_b.clone()).unwrap();
    // The listener subscribes asynchronously: repeat the change until it lands (bounded).
    let mut changed = IntegrationSettings::default();
    changed.disable_ringing = !changed.disable_ringing;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    while live_b.settings().disable_ringing != changed.disable_ringing {
        assert!(Instant::now() < deadline, "settings did not reach node B");
        if i % 20 == 0 {
            a.save_integration(&changed).unwrap();
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(25));
    }
    a.add_number(&entry("+19585550199", "")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !live_b.numbers().contains_dialed("+19585550199") {
        assert!(Instant::now() < deadline, "number did not reach node B");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The store's last owner can go away inside the async runtime (a node shutting down
/// after a drain): dropping a PostgreSQL store there must not panic. `postgres::Client`
/// blocks on a runtime of its own when dropped, which tokio refuses inside a runtime.
#[test]
fn postgres_store_drops_inside_an_async_runtime() {
    let url = fresh_pg_url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    // Opened (and used) where blocking is allowed, as the gateway does on its blocking
    // pool; dropped in a runtime task.
    let store = PgStore::open(&url).expect("pg store");
    store.schema_version().expect("version");
    let dropped = rt.block_on(async move { tokio::spawn(async move { drop(store) }).await });
    assert!(dropped.is_ok(), "dropping the store panicked: {dropped:?}");
}
