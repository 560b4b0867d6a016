//! A call negotiated with Opus end to end: the built-in caller offers only
//! `opus/48000/2` (+ telephone-event/48000) to an in-process `voxgate::app::App` (the
//! demo), over loopback UDP. The gateway accepts Opus, transcodes to and from its 8 kHz
//! speech side, receives the RFC 4733 digit on the 48 kHz clock, keeps Opus through the
//! hold re-INVITE and transfers the call; the caller recognises the gateway's Opus
//! prompts (the welcome and the billing answer) as the skill's texts.
//!
//! The welcome used to come out as a digit string: the caller cut each prompt at its
//! detected speech start (60 ms into the first syllable, no silence before it), and
//! PocketSphinx's fresh decoder misread that clip when Opus-coded. The caller now keeps
//! a 400 ms lead-in (`caller::run::PromptCapture`).

use voxgate::sip::sdp::Codec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_call_with_opus_negotiates_dtmf_hold_transfer_and_is_understood() {
    let verdict = voxgate::demo::demo_verdict(false, Codec::Opus)
        .await
        .expect("the demo ran");
    assert!(!verdict.is_empty(), "the Opus call did not complete");
    for (ok, what) in &verdict {
        assert!(*ok, "failed: {what}\n{verdict:?}");
    }
    assert!(verdict.iter().any(|(ok, w)| *ok && w.contains("DTMF")));
    assert!(verdict.iter().any(|(ok, w)| *ok && w.contains("REFER")));
    assert!(verdict
        .iter()
        .any(|(ok, w)| *ok && w.contains("recognised the gateway's prompts")));
}
