//! Call failure: the assistant service or the speech service goes away mid-call. The
//! gateway speaks the call-failure message and transfers the caller to the failure
//! target, or, with none configured, ends the call with BYE.

mod e2e;

use std::sync::Arc;
use std::time::Duration;

use e2e::*;
use voxgate::app::Providers;
use voxgate::assistant::client::{Auth, ClientConfig, WatsonClient};
use voxgate::call::task::TurnTiming;
use voxgate::call::CallOutcome;
use voxgate::caller::leg::TransferBehaviour;
use voxgate::caller::run::{CallReport, CallerLine, Step};
use voxgate::settings::IntegrationSettings;
use voxgate::speech::{
    Credentials, Timeouts, WatsonStt, WatsonSttConfig, WatsonTts, WatsonTtsConfig,
};

const FAILURE_TARGET: &str = "sip:failover@127.0.0.1:5090";
const T: Duration = Duration::from_secs(30);

fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(3),
        idle: Duration::from_secs(3),
    }
}

/// Asserts the caller heard a message after its last input and before the end.
fn heard_failure_message(lines: &[CallerLine]) -> bool {
    let last_input = lines
        .iter()
        .rposition(|l| matches!(l, CallerLine::Said(_) | CallerLine::Pressed(_)))
        .unwrap_or(0);
    lines[last_input..].iter().any(
        |l| matches!(l, CallerLine::Heard { duration, .. } if *duration > Duration::from_millis(700)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_stopped_mid_call_speaks_failure_message_and_transfers_to_failure_target() {
    let sk = skill(|s| s);
    let upstream = assistant_server(sk.clone()).await;
    let relay = Relay::start(upstream).await;
    let mut cfg = ClientConfig::new(format!("http://{}", relay.addr), "demo", Auth::None);
    cfg.timeout = Duration::from_secs(3);
    cfg.connect_timeout = Duration::from_secs(1);
    let mut providers = Providers::embedded(sk).expect("providers");
    providers.assistant = Arc::new(WatsonClient::new(cfg).expect("client"));
    let settings = IntegrationSettings {
        call_failure_sip_target: Some(FAILURE_TARGET.into()),
        ..IntegrationSettings::default()
    };
    let mut gw = start_with(providers, settings).await;
    let opts = caller(&gw.app, TransferBehaviour::Accept, false);
    let caller = tokio::spawn(call(opts, vec![Step::Press("1".into())]));
    let welcome = first_turn(&mut gw.notices, T).await;
    assert!(
        welcome.is_some(),
        "the welcome turn went through the assistant"
    );
    relay.stop();
    let (_turns, outcome) = notices_until_end(&mut gw.notices, T).await;
    let report = caller.await.expect("join");
    assert!(
        matches!(&outcome, Some(CallOutcome::CallFailed(_))),
        "{outcome:?}"
    );
    assert_eq!(
        report.transfer_target(),
        Some(FAILURE_TARGET),
        "{:?}",
        report.lines
    );
    assert!(heard_failure_message(&report.lines), "{:?}", report.lines);
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_service_stopped_mid_call_speaks_failure_message_and_hangs_up() {
    let sk = skill(|s| s);
    let upstream = speech_server(&sk).await;
    let relay = Relay::start(upstream).await;
    let mut providers = Providers::embedded(sk).expect("providers");
    providers.stt = Arc::new(
        WatsonStt::new(WatsonSttConfig {
            url: format!("http://{}", relay.addr),
            credentials: Credentials::None,
            timeouts: short_timeouts(),
        })
        .expect("stt"),
    );
    let mut gw = start_with(providers, IntegrationSettings::default()).await;
    let opts = caller(&gw.app, TransferBehaviour::Accept, false);
    let caller = tokio::spawn(call(opts, vec![Step::Say("billing".into())]));
    let welcome = first_turn(&mut gw.notices, T).await;
    assert!(welcome.is_some(), "the welcome was spoken");
    relay.stop();
    let (_turns, outcome) = notices_until_end(&mut gw.notices, T).await;
    let report = caller.await.expect("join");
    assert!(
        matches!(&outcome, Some(CallOutcome::CallFailed(_))),
        "{outcome:?}"
    );
    assert_eq!(report.transfer_target(), None, "{:?}", report.lines);
    assert_eq!(report.lines.last(), Some(&CallerLine::GatewayHungUp));
    assert!(heard_failure_message(&report.lines), "{:?}", report.lines);
    gw.app.shutdown().await;
}

/// A call that says nothing, against a gateway with these providers and settings, until
/// the gateway ends it (the gateway is shut down after): its turns, outcome and what the
/// caller heard.
async fn silent_call(
    providers: Providers,
    settings: IntegrationSettings,
) -> (Vec<TurnTiming>, Option<CallOutcome>, CallReport) {
    let mut gw = start_with(providers, settings).await;
    let mut opts = caller(&gw.app, TransferBehaviour::Accept, false);
    opts.call_timeout = Duration::from_secs(25);
    let caller = tokio::spawn(call(opts, Vec::new()));
    let (turns, outcome) = notices_until_end(&mut gw.notices, T).await;
    let report = caller.await.expect("join");
    gw.app.shutdown().await;
    (turns, outcome, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_down_at_call_start_speaks_failure_message_and_transfers_to_failure_target() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sk = skill(|s| s);
    let mut cfg = ClientConfig::new(
        format!("http://{}", down_service().await),
        "demo",
        Auth::None,
    );
    cfg.timeout = Duration::from_secs(3);
    cfg.connect_timeout = Duration::from_secs(1);
    let mut providers = Providers::embedded(sk).expect("providers");
    providers.assistant = Arc::new(WatsonClient::new(cfg).expect("client"));
    let settings = IntegrationSettings {
        call_failure_sip_target: Some(FAILURE_TARGET.into()),
        ..IntegrationSettings::default()
    };
    let (turns, outcome, report) = silent_call(providers, settings).await;
    assert!(
        matches!(&outcome, Some(CallOutcome::CallFailed(r)) if r.starts_with("assistant")),
        "{outcome:?}"
    );
    assert!(turns.is_empty(), "no assistant turn: {turns:?}");
    assert_eq!(
        report.transfer_target(),
        Some(FAILURE_TARGET),
        "{:?}",
        report.lines
    );
    assert!(heard_failure_message(&report.lines), "{:?}", report.lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_down_at_call_start_without_failure_target_ends_with_bye() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sk = skill(|s| s);
    let mut cfg = ClientConfig::new(
        format!("http://{}", down_service().await),
        "demo",
        Auth::None,
    );
    cfg.connect_timeout = Duration::from_secs(1);
    let mut providers = Providers::embedded(sk).expect("providers");
    providers.assistant = Arc::new(WatsonClient::new(cfg).expect("client"));
    let (_turns, outcome, report) = silent_call(providers, IntegrationSettings::default()).await;
    assert!(
        matches!(&outcome, Some(CallOutcome::CallFailed(_))),
        "{outcome:?} {:?}",
        report.lines
    );
    assert_eq!(report.transfer_target(), None, "{:?}", report.lines);
    assert_eq!(report.lines.last(), Some(&CallerLine::GatewayHungUp));
    assert!(heard_failure_message(&report.lines), "{:?}", report.lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_service_down_at_call_start_speaks_failure_message_and_hangs_up() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sk = skill(|s| s);
    let mut providers = Providers::embedded(sk).expect("providers");
    providers.stt = Arc::new(
        WatsonStt::new(WatsonSttConfig {
            url: format!("http://{}", down_service().await),
            credentials: Credentials::None,
            timeouts: short_timeouts(),
        })
        .expect("stt"),
    );
    let (turns, outcome, report) = silent_call(providers, IntegrationSettings::default()).await;
    assert!(
        matches!(&outcome, Some(CallOutcome::CallFailed(r)) if r.starts_with("speech to text")),
        "{outcome:?}"
    );
    assert!(turns.is_empty(), "a deaf call has no turns: {turns:?}");
    assert_eq!(report.lines.last(), Some(&CallerLine::GatewayHungUp));
    assert!(heard_failure_message(&report.lines), "{:?}", report.lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_service_down_failure_message_is_spoken_by_the_embedded_synthesizer() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sk = skill(|s| s);
    let mut providers = Providers::embedded(sk).expect("providers");
    providers.tts = Arc::new(
        WatsonTts::new(WatsonTtsConfig {
            url: format!("http://{}", down_service().await),
            credentials: Credentials::None,
            timeouts: short_timeouts(),
        })
        .expect("tts"),
    );
    let (_turns, outcome, report) = silent_call(providers, IntegrationSettings::default()).await;
    assert!(
        matches!(&outcome, Some(CallOutcome::CallFailed(r)) if r.starts_with("text to speech")),
        "{outcome:?}"
    );
    assert_eq!(report.lines.last(), Some(&CallerLine::GatewayHungUp));
    assert!(heard_failure_message(&report.lines), "{:?}", report.lines);
}
