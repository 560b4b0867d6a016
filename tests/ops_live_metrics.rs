//! `/metrics` and `/v1/calls` follow what a running gateway really did: real SIP and RTP
//! over loopback UDP against `App` (media engine, SIP core, call service), the admin API
//! over real HTTP on a real SQLite file. Nothing is bumped by hand: the counters must
//! come from the SIP core's responses and the media engine's session statistics.
//!
//! A test binary of its own, because the Prometheus registry is process-wide.

#[path = "ops_common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use voxgate::app::{App, AppOptions, Providers};
use voxgate::assistant::DialogSkill;
use voxgate::caller::leg::{CallLeg, LegError, LegOptions};
use voxgate::gateway::GatewayConfig;
use voxgate::settings::IntegrationSettings;
use voxgate_engine::worker::EngineConfig;

fn leg(gw: SocketAddr, number: &str) -> LegOptions {
    LegOptions::plain(gw, number, "+15550107070")
}

async fn start_app(h: &common::Harness, ports: std::ops::RangeInclusive<u16>) -> App {
    App::start_with(AppOptions {
        gateway: GatewayConfig::ephemeral(),
        engine: EngineConfig {
            cores: vec![0],
            rtp_port_range: ports,
            ..EngineConfig::default()
        },
        providers: Providers::embedded(DialogSkill::demo().expect("demo skill"))
            .expect("providers"),
        settings: IntegrationSettings::default(),
        observer: None,
        ops: Some(h.ops.clone()),
    })
    .await
    .expect("gateway")
}

/// The value of one sample of the exposition (`name{labels} value`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

async fn scrape(h: &common::Harness) -> String {
    let r = h.get("/metrics").send().await.expect("GET /metrics");
    assert!(r.status().is_success(), "/metrics: {}", r.status());
    r.text().await.expect("exposition")
}

/// Scrapes `/metrics` until `done` holds (polling), at most `limit`; fails the test with
/// the last exposition otherwise.
async fn scrape_until(h: &common::Harness, limit: Duration, done: impl Fn(&str) -> bool) -> String {
    let end = std::time::Instant::now() + limit;
    loop {
        let text = scrape(h).await;
        if done(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < end,
            "/metrics did not get there in {limit:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // polling interval, not a sync
    }
}

/// One 20 ms PCMU packet of silence.
fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
    p.extend(std::iter::repeat_n(0xffu8, 160));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_call_moves_rtp_and_sip_response_counters() {
    let h = common::Harness::start().await;
    let app = start_app(&h, 43_000..=43_099).await;
    let gw = app.gateway.local.udp;

    // A number that is not configured: 403 from admission.
    match CallLeg::invite(&leg(gw, "+14155550199"), 40_000, |_| {}).await {
        Err(LegError::Refused(403, _)) => {}
        other => panic!("INVITE to an unknown number: {other:?}"),
    }

    // The demo number: answered; RTP both ways.
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("rtp socket");
    let port = rtp.local_addr().expect("rtp addr").port();
    let mut call = CallLeg::invite(&leg(gw, "+19585550123"), port, |_| {})
        .await
        .expect("call answered");
    let media = call.negotiated.remote.expect("gateway media address");
    for seq in 0..25 {
        rtp.send_to(&rtp_packet(seq), media)
            .await
            .expect("rtp send");
    }
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(20), rtp.recv_from(&mut buf))
        .await
        .expect("the gateway sent RTP within 20 s")
        .expect("rtp recv");
    assert!(n > 12 && from == media, "{n} bytes from {from}");
    call.hang_up().await.expect("BYE");

    // The session's final statistics reach /metrics once the engine closed it.
    let text = scrape_until(&h, Duration::from_secs(20), |text| {
        sample(
            text,
            "voxgate_rtp_packets_total{core=\"0\",direction=\"in\"}",
        ) > 0.0
            && sample(
                text,
                "voxgate_rtp_packets_total{core=\"0\",direction=\"out\"}",
            ) > 0.0
    })
    .await;
    assert!(
        sample(
            &text,
            "voxgate_rtp_packets_total{core=\"0\",direction=\"in\"}"
        ) >= 20.0,
        "25 packets were sent to the gateway:\n{text}"
    );
    for code in ["100", "200", "403"] {
        assert!(
            sample(
                &text,
                &format!("voxgate_sip_responses_total{{code=\"{code}\"}}")
            ) >= 1.0,
            "no {code} counted:\n{text}"
        );
    }
    // Per-core series are present for the engine's counters (zero on a clean loopback).
    for series in [
        "voxgate_srtp_auth_failures_total{core=\"0\"}",
        "voxgate_jitter_buffer_events_total{core=\"0\",kind=\"lost\"}",
        "voxgate_queue_full_total{core=\"0\",queue=\"command\"}",
    ] {
        assert!(text.contains(series), "{series} missing");
    }
    // The core's health (copied about every second): it served the session's timers
    // (playout of the 25 packets) and used CPU time.
    let text = scrape_until(&h, Duration::from_secs(20), |text| {
        sample(
            text,
            "voxgate_media_core_service_lateness_seconds_count{core=\"0\"}",
        ) >= 1.0
            && sample(text, "voxgate_media_core_cpu_seconds_total{core=\"0\"}") > 0.0
    })
    .await;
    // A cumulative histogram: each bucket holds the ones before it.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("voxgate_media_core_service_lateness_seconds_bucket{core=\"0\","))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect();
    assert_eq!(buckets.len(), 9, "eight bounds and +Inf:\n{text}");
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "buckets not cumulative: {buckets:?}"
    );
    assert!(buckets[8] >= 1.0, "{buckets:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_to_an_unknown_number_is_recorded_as_rejected_403() {
    let h = common::Harness::start().await;
    let app = start_app(&h, 43_100..=43_199).await;
    let gw = app.gateway.local.udp;

    // The leg does not expose the Call-ID of a refused INVITE: the record is found by
    // the called number.
    match CallLeg::invite(&leg(gw, "+14155550142"), 40_002, |_| {}).await {
        Err(LegError::Refused(403, _)) => {}
        other => panic!("INVITE to an unknown number: {other:?}"),
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let calls = h.json("/v1/calls?outcome=rejected").await;
        let found = calls["calls"].as_array().and_then(|c| {
            c.iter()
                .find(|c| c["called_number"] == "+14155550142")
                .cloned()
        });
        if let Some(r) = found {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record of the refused INVITE: {calls}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // polling interval, not a sync
    };
    assert_eq!(
        record["outcome"],
        serde_json::json!({"kind": "rejected", "status": 403}),
        "{record}"
    );
    assert!(
        record["ended_at"].is_number(),
        "a finished record: {record}"
    );
    assert!(
        record["sip_call_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{record}"
    );
    assert_eq!(record["caller_number"], "+15550107070", "{record}");
    assert!(record["answered_at"].is_null(), "never answered: {record}");
    // Not a served caller: no monthly active user.
    let month = voxgate::store::records::month_of(voxgate::store::records::now_millis());
    let mau = h.json(&format!("/v1/usage/mau?month={month}")).await;
    assert_eq!(mau["monthly_active_users"], 0, "{mau}");

    let text = scrape(&h).await;
    assert!(
        sample(&text, "voxgate_calls_total{outcome=\"rejected\"}") >= 1.0,
        "{text}"
    );
    app.shutdown().await;
}
