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
    // One at a time: the fifty-call run queues espeak for seconds, and the others
    // time their hang-ups and barge-ins against the welcome prompt.
    let _turn = ONE_AT_A_TIME.lock().await;
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
    let stop = agent.and_then(|t| t.barge_in_stop);
    assert!(
        stop.is_some_and(|d| d < Duration::from_millis(20)),
        "playback stopped within one packet time of the detection: {stop:?}"
    );
    assert_eq!(outcome, Some(CallOutcome::Transferred));
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_presses_2_by_sip_info_and_is_transferred() {
    let _turn = ONE_AT_A_TIME.lock().await;
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
    assert!(
        turns.iter().any(|t| t.input == "2" && t.barge_in),
        "the key over the welcome is a barge-in: {turns:?}"
    );
    assert_eq!(outcome, Some(CallOutcome::Transferred));
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_hangs_up_mid_prompt_and_everything_stops() {
    let _turn = ONE_AT_A_TIME.lock().await;
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

/// p-th percentile (0..=100) of sorted durations.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let i = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_complete_with_the_gateway_share_measured() {
    let _turn = ONE_AT_A_TIME.lock().await;
    const CALLS: usize = 50;
    let dir = scratch("fifty");
    let wav = speech_wav(&dir, "agent", "agent");
    write_rtp_pcap(&dir.join("speech.pcap"), &mulaw_of(&wav), 2500);
    let mut gw = start(skill(|s| s), settings(true)).await;
    let target = gw.app.gateway.local.udp;
    let d = dir.clone();
    let started = std::time::Instant::now();
    let run = tokio::spawn(async move {
        sipp(
            &d,
            "sipp_speak_transfer.xml",
            target,
            &["-m", "50", "-l", "50", "-r", "25"],
            Duration::from_secs(90),
        )
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(100);
    let mut ended = Vec::new();
    let mut turns = Vec::new();
    while ended.len() < CALLS {
        match tokio::time::timeout_at(deadline, gw.notices.recv()).await {
            Ok(Some(voxgate::call::task::CallNotice::Turn { timing, .. })) => turns.push(timing),
            Ok(Some(voxgate::call::task::CallNotice::Ended { outcome, .. })) => ended.push(outcome),
            _ => break,
        }
    }
    let elapsed = started.elapsed();
    let run = run.await.expect("join");
    assert!(run.success, "sipp: {}", run.output);
    let transferred = ended
        .iter()
        .filter(|o| **o == CallOutcome::Transferred)
        .count();
    assert_eq!(transferred, CALLS, "outcomes: {ended:?}");
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
    let mut share: Vec<Duration> = turns.iter().filter_map(|t| t.gateway_share()).collect();
    share.sort();
    assert!(share.len() >= CALLS, "timed turns: {}", share.len());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |f: fn(&voxgate::call::task::TurnTiming) -> Option<Duration>| {
        let mut v: Vec<Duration> = turns.iter().filter_map(f).collect();
        v.sort();
        if v.is_empty() {
            "-".to_owned()
        } else {
            format!(
                "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                ms(percentile(&v, 50)),
                ms(percentile(&v, 99)),
                ms(v[v.len() - 1])
            )
        }
    };
    println!(
        "{CALLS} calls in {:.1} s, {} turns\n  barge-in (detection → playback stopped): {}\n  recognition (end of speech → final): {}\n  input → assistant request: {}\n  assistant: {}\n  synthesis (reply → first chunk): {}\n  reply → audio queued: {}\n  reply → first RTP packet: {}\n  gateway share: {}",
        elapsed.as_secs_f64(),
        turns.len(),
        pick(|t| t.barge_in_stop),
        pick(|t| t.recognition),
        pick(|t| t.input_to_assistant),
        pick(|t| t.assistant),
        pick(|t| t.synthesis),
        pick(|t| t.reply_to_audio),
        pick(|t| t.reply_to_first_packet),
        pick(|t| t.gateway_share()),
    );
    // The ≤ 10 ms p99 target is a benchmark figure (bench/call-latency.sh, bench/README
    // `## Call latency`): with the first RTP packet in the measure it includes the media
    // core's wake-up, which a loaded shared machine delays. Here: the median turn is well
    // inside it, and no turn waits for a packet slot or a timer tick (20 ms and more).
    let p50 = percentile(&share, 50);
    let p99 = percentile(&share, 99);
    assert!(
        p50 <= Duration::from_millis(10) && p99 < Duration::from_millis(20),
        "gateway share p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );
    println!("GATEWAY_SHARE_P99_MS {:.3}", ms(p99));
    let media = gw.app.media.clone();
    assert!(
        eventually(Duration::from_secs(5), || media.open_sessions() == 0).await,
        "every media session freed: {} open",
        media.open_sessions()
    );
    gw.app.shutdown().await;
}
