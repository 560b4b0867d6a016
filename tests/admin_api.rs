//! The admin API over real HTTP against a real SQLite file.

#[path = "ops_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Harness, TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use voxgate::store::records::{month_of, parse_time};
use voxgate::store::{CallEnd, CallOutcome, CallStart, RtpStats, StreamStats, TurnLatency};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_except_for_healthz() {
    let h = Harness::start().await;
    for path in [
        "/v1/integration",
        "/v1/numbers",
        "/v1/usage/mau",
        "/v1/calls",
        "/v1/logs",
        "/metrics",
    ] {
        let r = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} without token");
        let r = h
            .client
            .get(h.url(path))
            .bearer_auth("wrong-token-0123456789abc")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong token"
        );
        let r = h.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} with the token");
    }
    let r = h
        .client
        .get(h.url("/v1/numbers"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "scheme is case-insensitive");
    let r = h
        .client
        .get(h.url("/v1/numbers"))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ready"], true);
    // The console page is static (no data) and calls the API with the typed token.
    let r = h.client.get(h.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("/console/app.js") && page.contains("/console/style.css"));
    assert!(!page.contains("+19585550123"), "no data in the page");
    let r = h.client.get(h.url("/console/app.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let script = r.text().await.unwrap();
    assert!(script.contains("/v1/numbers") && script.contains("Bearer "));
    assert!(!script.contains("+19585550123"), "no data in the script");
    let r = h
        .client
        .get(h.url("/console/style.css"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let r = h
        .client
        .get(h.url("/console/secret.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = h.client.get(h.url("/v1/overview")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_round_trip_reach_live_state_and_survive_reopen() {
    let h = Harness::start().await;
    let mut s = h.json("/v1/integration").await;
    assert_eq!(
        s["disconnect_on_transfer_failure"], true,
        "seed default is on"
    );
    assert_eq!(s["plan"], "plus");
    s["plan"] = json!("enterprise");
    s["disable_ringing"] = json!(true);
    s["call_failure_sip_target"] = json!("sip:queue@10.0.0.5");
    s["invite_headers_to_extract"] = json!(["X-Account", "X-Twilio-CallSid"]);
    s["sip_auth"] = json!({"username": "trunk", "password": "s3cret-pass"});
    let r = h.put("/v1/integration").json(&s).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let back: Value = r.json().await.unwrap();
    assert_eq!(
        back["sip_auth"]["password"], "********",
        "password never echoed"
    );

    // New calls see it without a restart.
    let live = h.ops.live.settings();
    assert_eq!(live.plan.max_concurrent_calls(), 1000);
    assert!(live.disable_ringing);
    assert_eq!(live.sip_auth.as_ref().unwrap().password, "s3cret-pass");

    // Sending the placeholder back keeps the stored password.
    let mut again = h.json("/v1/integration").await;
    again["no_hold_on_transfer"] = json!(true);
    let r = h.put("/v1/integration").json(&again).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        h.ops.live.settings().sip_auth.as_ref().unwrap().password,
        "s3cret-pass"
    );
    // Stored durably: a fresh store on the same file reads it.
    let stored = voxgate::store::SqliteStore::open_in_dir(&h.dir.0.join("data")).unwrap();
    let stored = voxgate::store::Store::load_integration(&stored)
        .unwrap()
        .unwrap();
    assert!(stored.no_hold_on_transfer && stored.disable_ringing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_validation_errors_name_each_field_and_change_nothing() {
    let h = Harness::start().await;
    let before = h.json("/v1/integration").await;
    let mut s = before.clone();
    s["transfer_failure_message"] = json!("x".repeat(1025));
    s["plan"] = json!({"custom": 0});
    s["invite_headers_to_extract"] = json!(["bad header"]);
    let r = h.put("/v1/integration").json(&s).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let mut fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "invite_headers_to_extract",
            "plan",
            "transfer_failure_message"
        ]
    );
    // Exactly 1024 characters is allowed.
    let mut ok = before.clone();
    ok["transfer_failure_message"] = json!("x".repeat(1024));
    assert_eq!(
        h.put("/v1/integration")
            .json(&ok)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Unknown and mistyped fields are named too.
    let r = h
        .put("/v1/integration")
        .json(&json!({"disable_ringin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["field"], "disable_ringin", "{body}");
    assert_eq!(
        h.ops.live.settings().transfer_failure_message,
        "x".repeat(1024),
        "failed PUTs changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_failure_target_must_be_a_sip_or_tel_uri() {
    let h = Harness::start().await;
    let mut s = h.json("/v1/integration").await;
    s["call_failure_sip_target"] = json!("sip:queue@10.0.0.5");
    let r = h.put("/v1/integration").json(&s).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for bad in [
        "queue@10.0.0.5",
        "https://pbx.example.com/queue",
        "<sip:queue@10.0.0.5>",
        "sip:queue@10.0.0.5\r\nX-Injected: 1",
    ] {
        s["call_failure_sip_target"] = json!(bad);
        let r = h.put("/v1/integration").json(&s).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?} accepted");
        let body: Value = r.json().await.unwrap();
        let fields: Vec<&str> = body["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("no field list for {bad:?}: {body}"))
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert_eq!(fields, ["call_failure_sip_target"], "{bad:?}: {body}");
    }
    assert_eq!(
        h.ops.live.settings().call_failure_sip_target.as_deref(),
        Some("sip:queue@10.0.0.5"),
        "refused PUTs changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_add_list_delete() {
    let h = Harness::start().await;
    let list = h.json("/v1/numbers").await;
    assert_eq!(
        list,
        json!([{"number": "+19585550123", "description": ""}]),
        "demo number seeded"
    );
    assert!(h.ops.live.numbers().contains_dialed("+19585550123"));

    let r = h
        .post("/v1/numbers")
        .json(&json!({"number": "+1 958 555 0199", "description": "Sales"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["number"], "+19585550199");
    assert!(h.ops.live.numbers().contains_dialed("19585550199"));

    let r = h
        .post("/v1/numbers")
        .json(&json!({"number": "+19585550199"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = h
        .post("/v1/numbers")
        .json(&json!({"number": "(958) 555-0100"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["fields"][0]["field"], "number");
    assert!(body["fields"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("parentheses"));

    let r = h.delete("/v1/numbers/%2B19585550199").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = h.delete("/v1/numbers/+19585550199").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!h.ops.live.numbers().contains_dialed("+19585550199"));
    assert_eq!(h.json("/v1/numbers").await.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_good_bad_and_wrong_type() {
    let h = Harness::start().await;
    let good =
        "number,description\n+1 958 555 0101,Main line\n+19585550102\n+44 20 7946 0958,London\n";
    let r = h
        .put("/v1/numbers")
        .header("content-type", "text/csv")
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["count"], 3);
    let list = h.json("/v1/numbers").await;
    let numbers: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["+19585550101", "+19585550102", "+442079460958"]);
    assert!(
        !h.ops.live.numbers().contains_dialed("+19585550123"),
        "CSV replaced the demo number"
    );

    let bad =
        "+19585550201\n(958) 555-0202\n+19585550201\nnot-a-number\n+1958555020\n+19585550203,ok\n";
    let r = h
        .put("/v1/numbers")
        .header("content-type", "text/csv")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let rows = body["rows"].as_array().unwrap();
    let lines: Vec<u64> = rows.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 4, 5], "{body}");
    assert!(rows[1]["reason"].as_str().unwrap().contains("duplicate"));
    // The old list stays, in the store and live.
    assert_eq!(h.json("/v1/numbers").await, list);
    assert!(h.ops.live.numbers().contains_dialed("+19585550101"));
    assert!(!h.ops.live.numbers().contains_dialed("+19585550203"));

    let r = h
        .put("/v1/numbers")
        .json(&json!(["+19585550101"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_huge_import_is_atomic_and_timely() {
    let h = Harness::start().await;
    const ROWS: usize = 100_000;
    let mut csv = String::from("phone_number,description\n");
    for i in 0..ROWS {
        // +44 7700 9xxxxx: UK mobile range, 10 national digits.
        csv.push_str(&format!("+44 7700 9{i:05},row {i}\n"));
    }
    let t = Instant::now();
    let r = h
        .put("/v1/numbers")
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["count"], ROWS);
    assert!(
        took < Duration::from_secs(30),
        "100k-row import took {took:?}"
    );
    eprintln!("100k-row CSV import: {took:?}");
    assert_eq!(h.ops.live.numbers().len(), ROWS);
    assert!(h.ops.live.numbers().contains_dialed("+447700912345"));

    // One bad row at the very end: all-or-nothing, the 100k list stays.
    csv.push_str("+44 (7700) 900001\n");
    let r = h
        .put("/v1/numbers")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["rows"][0]["line"], (ROWS + 2) as u64);
    let list = h.json("/v1/numbers").await;
    assert_eq!(list.as_array().unwrap().len(), ROWS);
}

fn start(caller: &str, call_id: &str, at: &str) -> CallStart {
    CallStart {
        started_at: parse_time(at).unwrap(),
        caller_number: caller.into(),
        called_number: "+19585550123".into(),
        sip_call_id: call_id.into(),
        instance_id: "node-test".into(),
        sip: voxgate::store::SipDetails {
            from_uri: Some(format!("sip:{caller}@198.51.100.7")),
            to_uri: Some("sip:+19585550123@127.0.0.1".into()),
            trunk_call_id: Some(format!("CA{call_id}")),
            active_calls: 1,
            signaling_encrypted: true,
            sip_authenticated: false,
        },
    }
}

fn end(at: &str, outcome: CallOutcome) -> CallEnd {
    CallEnd {
        ended_at: parse_time(at).unwrap(),
        outcome,
        failure_details: None,
        turns: 2,
        turn_latencies: vec![
            TurnLatency {
                speech_to_text_ms: None,
                assistant_ms: Some(95),
                text_to_speech_ms: Some(140),
                input: None,
                response: Some("Welcome to the help line.".into()),
            },
            TurnLatency {
                speech_to_text_ms: Some(180),
                assistant_ms: Some(95),
                text_to_speech_ms: Some(140),
                input: Some("I lost my card".into()),
                response: Some("I can block it for you.".into()),
            },
        ],
        rtp: Some(RtpStats {
            codec: voxgate::store::emodel::MediaCodec::Pcmu,
            inbound: StreamStats {
                packets: 990,
                packets_lost: 10,
                average_jitter_ms: 2.0,
                maximum_jitter_ms: 9.0,
            },
            outbound: StreamStats {
                packets: 1000,
                ..Default::default()
            },
            rtt_ms: Some(40.0),
            playout_delay_ms: 40.0,
            encrypted: false,
        }),
        cdr_custom_data: Some(json!({"account": "12345"})),
        warnings: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mau_counts_distinct_callers_per_month_through_the_call_recorder() {
    let h = Harness::start().await;
    let rec = &h.ops.recorder;
    // November: A three times (two spellings), B once, C rejected (not served) → 2.
    for (caller, id, t) in [
        ("+15551230001", "c1", "2026-11-02T10:00:00Z"),
        ("+1 555 123 0001", "c2", "2026-11-03T10:00:00Z"),
        ("+15551230001", "c3", "2026-11-20T10:00:00Z"),
        ("+15551230002", "c4", "2026-11-21T10:00:00Z"),
    ] {
        let rid = rec.start(start(caller, id, t)).await.unwrap();
        rec.end(rid, end(t, CallOutcome::Completed)).await.unwrap();
    }
    rec.rejected(start("+15551230003", "c5", "2026-11-22T10:00:00Z"), 486)
        .await
        .unwrap();
    // December: A again → 1.
    let rid = rec
        .start(start("+15551230001", "c6", "2026-12-01T00:00:00Z"))
        .await
        .unwrap();
    rec.end(rid, end("2026-12-01T00:05:00Z", CallOutcome::Transferred))
        .await
        .unwrap();

    let nov = h.json("/v1/usage/mau?month=2026-11").await;
    assert_eq!(nov["monthly_active_users"], 2, "{nov}");
    let dec = h.json("/v1/usage/mau?month=2026-12").await;
    assert_eq!(dec["monthly_active_users"], 1);
    let oct = h.json("/v1/usage/mau?month=2026-10").await;
    assert_eq!(oct["monthly_active_users"], 0);
    let r = h.get("/v1/usage/mau?month=2026-13").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "month");
    // The billing identity is the MD5 of the number, not the number.
    assert_eq!(
        month_of(parse_time("2026-11-30T23:59:59.999Z").unwrap()),
        "2026-11"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_records_are_filtered_by_time_number_and_outcome() {
    let h = Harness::start().await;
    let rec = &h.ops.recorder;
    let a = rec
        .start(start("+15551230001", "call-a", "2026-11-02T10:00:00Z"))
        .await
        .unwrap();
    rec.answer(a, parse_time("2026-11-02T10:00:01Z").unwrap())
        .await
        .unwrap();
    rec.end(a, end("2026-11-02T10:03:00Z", CallOutcome::Completed))
        .await
        .unwrap();
    let b = rec
        .start(start("+15551230002", "call-b", "2026-11-05T10:00:00Z"))
        .await
        .unwrap();
    rec.end(b, end("2026-11-05T10:01:00Z", CallOutcome::TransferFailed))
        .await
        .unwrap();
    rec.rejected(start("+15551230003", "call-c", "2026-11-06T10:00:00Z"), 503)
        .await
        .unwrap();
    let _up = rec
        .start(start("+15551230004", "call-d", "2026-11-07T10:00:00Z"))
        .await
        .unwrap();

    let all = h.json("/v1/calls").await;
    let ids = |v: &Value| -> Vec<String> {
        v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["sip_call_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&all), ["call-d", "call-c", "call-b", "call-a"]);
    let a_rec = &all["calls"][3];
    assert_eq!(a_rec["outcome"]["kind"], "completed");
    assert_eq!(a_rec["start_timestamp"], "2026-11-02T10:00:00.000Z");
    assert_eq!(a_rec["milliseconds_elapsed"], 180_000);
    assert_eq!(a_rec["turns"], 2);
    assert_eq!(a_rec["turn_latencies"][1]["assistant_ms"], 95);
    // The transcript is stored with the latencies (sqlite JSON column, no migration).
    assert_eq!(a_rec["turn_latencies"][1]["input"], "I lost my card");
    assert_eq!(
        a_rec["turn_latencies"][1]["response"],
        "I can block it for you."
    );
    assert!(
        a_rec["turn_latencies"][0].get("input").is_none(),
        "no caller input on the welcome turn: {a_rec}"
    );
    assert_eq!(
        a_rec["turn_latencies"][0]["response"],
        "Welcome to the help line."
    );
    assert_eq!(a_rec["cdr_custom_data"]["account"], "12345");
    assert_eq!(a_rec["caller_hash"].as_str().unwrap().len(), 32);
    assert_eq!(a_rec["sip"]["trunk_call_id"], "CAcall-a");
    assert_eq!(a_rec["sip"]["signaling_encrypted"], true);
    assert_eq!(a_rec["setup_milliseconds"], 1000);
    assert_eq!(a_rec["max_response_milliseconds"]["speech_to_text"], 180);
    assert_eq!(a_rec["failure_occurred"], false);
    assert_eq!(all["calls"][2]["failure_occurred"], true, "transfer failed");
    assert_eq!(all["calls"][2]["transfer_occurred"], true);
    let mos = a_rec["mos"].as_f64().unwrap();
    assert!(mos > 3.5 && mos < 4.41, "1% loss, 80 ms: {mos}");
    assert_eq!(
        all["calls"][1]["outcome"],
        json!({"kind": "rejected", "status": 503})
    );
    assert!(
        all["calls"][0]["outcome"].is_null(),
        "a call in progress has no outcome yet"
    );

    let q = |s: &str| format!("/v1/calls?{s}");
    assert_eq!(
        ids(&h.json(&q("outcome=transfer_failed")).await),
        ["call-b"]
    );
    assert_eq!(
        ids(&h.json(&q("from=2026-11-05T00:00:00Z&to=2026-11-07")).await),
        ["call-c", "call-b"]
    );
    assert_eq!(ids(&h.json(&q("number=%2B15551230002")).await), ["call-b"]);
    let r = h.get(&q("outcome=lost")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "outcome");
    let r = h.get(&q("from=yesterday")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "from");
}

/// Parses Prometheus text format 0.0.4 into (name, labels, value) samples, checking
/// every line is a comment or a well-formed sample and every sample has a TYPE.
/// One exposition sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut typed = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap();
            let kind = it.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), vec![]),
            Some((n, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed: {line}"));
                let labels = body
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (n.to_owned(), labels)
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(&name);
        assert!(typed.contains(family), "sample before TYPE: {line}");
        out.push((name, labels, value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exposition_parses_and_moves() {
    let h = Harness::start().await;
    let sample = |samples: &[Sample], name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map_or(0.0, |s| s.2)
    };
    let scrape = || async {
        let r = h.get("/metrics").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        parse_exposition(&r.text().await.unwrap())
    };
    let before = scrape().await;
    for family in [
        "voxgate_active_calls",
        "voxgate_calls_total",
        "voxgate_rtp_packets_total",
        "voxgate_srtp_auth_failures_total",
        "voxgate_srtp_replayed_total",
        "voxgate_srtp_protect_failures_total",
        "voxgate_jitter_buffer_events_total",
        "voxgate_queue_full_total",
        "voxgate_provider_latency_seconds_count",
    ] {
        assert!(before.iter().any(|s| s.0 == family), "{family} missing");
    }
    let m = voxgate::metrics::metrics();
    use voxgate::metrics::{Direction, JitterEvent, Provider, Queue};
    m.core(1).packets(Direction::In).add(5);
    m.core(1).srtp_auth_failures().inc();
    m.core(1).srtp_replayed().add(2);
    m.core(1).srtp_protect_failures().inc();
    m.core(0).jitter(JitterEvent::Concealed).add(3);
    m.core(0).queue_full(Queue::Event).inc();
    m.sip_response(488);
    m.provider_latency(Provider::SpeechToText, Duration::from_millis(70));
    let after = scrape().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert!(
        delta(
            "voxgate_rtp_packets_total",
            &[("core", "1"), ("direction", "in")]
        ) >= 5.0
    );
    assert!(delta("voxgate_srtp_auth_failures_total", &[("core", "1")]) >= 1.0);
    assert!(delta("voxgate_srtp_replayed_total", &[("core", "1")]) >= 2.0);
    assert!(delta("voxgate_srtp_protect_failures_total", &[("core", "1")]) >= 1.0);
    assert!(
        delta(
            "voxgate_jitter_buffer_events_total",
            &[("core", "0"), ("kind", "concealed")]
        ) >= 3.0
    );
    assert!(
        delta(
            "voxgate_queue_full_total",
            &[("core", "0"), ("queue", "event")]
        ) >= 1.0
    );
    assert!(sample(&after, "voxgate_sip_responses_total", &[("code", "488")]) >= 1.0);
    assert!(
        delta(
            "voxgate_provider_latency_seconds_bucket",
            &[("provider", "stt"), ("le", "0.1")]
        ) >= 1.0
    );
    // Histogram buckets are cumulative and end at +Inf = count.
    let buckets: Vec<f64> = after
        .iter()
        .filter(|(n, l, _)| {
            n == "voxgate_provider_latency_seconds_bucket"
                && l.iter().any(|(k, v)| k == "provider" && v == "stt")
        })
        .map(|s| s.2)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(
        buckets.last().copied(),
        Some(sample(
            &after,
            "voxgate_provider_latency_seconds_count",
            &[("provider", "stt")]
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_makes_healthz_unready() {
    let h = Harness::start().await;
    assert!(!h.ops.live.is_draining());
    h.ops
        .live
        .begin_drain(Instant::now() + Duration::from_secs(30));
    assert!(h.ops.live.is_draining());
    let r = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["draining"], true);
    assert_eq!(body["store"], true);
    let _ = TOKEN;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_ends_at_the_deadline_even_with_calls_up() {
    let h = Harness::start().await;
    // A call that stays up (other tests in this binary may hold calls too).
    let _id = h
        .ops
        .recorder
        .start(start("+15551239999", "long-call", "2026-11-02T10:00:00Z"))
        .await
        .unwrap();
    let t = Instant::now();
    h.ops
        .live
        .begin_drain(Instant::now() + Duration::from_millis(300));
    tokio::time::timeout(
        Duration::from_secs(10),
        voxgate::lifecycle::drained(&h.ops.live),
    )
    .await
    .expect("drain finished");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "not before the deadline"
    );
}

/// A call start stamped now (the live list only looks at the last 24 hours).
fn start_now(caller: &str, call_id: &str, instance: &str) -> CallStart {
    let mut s = start(caller, call_id, "2026-11-02T10:00:00Z");
    s.started_at = voxgate::store::records::now_millis();
    s.instance_id = instance.into();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_calls_show_this_nodes_state_and_turn_and_other_nodes_as_stored() {
    use voxgate::live_calls::{LiveCallState, LiveUpdate};
    let h = Harness::start().await;
    let rec = &h.ops.recorder;
    let live = || async {
        let v = h.json("/v1/calls/live").await;
        v["calls"].as_array().unwrap().clone()
    };
    let find = |calls: &[Value], id: &str| -> Value {
        calls
            .iter()
            .find(|c| c["sip_call_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not live: {calls:?}"))
    };

    let id = rec
        .start(start_now("+15551230001", "here", "node-test"))
        .await
        .unwrap();
    // Another node's call, answered there: only the store knows it.
    let other = start_now("+15551230002", "there", "node-other");
    let other_id = h
        .ops
        .store
        .run(move |s| s.record_call_start(&other, true, true))
        .await
        .unwrap();
    let at = voxgate::store::records::now_millis();
    h.ops
        .store
        .run(move |s| s.record_call_answer(other_id, at))
        .await
        .unwrap();

    let c = find(&live().await, "here");
    assert_eq!(
        (c["state"].as_str(), c["turns"].as_u64()),
        (Some("ringing"), Some(0))
    );
    assert_eq!(c["live_on_this_node"], true);

    rec.answer(id, voxgate::store::records::now_millis())
        .await
        .unwrap();
    rec.update_live(id, LiveUpdate::Turn(1));
    rec.update_live(id, LiveUpdate::Turn(2));
    let c = find(&live().await, "here");
    assert_eq!(c["state"], "answered");
    assert_eq!(
        c["turns"], 2,
        "turns so far, before the record is written at the end"
    );
    let stored = h.json("/v1/calls").await;
    let row = stored["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sip_call_id"] == "here")
        .unwrap()
        .clone();
    assert_eq!(row["turns"], 0, "the store has no turns until the end");

    rec.update_live(id, LiveUpdate::State(LiveCallState::OnHold));
    assert_eq!(find(&live().await, "here")["state"], "on_hold");
    rec.update_live(id, LiveUpdate::State(LiveCallState::Transferring));
    assert_eq!(find(&live().await, "here")["state"], "transferring");

    let o = find(&live().await, "there");
    assert_eq!(
        o["state"], "answered",
        "another node's call keeps the stored state"
    );
    assert_eq!(o["live_on_this_node"], false);
    assert_eq!(o["instance_id"], "node-other");

    rec.end(id, end("2026-11-02T10:03:00Z", CallOutcome::Transferred))
        .await
        .unwrap();
    let calls = live().await;
    assert!(
        calls.iter().all(|c| c["sip_call_id"] != "here"),
        "ended calls leave the live list: {calls:?}"
    );
    assert!(rec.live_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_models_come_from_the_configured_recogniser() {
    use std::sync::Arc;
    use voxgate::speech::server::{ServerConfig, ServerState};
    use voxgate::speech::{
        Credentials, EspeakTts, Grammar, PocketSphinxStt, SpeechToText, Timeouts, WatsonStt,
        WatsonSttConfig,
    };
    let h = Harness::start().await;
    // Before a provider is built: 503 with a reason, not an empty list.
    let r = h.get("/v1/speech/models").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Watson STT (here the Watson-compatible speech server, with an API key): the list is
    // the service's `GET /v1/models`.
    let grammar = Arc::new(Grammar::from_phrases(&["yes".to_owned(), "no".to_owned()]).unwrap());
    let state = ServerState::new(ServerConfig {
        stt: PocketSphinxStt::new(grammar),
        tts: EspeakTts::default(),
        api_key: Some("secret-key".into()),
        token_ttl: Duration::from_secs(60),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(voxgate::speech::server::serve(listener, state));
    let watson = |password: &str| -> Arc<dyn SpeechToText> {
        Arc::new(
            WatsonStt::new(WatsonSttConfig {
                url: url.clone(),
                credentials: Credentials::Basic {
                    username: "apikey".into(),
                    password: password.into(),
                },
                timeouts: Timeouts::default(),
            })
            .unwrap(),
        )
    };
    // A refused key is reported as the provider's failure.
    let bad = watson("wrong").models().await;
    assert!(bad.is_err(), "{bad:?}");

    let _ = h.ops.stt.set(watson("secret-key"));
    let v = h.json("/v1/speech/models").await;
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"en-US_Telephony"), "{v}");
    let first = &v["models"][0];
    assert_eq!(first["rate"], 8000);
    assert!(first["language"].as_str().unwrap().starts_with("en-"));
    // Every model listed is one the embedded recogniser accepts.
    assert_eq!(
        names.len(),
        PocketSphinxStt::model_list().len(),
        "the service's whole list: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_shows_the_tls_certificate() {
    use voxgate::sip::transport::tls::CertificateInfo;
    let h = Harness::start().await;
    let v = h.json("/v1/overview").await;
    assert!(v["tls_certificate"].is_null(), "not loaded yet: {v}");
    let _ = h.ops.tls_certificate.set(CertificateInfo {
        self_signed: false,
        path: Some("/etc/voxgate/cert.pem".into()),
        subject: Some("CN=sip.example.com".into()),
        issuer: Some("CN=Example CA".into()),
        not_after: Some("2020-01-31T00:00:00Z".into()),
    });
    let v = h.json("/v1/overview").await;
    let c = &v["tls_certificate"];
    assert_eq!(c["self_signed"], false);
    assert_eq!(c["subject"], "CN=sip.example.com");
    assert_eq!(c["path"], "/etc/voxgate/cert.pem");
    assert_eq!(c["expired"], true, "{c}");
    assert!(c["days_left"].as_i64().unwrap() < 0);
}
