//! `GET /v1/logs?q=` finds recent log lines by phone number, call ID and instance ID,
//! including lines written under redaction. Own test binary: it changes the
//! process-wide redaction mode.

#[path = "ops_common/mod.rs"]
mod common;

use std::time::Duration;

use common::{eventually, Harness};
use serde_json::Value;
use voxgate::pii::{self, Redaction};

fn log_call(call_id: &str, number: &str, instance: &str, msg: &str) {
    let span = voxgate::logs::call_span(call_id, instance, number);
    let _g = span.enter();
    tracing::info!(status = 200, "{msg}");
    tracing::warn!(provider = "stt", "provider error: connection refused");
}

async fn search(h: &Harness, q: &str) -> Vec<Value> {
    let r = h.get("/v1/logs").query(&[("q", q)]).send().await.unwrap();
    assert!(r.status().is_success());
    let body: Value = r.json().await.unwrap();
    body["lines"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_number_call_id_and_instance_id() {
    let h = Harness::start().await;
    pii::set_redaction(Redaction::None);
    log_call(
        "call-7f3a@10.0.0.9",
        "+15557770001",
        "node-a",
        "INVITE answered",
    );
    log_call(
        "call-99b1@10.0.0.9",
        "+15557770002",
        "node-b",
        "INVITE answered",
    );

    assert!(
        eventually(Duration::from_secs(5), || async {
            search(&h, "call-7f3a@10.0.0.9").await.len() == 2
        })
        .await
    );
    let by_id = search(&h, "call-7f3a@10.0.0.9").await;
    for line in &by_id {
        assert_eq!(line["call_id"], "call-7f3a@10.0.0.9");
        assert_eq!(line["instance_id"], "node-a");
        assert_eq!(line["number"], "+15557770001");
    }
    // Newest first: the warning was logged after the info line.
    assert_eq!(by_id[0]["level"], "WARN");

    // By number, also when typed with spaces.
    let by_number = search(&h, "+1 555 777 0002").await;
    assert_eq!(by_number.len(), 2, "{by_number:?}");
    assert!(by_number
        .iter()
        .all(|l| l["call_id"] == "call-99b1@10.0.0.9"));
    assert_eq!(search(&h, "node-b").await.len(), 2);
    assert!(search(&h, "+15557770003").await.is_empty());

    // Under hash redaction the number is not in the line, yet a search by it finds it.
    pii::set_redaction(Redaction::Hash);
    log_call("call-hashed-1", "+15557770009", "node-a", "INVITE answered");
    let hits = search(&h, "+15557770009").await;
    pii::set_redaction(Redaction::None);
    assert_eq!(hits.len(), 2, "{hits:?}");
    for l in &hits {
        assert!(!l.to_string().contains("5557770009"), "number leaked: {l}");
        assert!(l["number"].as_str().unwrap().starts_with("h:"));
    }
}
