//! End-to-end calls with the built-in caller (real SIP over UDP, real RTP, espeak-ng
//! speech in, PocketSphinx on both ends) against the whole product in-process.

mod e2e;

use std::time::Duration;

use e2e::*;
use voxgate::call::CallOutcome;
use voxgate::caller::leg::TransferBehaviour;
use voxgate::caller::run::{CallerLine, Step};
use voxgate::sip::sdp::Direction;

const NOTICE_WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_success_puts_caller_on_hold_then_refers_and_ends_transferred() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut gw = start(skill(|s| s), settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::Accept, false),
        vec![Step::Press("1".into()), Step::Say("agent".into())],
    )
    .await;
    let (turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    let inputs: Vec<&str> = turns.iter().map(|t| t.input.as_str()).collect();
    assert!(
        inputs.contains(&"agent"),
        "speech recognised: {inputs:?}\n{:?}",
        report.lines
    );
    assert!(inputs.contains(&"1"), "RFC 4733 key received: {inputs:?}");
    let hold = report
        .lines
        .iter()
        .position(|l| *l == CallerLine::Direction(Direction::SendOnly));
    let refer = report
        .lines
        .iter()
        .position(|l| matches!(l, CallerLine::Refer { .. }));
    assert!(
        matches!((hold, refer), (Some(h), Some(r)) if h < r),
        "hold before REFER: {:?}",
        report.lines
    );
    assert_eq!(report.transfer_target(), Some(voxgate::demo::DEMO_AGENT));
    assert_eq!(outcome, Some(CallOutcome::Transferred));
    let heard: Vec<String> = report.prompts().into_iter().flatten().collect();
    assert!(
        heard.iter().any(|p| p.contains("twelve dollars")),
        "the caller heard the billing answer: {heard:?}"
    );
    gw.app.shutdown().await;
}

/// The demo skill's agent node turns disconnect off by context; remove it so the
/// integration setting decides.
fn without_skill_override(s: String) -> String {
    s.replace(", \"vgwDisconnectCallOnTransferFailure\": \"No\"", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_failure_with_disconnect_says_message_and_hangs_up() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sk = skill(without_skill_override);
    let mut gw = start(sk, settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::FailWith(486), false),
        vec![Step::Press("2".into())],
    )
    .await;
    let (_turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    assert!(
        matches!(outcome, Some(CallOutcome::TransferFailed(_))),
        "{outcome:?}"
    );
    assert!(report.transfer_target().is_some(), "{:?}", report.lines);
    assert_eq!(report.lines.last(), Some(&CallerLine::GatewayHungUp));
    // The failure message was played between the REFER and the BYE.
    let after_refer: Vec<&CallerLine> = report
        .lines
        .iter()
        .skip_while(|l| !matches!(l, CallerLine::Refer { .. }))
        .collect();
    assert!(
        after_refer
            .iter()
            .any(|l| matches!(l, CallerLine::Heard { duration, .. } if *duration > Duration::from_millis(500))),
        "the transfer-failure message was heard before the BYE: {after_refer:?}"
    );
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_failure_without_disconnect_tells_the_assistant_and_goes_on() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sk = skill(without_skill_override);
    let mut gw = start(sk, settings(false)).await;
    let _report = call(
        caller(&gw.app, TransferBehaviour::FailWith(486), false),
        vec![Step::Press("2".into()), Step::Press("9".into())],
    )
    .await;
    let (turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    let inputs: Vec<&str> = turns.iter().map(|t| t.input.as_str()).collect();
    assert!(
        inputs.contains(&"vgwCallTransferFailed"),
        "the assistant was told: {inputs:?}"
    );
    assert!(
        turns
            .iter()
            .any(|t| t.response.starts_with("Sorry, no agent is free right now")),
        "{turns:?}"
    );
    assert!(
        inputs.contains(&"9"),
        "the conversation went on: {inputs:?}"
    );
    assert_eq!(outcome, Some(CallOutcome::Completed));
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_call_transfers_like_plain() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut gw = start(skill(|s| s), settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::Accept, true),
        vec![Step::Press("2".into())],
    )
    .await;
    let (_turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    assert_eq!(outcome, Some(CallOutcome::Transferred));
    assert!(
        report.prompts().iter().flatten().count() >= 1,
        "the caller recognised the welcome over SRTP: {:?}",
        report.lines
    );
    gw.app.shutdown().await;
}
