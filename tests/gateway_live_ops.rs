//! The running gateway follows the operator: numbers and settings changed through the
//! admin API apply to the next INVITE without a restart, draining answers 503, and a call
//! leaves a call record and a monthly active user. Real SIP over loopback UDP, real admin
//! HTTP, a real SQLite file.

#[path = "ops_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use voxgate::app::{App, AppOptions, Providers};
use voxgate::assistant::DialogSkill;
use voxgate::caller::leg::{CallLeg, LegError, LegOptions};
use voxgate::gateway::GatewayConfig;
use voxgate::settings::IntegrationSettings;
use voxgate_engine::worker::EngineConfig;

fn leg(gw: std::net::SocketAddr, number: &str) -> LegOptions {
    LegOptions::plain(gw, number, "+15550102030")
}

async fn invite_status(gw: std::net::SocketAddr, number: &str) -> Result<CallLeg, u16> {
    match CallLeg::invite(&leg(gw, number), 40_000, |_| {}).await {
        Ok(l) => Ok(l),
        Err(LegError::Refused(status, _)) => Err(status),
        Err(e) => panic!("INVITE to {number}: {e}"),
    }
}

/// Polls `f` until it is true, at most `limit`.
async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // polling interval, not a sync
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_apply_to_the_next_invite_and_calls_are_recorded() {
    let h = common::Harness::start().await;
    let app = App::start_with(AppOptions {
        gateway: GatewayConfig::ephemeral(),
        engine: EngineConfig {
            cores: vec![0],
            rtp_port_range: 42_000..=42_999,
            ..EngineConfig::default()
        },
        providers: Providers::embedded(DialogSkill::demo().unwrap()).unwrap(),
        settings: IntegrationSettings::default(),
        observer: None,
        ops: Some(h.ops.clone()),
    })
    .await
    .expect("gateway");
    let gw = app.gateway.local.udp;

    // A number not on the list: 403. Add it through the admin API: the next INVITE is answered.
    assert_eq!(invite_status(gw, "+14155550100").await.err(), Some(403));
    let r = h
        .post("/v1/numbers")
        .json(&serde_json::json!({"number": "+1 415 555 0100", "description": "sales"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "add number: {}", r.status());
    let mut answered = None;
    assert!(
        eventually(Duration::from_secs(5), async || {
            match invite_status(gw, "+14155550100").await {
                Ok(l) => {
                    answered = Some(l);
                    true
                }
                Err(_) => false,
            }
        })
        .await,
        "the added number was never accepted"
    );
    let mut call = answered.unwrap();
    call.hang_up().await.unwrap();

    // Force secure trunking through the admin API: a plain RTP offer now gets 488.
    let mut settings: serde_json::Value = h.json("/v1/integration").await;
    settings["force_secure_trunking"] = serde_json::Value::Bool(true);
    let r = h
        .put("/v1/integration")
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "settings: {}", r.status());
    assert!(
        eventually(Duration::from_secs(5), async || invite_status(
            gw,
            "+19585550123"
        )
        .await
        .err()
            == Some(488))
        .await,
        "force secure trunking did not apply"
    );
    settings["force_secure_trunking"] = serde_json::Value::Bool(false);
    h.put("/v1/integration")
        .json(&settings)
        .send()
        .await
        .unwrap();

    // The finished call is in the records, and its caller counts once for the month.
    assert!(
        eventually(Duration::from_secs(10), async || {
            let calls = h.json("/v1/calls").await;
            calls["calls"].as_array().is_some_and(|c| {
                // The 403 before the number was added is recorded too (rejected): look
                // for the answered one.
                c.iter().any(|c| {
                    c["called_number"] == "+14155550100"
                        && c["answered_at"].is_number()
                        && c["ended_at"].is_number()
                })
            })
        })
        .await,
        "no call record for the answered call"
    );
    let month = voxgate::store::records::month_of(voxgate::store::records::now_millis());
    let mau = h.json(&format!("/v1/usage/mau?month={month}")).await;
    assert_eq!(mau["monthly_active_users"], 1, "{mau}");

    // Draining: new INVITEs get 503.
    h.ops
        .live
        .begin_drain(tokio::time::Instant::now().into_std() + Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(5), async || invite_status(
            gw,
            "+19585550123"
        )
        .await
        .err()
            == Some(503))
        .await,
        "draining did not refuse new calls"
    );
    app.shutdown().await;
}
