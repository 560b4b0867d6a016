//! Group commit of call records: correctness under concurrency, per-operation results
//! inside a batch, and its throughput against one-transaction-per-operation.

#[path = "ops_common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::TempDir;
use voxgate::cdr::CallRecorder;
use voxgate::store::{
    CallEnd, CallFilter, CallOp, CallOpOutput, CallOutcome, CallRecordId, CallRecordWriter,
    CallStart, SqliteStore, Store, StoreError,
};

fn start(i: u32) -> CallStart {
    CallStart {
        started_at: 1_795_000_000_000 + i64::from(i),
        caller_number: format!("+1555{:07}", i % 500),
        called_number: "+19585550123".into(),
        sip_call_id: format!("gc-{i}"),
        instance_id: "gc".into(),
        sip: Default::default(),
    }
}

fn end(i: u32) -> CallEnd {
    CallEnd {
        ended_at: 1_795_000_060_000 + i64::from(i),
        outcome: if i % 3 == 0 {
            CallOutcome::Transferred
        } else {
            CallOutcome::Completed
        },
        failure_details: None,
        turns: 1,
        turn_latencies: vec![],
        rtp: None,
        cdr_custom_data: None,
        warnings: vec![],
    }
}

#[test]
fn one_bad_operation_does_not_fail_its_batch() {
    let dir = TempDir::new("batch");
    let s = SqliteStore::open_in_dir(&dir.0).unwrap();
    let ops = vec![
        CallOp::Start {
            start: start(1),
            store_number: true,
            count_usage: true,
        },
        CallOp::End {
            id: CallRecordId(999_999),
            end: end(1),
        },
        CallOp::Start {
            start: start(2),
            store_number: true,
            count_usage: true,
        },
    ];
    let r = s.apply_call_ops(&ops).unwrap();
    assert!(matches!(r[0], Ok(CallOpOutput::Started(_))));
    assert!(matches!(r[1], Err(StoreError::NotFound)));
    assert!(matches!(r[2], Ok(CallOpOutput::Started(_))));
    assert_eq!(s.list_calls(&CallFilter::default()).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_commits_and_lose_nothing() {
    const CALLS: u32 = 2000;
    const CONCURRENCY: u32 = 200;
    let dir = TempDir::new("groupcommit");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_dir(&dir.0).unwrap());
    let writer = CallRecordWriter::spawn(Arc::clone(&store), 8192, 512).unwrap();
    let rec = CallRecorder::new(writer, true, "gc".into());

    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < CALLS {
                let id = rec.start(start(i)).await.unwrap();
                rec.answer(id, 1_795_000_000_500 + i64::from(i))
                    .await
                    .unwrap();
                rec.end(id, end(i)).await.unwrap();
                i += CONCURRENCY;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let grouped = t.elapsed();

    let calls = store
        .list_calls(&CallFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(calls.len(), CALLS as usize);
    assert!(calls
        .iter()
        .all(|c| c.outcome.is_some() && c.answered_at.is_some()));
    let transferred = calls
        .iter()
        .filter(|c| c.outcome == Some(CallOutcome::Transferred))
        .count();
    assert_eq!(transferred, (0..CALLS).filter(|i| i % 3 == 0).count());
    assert_eq!(store.monthly_active_users("2026-11").unwrap(), 500);

    // The same work, one transaction (one fsync) per operation, for 200 calls.
    let dir2 = TempDir::new("percommit");
    let single = SqliteStore::open_in_dir(&dir2.0).unwrap();
    let t = Instant::now();
    for i in 0..200 {
        let id = single.record_call_start(&start(i), true, true).unwrap();
        single.record_call_answer(id, 1).unwrap();
        single.record_call_end(id, &end(i)).unwrap();
    }
    let per_op = t.elapsed();
    let grouped_rate = f64::from(CALLS) / grouped.as_secs_f64();
    let single_rate = 200.0 / per_op.as_secs_f64();
    eprintln!(
        "call records: group commit {grouped_rate:.0} calls/s ({CALLS} calls, {CONCURRENCY} concurrent); \
         one commit per operation {single_rate:.0} calls/s"
    );
    assert!(
        grouped_rate > 2.0 * single_rate,
        "group commit {grouped_rate:.0}/s vs {single_rate:.0}/s"
    );
}
