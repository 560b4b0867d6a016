//! Operations-side costs that sit on the call path or bound the admin API:
//! per-INVITE live-state reads, per-call record writes (fsync'd), MAU counting, CSV parsing.
//! Run: cargo bench -p voxgate --bench ops -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use voxgate::live::LiveState;
use voxgate::numbers::{parse_csv, NumberSet};
use voxgate::store::{caller_hash, CallEnd, CallOutcome, CallStart, SqliteStore, Store};

fn per_invite(c: &mut Criterion) {
    let numbers = NumberSet::new((0..100_000).map(|i| format!("+4477009{i:05}")));
    let live = LiveState::new(Default::default(), numbers);
    c.bench_function("live/settings_snapshot", |b| {
        b.iter(|| black_box(live.settings()))
    });
    c.bench_function("live/number_lookup_100k", |b| {
        b.iter(|| black_box(live.numbers().contains_dialed(black_box("+447700912345"))))
    });
    c.bench_function("live/is_draining", |b| {
        b.iter(|| black_box(live.is_draining()))
    });
    c.bench_function("mau/md5_caller_hash", |b| {
        b.iter(|| black_box(caller_hash(black_box("+15551230001"))))
    });
}

fn store(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("voxgate-bench-{}", std::process::id()));
    let s: Arc<dyn Store> = Arc::new(SqliteStore::open_in_dir(&dir).unwrap());
    let mut i = 0u64;
    c.bench_function("store/call_record_start_end_fsync", |b| {
        b.iter(|| {
            i += 1;
            let start = CallStart {
                started_at: 1_795_000_000_000 + i as i64,
                caller_number: format!("+1555{:07}", i % 10_000_000),
                called_number: "+19585550123".into(),
                sip_call_id: format!("bench-{i}"),
                instance_id: "bench".into(),
                sip: Default::default(),
            };
            let id = s.record_call_start(&start, true, true).unwrap();
            s.record_call_end(
                id,
                &CallEnd {
                    ended_at: start.started_at + 60_000,
                    outcome: CallOutcome::Completed,
                    failure_details: None,
                    turns: 3,
                    turn_latencies: vec![],
                    rtp: None,
                    cdr_custom_data: None,
                    warnings: vec![],
                },
            )
            .unwrap();
        })
    });
    let month = voxgate::store::records::month_of(1_795_000_000_000);
    c.bench_function("store/mau_count_month", |b| {
        b.iter(|| black_box(s.monthly_active_users(&month).unwrap()))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn csv(c: &mut Criterion) {
    let mut body = String::from("number,description\n");
    for i in 0..10_000 {
        body.push_str(&format!("+44 7700 9{i:05},row {i}\n"));
    }
    let mut g = c.benchmark_group("csv");
    g.sample_size(10);
    g.bench_function("parse_e164_one", |b| {
        b.iter(|| black_box(voxgate::numbers::parse_e164(black_box("+44 7700 900123")).is_ok()))
    });
    g.bench_function("parse_validate_10k_rows", |b| {
        b.iter(|| black_box(parse_csv(body.as_bytes()).unwrap().len()))
    });
    g.finish();
}

criterion_group!(benches, per_invite, store, csv);
criterion_main!(benches);
