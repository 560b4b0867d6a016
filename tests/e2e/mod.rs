//! Shared harness of the end-to-end tests: the whole product in-process (SIP gateway,
//! media engine, embedded speech, the demo skill), a collector of its call notices, and
//! the built-in caller.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use voxgate::app::{App, Providers};
use voxgate::assistant::DialogSkill;
use voxgate::call::task::{CallNotice, TurnTiming};
use voxgate::call::CallOutcome;
use voxgate::caller::leg::TransferBehaviour;
use voxgate::caller::run::{CallReport, CallerOptions, Step};
use voxgate::gateway::GatewayConfig;
use voxgate::settings::IntegrationSettings;
use voxgate::sip::sdp::answer::Codec;
use voxgate_engine::worker::EngineConfig;

/// The demo number.
pub const NUMBER: &str = "+19585550123";

/// A running gateway and the notices of its calls.
pub struct Running {
    pub app: App,
    pub notices: mpsc::UnboundedReceiver<CallNotice>,
}

/// The demo skill, optionally edited (`edit` maps the JSON text).
pub fn skill(edit: impl Fn(String) -> String) -> DialogSkill {
    let json = edit(voxgate::assistant::engine::DEMO_SKILL_JSON.to_owned());
    DialogSkill::from_json(&json).expect("skill loads")
}

/// Starts the gateway with the embedded providers.
pub async fn start(skill: DialogSkill, settings: IntegrationSettings) -> Running {
    start_with(Providers::embedded(skill).expect("providers"), settings).await
}

/// Starts the gateway with the given providers.
pub async fn start_with(providers: Providers, settings: IntegrationSettings) -> Running {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = App::start(
        GatewayConfig::ephemeral(),
        EngineConfig {
            cores: vec![0],
            ..EngineConfig::default()
        },
        providers,
        settings,
        Some(tx),
    )
    .await
    .expect("gateway starts");
    Running { app, notices: rx }
}

/// Caller options for the demo number on this gateway.
pub fn caller(app: &App, transfer: TransferBehaviour, srtp: bool) -> CallerOptions {
    let sip = app.gateway.local.udp;
    CallerOptions {
        gateway: sip,
        request_uri: format!("sip:{NUMBER}@{sip}"),
        caller_number: "+15550100999".into(),
        local_ip: IpAddr::from([127, 0, 0, 1]),
        codec: Codec::Pcmu,
        srtp,
        transfer,
        expected_prompts: voxgate::demo::skill_prompts(voxgate::assistant::engine::DEMO_SKILL_JSON),
        voice: None,
        prompt_gap: Duration::from_millis(1200),
        call_timeout: Duration::from_secs(60),
    }
}

/// Runs one scripted call and returns what the caller saw.
pub async fn call(opts: CallerOptions, script: Vec<Step>) -> CallReport {
    voxgate::caller::run::run_call(opts, script, |_| {})
        .await
        .expect("the call completes")
}

/// The notices of one call (up to and including its end), waiting at most `within`.
pub async fn notices_until_end(
    rx: &mut mpsc::UnboundedReceiver<CallNotice>,
    within: Duration,
) -> (Vec<TurnTiming>, Option<CallOutcome>) {
    let deadline = tokio::time::Instant::now() + within;
    let mut turns = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(CallNotice::Turn { timing, .. })) => turns.push(timing),
            Ok(Some(CallNotice::Ended { outcome, .. })) => return (turns, Some(outcome)),
            _ => return (turns, None),
        }
    }
}

/// Polls `pred` every 20 ms until it holds or `within` passes; returns its last value.
pub async fn eventually(within: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if pred() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Settings with the given transfer-failure disconnect.
pub fn settings(disconnect_on_transfer_failure: bool) -> IntegrationSettings {
    IntegrationSettings {
        disconnect_on_transfer_failure,
        ..IntegrationSettings::default()
    }
}
