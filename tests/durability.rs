//! kill -9 durability: a child process commits changes in a loop and prints each one
//! after its commit returns; the parent SIGKILLs it at a random point, reopens the
//! database and checks that every acknowledged change is there.
//!
//! The child is this test binary re-invoked with `VOXGATE_DURABILITY_DIR` set, running
//! `writer`. Without the variable, `writer` runs a short bounded session in-process and
//! checks it (so it is a real test either way).

#[path = "ops_common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use std::sync::Arc;
use voxgate::numbers::NumberEntry;
use voxgate::settings::IntegrationSettings;

use voxgate::store::{
    caller_hash, CallEnd, CallOutcome, CallRecordWriter, CallStart, SqliteStore, Store,
};

const ENV: &str = "VOXGATE_DURABILITY_DIR";

/// Runs up to `max` iterations (bounded in time too), printing `ACK ...` after each
/// committed change.
fn write_loop(dir: &Path, max: u32, out: &mut dyn FnMut(String)) {
    let store = Arc::new(SqliteStore::open_in_dir(dir).expect("open"));
    let s = store.as_ref();
    // Half the calls go through the group-commit writer thread, as the call layer's do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let writer = CallRecordWriter::spawn(store.clone(), 64, 16).expect("writer");
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..max {
        if Instant::now() > deadline {
            break;
        }
        match i % 4 {
            0 => {
                let n = format!("+1958555{:04}", i % 10_000);
                s.add_number(&NumberEntry {
                    number: n.clone(),
                    description: format!("d{i}"),
                })
                .expect("add");
                out(format!("ACK number {n}"));
            }
            1 => {
                let start = CallStart {
                    started_at: 1_795_000_000_000 + i64::from(i),
                    caller_number: format!("+1555000{:04}", i % 10_000),
                    called_number: "+19585550123".into(),
                    sip_call_id: format!("dur-{i}"),
                    instance_id: "dur".into(),
                    sip: Default::default(),
                };
                let via_writer = i % 8 == 5;
                let id = if via_writer {
                    rt.block_on(writer.start(start.clone(), true, true))
                        .expect("start")
                } else {
                    s.record_call_start(&start, true, true).expect("start")
                };
                out(format!("ACK start {} {}", id.0, start.caller_number));
                let end = CallEnd {
                    ended_at: start.started_at + 1000,
                    outcome: CallOutcome::Completed,
                    failure_details: None,
                    turns: 1,
                    turn_latencies: vec![],
                    rtp: None,
                    cdr_custom_data: None,
                    warnings: vec![],
                };
                if via_writer {
                    rt.block_on(writer.end(id, end)).expect("end");
                } else {
                    s.record_call_end(id, &end).expect("end");
                }
                out(format!("ACK end {}", id.0));
            }
            2 => {
                let settings = IntegrationSettings {
                    call_failure_message: format!("v{i}"),
                    ..Default::default()
                };
                s.save_integration(&settings).expect("save");
                out(format!("ACK settings {i}"));
            }
            _ => {
                let h = caller_hash(&format!("+1666000{:04}", i % 10_000));
                s.record_active_user("2026-11", &h).expect("mau");
                out(format!("ACK mau {h}"));
            }
        }
    }
}

/// Checks every acknowledged change in `acks` against the database in `dir`.
fn verify(dir: &Path, acks: &[String]) -> usize {
    let s = SqliteStore::open_in_dir(dir).expect("reopen");
    let numbers: std::collections::HashSet<String> = s
        .list_numbers()
        .unwrap()
        .into_iter()
        .map(|e| e.number)
        .collect();
    let calls = s
        .list_calls(&voxgate::store::CallFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .unwrap();
    let mau = s.monthly_active_users("2026-11").unwrap();
    let mut last_settings: Option<u32> = None;
    let mut mau_hashes = std::collections::HashSet::new();
    for a in acks {
        let parts: Vec<&str> = a.split(' ').collect();
        match parts[1] {
            "number" => assert!(numbers.contains(parts[2]), "lost {a}"),
            "start" => {
                let id: i64 = parts[2].parse().unwrap();
                let c = calls
                    .iter()
                    .find(|c| c.id.0 == id)
                    .unwrap_or_else(|| panic!("lost {a}"));
                assert_eq!(c.caller_hash, caller_hash(parts[3]));
                mau_hashes.insert(caller_hash(parts[3]));
            }
            "end" => {
                let id: i64 = parts[2].parse().unwrap();
                let c = calls
                    .iter()
                    .find(|c| c.id.0 == id)
                    .unwrap_or_else(|| panic!("lost {a}"));
                assert_eq!(c.outcome, Some(CallOutcome::Completed), "lost {a}");
            }
            "settings" => last_settings = Some(parts[2].parse().unwrap()),
            "mau" => {
                mau_hashes.insert(parts[2].to_owned());
            }
            other => panic!("unknown ack {other}"),
        }
    }
    if let Some(v) = last_settings {
        let stored = s.load_integration().unwrap().expect("settings lost");
        let got: u32 = stored
            .call_failure_message
            .trim_start_matches('v')
            .parse()
            .unwrap();
        assert!(got >= v, "settings v{v} acknowledged, found v{got}");
    }
    // Call starts count November-2026 users too (started_at is in 2026-11).
    assert!(
        mau >= mau_hashes.len() as u64,
        "MAU {mau} < {} acknowledged",
        mau_hashes.len()
    );
    acks.len()
}

#[test]
fn writer() {
    if let Ok(dir) = std::env::var(ENV) {
        // Child mode: write until killed (bounded).
        use std::io::Write as _;
        let stdout = std::io::stdout();
        write_loop(Path::new(&dir), 1_000_000, &mut |line| {
            let mut o = stdout.lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        });
        return;
    }
    let dir = TempDir::new("durability-inproc");
    let mut acks = Vec::new();
    write_loop(&dir.0, 40, &mut |l| acks.push(l));
    assert_eq!(
        verify(&dir.0, &acks),
        50,
        "40 iterations = 50 acks (calls ack twice)"
    );
}

#[test]
fn kill_9_loses_no_acknowledged_change() {
    let mut total = 0;
    for round in 0..3 {
        let dir = TempDir::new("durability");
        let kill_after: usize = 20 + rand::random::<u32>() as usize % 300;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "writer", "--nocapture", "--test-threads=1"])
            .env(ENV, &dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut acks = Vec::new();
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while acks.len() < kill_after && Instant::now() < deadline {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if line.starts_with("ACK ") {
                acks.push(line.trim_end().to_owned());
            }
        }
        assert_eq!(acks.len(), kill_after, "child stopped early");
        child.kill().expect("SIGKILL"); // SIGKILL on Unix
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "child died of SIGKILL");
        // Everything it printed before dying was acknowledged too.
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        acks.extend(
            rest.lines()
                .filter(|l| l.starts_with("ACK "))
                .map(str::to_owned),
        );
        let n = verify(&dir.0, &acks);
        eprintln!("round {round}: killed after {n} acknowledged changes; all present");
        total += n;
    }
    assert!(total >= 60);
}
