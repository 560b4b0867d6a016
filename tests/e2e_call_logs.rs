//! A call's log lines run in the call's span (`call_id`, `instance_id`, the caller's
//! `number`), so `GET /v1/logs?q=` finds them, and lines of other tasks never carry that
//! call's fields. Own test binary: it installs the process-wide subscriber.

mod e2e;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::*;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;
use voxgate::app::Providers;
use voxgate::assistant::client::{Auth, ClientConfig, WatsonClient};
use voxgate::caller::leg::TransferBehaviour;
use voxgate::logs::LogRing;
use voxgate::settings::IntegrationSettings;

const CALLER: &str = "+15550100999";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_lines_carry_the_call_span_and_other_tasks_lines_do_not() {
    let ring = LogRing::new(500_000);
    let subscriber = tracing_subscriber::registry().with(ring.layer());
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");

    // An assistant nobody answers: the call says the failure message and hangs up,
    // logging from the call task as it goes.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut cfg = ClientConfig::new(format!("http://{refused}"), "demo", Auth::None);
    cfg.connect_timeout = Duration::from_secs(1);
    let mut providers = Providers::embedded(skill(|s| s)).expect("providers");
    providers.assistant = Arc::new(WatsonClient::new(cfg).expect("client"));
    let mut gw = start_with(providers, IntegrationSettings::default()).await;

    // Another task logging all through the call, on the same two worker threads.
    let stop = Arc::new(AtomicBool::new(false));
    let noise = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                tracing::info!("unrelated tick");
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let mut opts = caller(&gw.app, TransferBehaviour::Accept, false);
    opts.call_timeout = Duration::from_secs(25);
    let report = call(opts, Vec::new()).await;
    let (_turns, outcome) = notices_until_end(&mut gw.notices, Duration::from_secs(10)).await;
    assert!(outcome.is_some(), "the call ended");
    stop.store(true, Ordering::Relaxed);
    noise.await.expect("noise task");
    gw.app.shutdown().await;

    let lines: Vec<Value> = ring
        .search(&["unrelated tick".to_owned()], 1_000_000)
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ticks: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "unrelated tick")
        .collect();
    assert!(ticks.len() > 10, "the other task logged: {}", ticks.len());
    let leaked = ticks.iter().filter(|l| l.get("call_id").is_some()).count();
    assert_eq!(
        leaked, 0,
        "lines of another task logged under the call's span"
    );

    // The call's own lines, found by the caller's number, carry its Call-ID.
    let by_number: Vec<Value> = ring
        .search(&[CALLER.to_owned()], 100_000)
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ended = by_number
        .iter()
        .find(|l| l["message"] == "call ended")
        .unwrap_or_else(|| panic!("`call ended` found by number: {by_number:?}"));
    assert_eq!(ended["call_id"], report.call_id.as_str());
    assert_eq!(ended["number"], CALLER);
    assert!(ended.get("instance_id").is_some(), "{ended}");
}
