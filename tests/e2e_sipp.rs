//! End-to-end calls from SIPp (Debian sip-tester) against the whole product in-process:
//! RTP replayed from a pcap of speech synthesized at run time, the hold re-INVITE and
//! the REFER answered by the peer, DTMF by SIP INFO, and a hang-up mid-prompt.

mod e2e;

use std::time::Duration;

use e2e::*;
use voxgate::call::CallOutcome;

const LIMIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_speaks_over_the_welcome_and_is_transferred() {
    let dir = scratch("speak");
    let wav = speech_wav(&dir, "agent", "agent");
    // 2.5 s in: the welcome (about 8 s) is playing when the caller speaks.
    write_rtp_pcap(&dir.join("speech.pcap"), &mulaw_of(&wav), 2500);
    let mut gw = start(skill(|s| s), settings(true)).await;
    let target = gw.app.gateway.local.udp;
    let d = dir.clone();
    let run = tokio::spawn(async move {
        sipp(&d, "sipp_speak_transfer.xml", target, &["-m", "1"], LIMIT).await
    });
    let (turns, outcome) = notices_until_end(&mut gw.notices, LIMIT).await;
    let run = run.await.expect("join");
    assert!(run.success, "sipp: {}", run.output);
    let agent = turns.iter().find(|t| t.input == "agent");
    assert!(
        agent.is_some(),
        "the pcap's speech was recognised: {turns:?}"
    );
    assert!(
        agent.is_some_and(|t| t.barge_in),
        "the caller spoke over the welcome: the turn is flagged barge-in: {turns:?}"
    );
    assert_eq!(outcome, Some(CallOutcome::Transferred));
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_presses_2_by_sip_info_and_is_transferred() {
    let dir = scratch("info");
    let mut gw = start(skill(|s| s), settings(true)).await;
    let target = gw.app.gateway.local.udp;
    let d = dir.clone();
    let run = tokio::spawn(async move {
        sipp(&d, "sipp_info_transfer.xml", target, &["-m", "1"], LIMIT).await
    });
    let (turns, outcome) = notices_until_end(&mut gw.notices, LIMIT).await;
    let run = run.await.expect("join");
    assert!(run.success, "sipp: {}", run.output);
    assert!(
        turns.iter().any(|t| t.input == "2"),
        "the INFO key reached the assistant: {turns:?}"
    );
    assert_eq!(outcome, Some(CallOutcome::Transferred));
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_hangs_up_mid_prompt_and_everything_stops() {
    let dir = scratch("hangup");
    let mut gw = start(skill(|s| s), settings(true)).await;
    let target = gw.app.gateway.local.udp;
    let d = dir.clone();
    let run = tokio::spawn(async move {
        sipp(
            &d,
            "sipp_hangup_mid_prompt.xml",
            target,
            &["-m", "1"],
            LIMIT,
        )
        .await
    });
    let (turns, outcome) = notices_until_end(&mut gw.notices, LIMIT).await;
    let run = run.await.expect("join");
    assert!(run.success, "sipp: {}", run.output);
    assert!(
        turns.iter().any(|t| t.turn == 1),
        "the welcome was playing when the caller hung up: {turns:?}"
    );
    assert_eq!(outcome, Some(CallOutcome::Completed), "{turns:?}");
    let media = gw.app.media.clone();
    assert!(
        eventually(Duration::from_secs(2), || media.open_sessions() == 0).await,
        "the media session was freed: {} open",
        media.open_sessions()
    );
    gw.app.shutdown().await;
}
