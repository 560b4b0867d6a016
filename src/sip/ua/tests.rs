//! The UA core in virtual time: real messages (parsed by the crate's parser) in, the
//! core's transmissions parsed back, timers driven by hand.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::settings::IntegrationSettings;
use crate::sip::dialog::{CallRef, ReferRequest, TransferOutcome};
use crate::sip::{HeaderName, SipMessage};

const SDP: &str = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: "127.0.0.1:5070".parse().unwrap(),
        conn: None,
    }
}

fn core(settings: IntegrationSettings) -> SipCore {
    let a = "127.0.0.1:5060".parse().unwrap();
    let numbers: HashSet<String> = ["+19585550123".to_owned()].into_iter().collect();
    SipCore::new(CoreConfig::new(
        LocalAddrs {
            udp: a,
            tcp: a,
            tls: a,
        },
        settings,
        numbers,
    ))
}

fn request(
    method: &str,
    branch: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> RequestView {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    let text = format!(
        "{method} sip:+19585550123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nFrom: <sip:+15550001@127.0.0.1>;tag=caller\r\nTo: <sip:+19585550123@127.0.0.1>{to_tag}\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:trunk@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let Ok(SipMessage::Request(r)) = crate::sip::parse(Bytes::from(text)) else {
        panic!("test request parses")
    };
    RequestView::from_request(&r).expect("view")
}

/// (status or method, To tag, text) of every transmission.
fn sent(core: &mut SipCore) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        let text = String::from_utf8_lossy(&t.bytes).into_owned();
        let first = text
            .split(' ')
            .nth(if text.starts_with("SIP/2.0") { 1 } else { 0 })
            .unwrap_or("")
            .to_owned();
        out.push((first, text));
    }
    out
}

fn codes(v: &[(String, String)]) -> Vec<&str> {
    v.iter().map(|(c, _)| c.as_str()).collect()
}

fn events(core: &mut SipCore) -> Vec<CallEvent> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn to_tag_of(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split("tag=").nth(1))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Runs every timer due up to `t0 + until`.
fn advance(core: &mut SipCore, until: Instant) {
    for _ in 0..10_000 {
        match core.poll_timeout() {
            Some(t) if t <= until => core.handle_timeout(t),
            _ => break,
        }
    }
}

/// What the core sent: (status code or method, message text) each.
type Sent = Vec<(String, String)>;

/// An INVITE with `extra` headers and `body` from the trunk, answered on port 20000:
/// the call, what went out before the answer and what the answer sent.
fn invite_and_answer(
    core: &mut SipCore,
    t0: Instant,
    extra: &str,
    body: &str,
) -> (CallRef, Sent, Sent) {
    core.handle_request(
        request("INVITE", "z9hG4bK1", 1, None, extra, body),
        flow(),
        t0,
    );
    let before = sent(core);
    let call = match events(core).as_slice() {
        [CallEvent::Incoming(i)] => i.call,
        e => panic!("{e:?}"),
    };
    core.answer(call, "127.0.0.1:20000".parse().unwrap(), t0)
        .expect("answer");
    (call, before, sent(core))
}

fn answered(core: &mut SipCore, t0: Instant, extra: &str) -> (CallRef, String) {
    let (call, before, s) = invite_and_answer(core, t0, extra, SDP);
    assert_eq!(codes(&before), ["100", "180"]);
    assert_eq!(codes(&s), ["200"]);
    assert!(s[0].1.contains("m=audio 20000 RTP/AVP 0"), "{}", s[0].1);
    (call, to_tag_of(&s[0].1))
}

#[test]
fn lost_ack_retransmits_200_then_hangs_up_with_bye() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, _) = answered(&mut c, t0, "");
    advance(&mut c, t0 + Duration::from_secs(40));
    let s = sent(&mut c);
    let n200 = s.iter().filter(|(c, _)| c == "200").count();
    assert_eq!(n200, 10, "Timer G schedule over 32 s");
    assert_eq!(s.last().map(|(c, _)| c.as_str()), Some("BYE"));
    let ev = events(&mut c);
    assert!(ev.iter().any(|e| matches!(e, CallEvent::Ended { call: x, reason: EndReason::AckTimeout } if *x == call)), "{ev:?}");
    assert_eq!(c.active_calls(), 0);
}

#[test]
fn retransmitted_invite_is_absorbed_and_lost_200_is_resent() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    c.handle_request(request("INVITE", "z9hG4bK1", 1, None, "", SDP), flow(), t0);
    let _ = sent(&mut c);
    let call = match events(&mut c).as_slice() {
        [CallEvent::Incoming(i)] => i.call,
        e => panic!("{e:?}"),
    };
    c.handle_request(request("INVITE", "z9hG4bK1", 1, None, "", SDP), flow(), t0);
    assert_eq!(
        codes(&sent(&mut c)),
        ["180"],
        "the last provisional is resent"
    );
    assert!(events(&mut c).is_empty(), "no second call");
    c.answer(call, "127.0.0.1:20000".parse().unwrap(), t0)
        .expect("answer");
    let tag = to_tag_of(&sent(&mut c)[0].1);
    // The 200 is lost: the trunk retransmits the INVITE and gets the 200 again.
    c.handle_request(
        request("INVITE", "z9hG4bK1", 1, None, "", SDP),
        flow(),
        t0 + Duration::from_millis(300),
    );
    assert_eq!(codes(&sent(&mut c)), ["200"]);
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0 + Duration::from_millis(400),
    );
    assert!(matches!(
        events(&mut c).as_slice(),
        [CallEvent::Answered { .. }, CallEvent::Established { .. }]
    ));
    advance(&mut c, t0 + Duration::from_secs(40));
    assert!(sent(&mut c).is_empty(), "no retransmission after the ACK");
    assert_eq!(c.active_calls(), 1);
}

#[test]
fn merged_request_gets_482() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    c.handle_request(request("INVITE", "z9hG4bK1", 1, None, "", SDP), flow(), t0);
    let _ = sent(&mut c);
    c.handle_request(
        request("INVITE", "z9hG4bKother", 1, None, "", SDP),
        flow(),
        t0,
    );
    assert_eq!(codes(&sent(&mut c)), ["482"]);
}

#[test]
fn cancel_answers_200_and_487_and_the_ack_stops_timer_g() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    c.handle_request(request("INVITE", "z9hG4bK1", 1, None, "", SDP), flow(), t0);
    let _ = sent(&mut c);
    let _ = events(&mut c);
    c.handle_request(request("CANCEL", "z9hG4bK1", 1, None, "", ""), flow(), t0);
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["200", "487"]);
    assert!(matches!(
        events(&mut c).as_slice(),
        [CallEvent::Ended {
            reason: EndReason::Cancelled,
            ..
        }]
    ));
    let tag = to_tag_of(&s[1].1);
    c.handle_request(
        request("ACK", "z9hG4bK1", 1, Some(&tag), "", ""),
        flow(),
        t0 + Duration::from_millis(100),
    );
    advance(&mut c, t0 + Duration::from_secs(40));
    assert!(sent(&mut c).is_empty());
    assert_eq!(
        c.transaction_counts(),
        (0, 0),
        "all transactions gone after Timers I and J"
    );
}

#[test]
fn bye_from_trunk_ends_the_call_and_stale_dialog_gets_481() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (_, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    c.handle_request(
        request("BYE", "z9hG4bK3", 2, Some(&tag), "", ""),
        flow(),
        t0,
    );
    assert_eq!(codes(&sent(&mut c)), ["200"]);
    assert!(matches!(
        events(&mut c).as_slice(),
        [CallEvent::Ended {
            reason: EndReason::RemoteBye,
            ..
        }]
    ));
    c.handle_request(
        request("BYE", "z9hG4bK4", 3, Some(&tag), "", ""),
        flow(),
        t0,
    );
    assert_eq!(codes(&sent(&mut c)), ["481"]);
}

/// A call answered and ACKed at `t0` with a 90 s session timer refreshed by `who`
/// (`uac` = the trunk, `uas` = us); events so far drained.
fn timed_session(t0: Instant, who: &str) -> (SipCore, CallRef, String) {
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(
        &mut c,
        t0,
        &format!("Supported: timer\r\nSession-Expires: 90;refresher={who}\r\n"),
    );
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    (c, call, tag)
}

#[test]
fn session_timer_without_refresh_ends_the_call_with_bye() {
    let t0 = Instant::now();
    let (mut c, call, tag) = timed_session(t0, "uac");
    // A refresh at 50 s (UPDATE) restarts the timer.
    c.handle_request(
        request(
            "UPDATE",
            "z9hG4bK3",
            2,
            Some(&tag),
            "Session-Expires: 90;refresher=uac\r\n",
            "",
        ),
        flow(),
        t0 + Duration::from_secs(50),
    );
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["200"]);
    assert!(s[0].1.contains("Session-Expires: 90;refresher=uac"));
    advance(&mut c, t0 + Duration::from_secs(109));
    assert!(
        sent(&mut c).is_empty(),
        "still within 90 - 30 s of the refresh"
    );
    advance(&mut c, t0 + Duration::from_millis(110_100));
    assert_eq!(
        codes(&sent(&mut c)),
        ["BYE"],
        "at 90 - 30 s after the refresh"
    );
    assert!(events(&mut c).iter().any(|e| matches!(e, CallEvent::Ended { call: x, reason: EndReason::SessionExpired } if *x == call)));
}

#[test]
fn small_session_interval_gets_422() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    c.handle_request(
        request(
            "INVITE",
            "z9hG4bK1",
            1,
            None,
            "Session-Expires: 30\r\n",
            SDP,
        ),
        flow(),
        t0,
    );
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["100", "422"]);
    assert!(s[1].1.contains("Min-SE: 90"));
}

#[test]
fn refer_without_final_notify_times_out() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    let req = ReferRequest {
        target: "sip:agent@pbx".into(),
        referred_by: None,
        headers: vec![],
    };
    c.refer(call, &req, t0).expect("refer");
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["REFER"]);
    assert!(s[0].1.contains("Refer-To: <sip:agent@pbx>"));
    let branch = s[0]
        .1
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let resp = ResponseView {
        status: 202,
        branch: Some(branch),
        call_id: "call-1".into(),
        cseq: 1,
        cseq_method: "REFER".into(),
        ..Default::default()
    };
    c.handle_response(resp, t0 + Duration::from_millis(50));
    assert!(matches!(
        events(&mut c).as_slice(),
        [CallEvent::Transfer {
            outcome: TransferOutcome::Trying,
            ..
        }]
    ));
    assert!(c.refer(call, &req, t0).is_err(), "one transfer at a time");
    advance(&mut c, t0 + Duration::from_secs(61));
    assert!(events(&mut c).iter().any(|e| matches!(
        e,
        CallEvent::Transfer {
            outcome: TransferOutcome::TimedOut,
            ..
        }
    )));
}

#[test]
fn refer_refused_reports_failed_status() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    let req = ReferRequest {
        target: "sip:agent@pbx".into(),
        referred_by: None,
        headers: vec![],
    };
    c.refer(call, &req, t0).expect("refer");
    let s = sent(&mut c);
    let branch = s[0]
        .1
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let resp = ResponseView {
        status: 603,
        branch: Some(branch),
        cseq: 1,
        cseq_method: "REFER".into(),
        ..Default::default()
    };
    c.handle_response(resp, t0);
    assert!(matches!(
        events(&mut c).as_slice(),
        [CallEvent::Transfer {
            outcome: TransferOutcome::Failed(603),
            ..
        }]
    ));
}

#[test]
fn hold_before_transfer_sends_sendonly_reinvite_and_acks_the_200() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    c.hold(call, crate::sip::dialog::Direction::SendOnly, t0)
        .expect("hold");
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["INVITE"]);
    assert!(s[0].1.contains("a=sendonly"), "{}", s[0].1);
    assert!(s[0]
        .1
        .contains(&format!("From: <sip:+19585550123@127.0.0.1>;tag={tag}")));
    // Over UDP the re-INVITE is retransmitted on Timer A until a response comes.
    advance(&mut c, t0 + Duration::from_millis(600));
    assert_eq!(codes(&sent(&mut c)), ["INVITE"]);
    let branch = s[0]
        .1
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let ok = ResponseView {
        status: 200,
        branch: Some(branch),
        cseq: 1,
        cseq_method: "INVITE".into(),
        ..Default::default()
    };
    c.handle_response(ok.clone(), t0 + Duration::from_millis(700));
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["ACK"]);
    assert!(s[0].1.contains("CSeq: 1 ACK"));
    assert!(matches!(
        events(&mut c).as_slice(),
        [CallEvent::HoldResult { status: 200, .. }]
    ));
    // A retransmitted 200 is ACKed again and not reported twice.
    c.handle_response(ok, t0 + Duration::from_millis(900));
    assert_eq!(codes(&sent(&mut c)), ["ACK"]);
    assert!(events(&mut c).is_empty());
}

#[test]
fn info_dtmf_relay_in_dialog_becomes_a_dtmf_event() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    let text = format!(
        "INFO sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK9\r\nFrom: <sip:+15550001@127.0.0.1>;tag=caller\r\nTo: <sip:+19585550123@127.0.0.1>;tag={tag}\r\nCall-ID: call-1\r\nCSeq: 5 INFO\r\nMax-Forwards: 70\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=7\r\nDuration=160\r\n"
    );
    let Ok(SipMessage::Request(r)) = crate::sip::parse(Bytes::from(text)) else {
        panic!("parse")
    };
    c.handle_request(RequestView::from_request(&r).expect("view"), flow(), t0);
    assert_eq!(codes(&sent(&mut c)), ["200"]);
    assert!(
        matches!(events(&mut c).as_slice(), [CallEvent::Dtmf { call: x, digit: '7', duration_ms: Some(160) }] if *x == call)
    );
    c.send_info(
        call,
        "application/dtmf-relay",
        b"Signal=1\r\nDuration=100\r\n",
        t0,
    )
    .expect("info");
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["INFO"]);
    assert!(s[0].1.ends_with("Signal=1\r\nDuration=100\r\n"));
}

#[test]
fn update_with_inactive_offer_is_answered_inactive() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let _ = events(&mut c);
    let offer = SDP
        .replace("a=sendrecv", "a=inactive")
        .replace("o=t 1 1", "o=t 1 2");
    c.handle_request(
        request("UPDATE", "z9hG4bK5", 2, Some(&tag), "", &offer),
        flow(),
        t0,
    );
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["200"]);
    assert!(s[0].1.contains("a=inactive"), "{}", s[0].1);
    assert!(!s[0].1.contains("a=sendrecv"));
    assert!(matches!(events(&mut c).as_slice(),
        [CallEvent::MediaChanged { call: x, media }] if *x == call && media.direction == crate::sip::dialog::Direction::Inactive));
    // An in-dialog OPTIONS (trunk keep-alive) is answered inside the dialog.
    c.handle_request(
        request("OPTIONS", "z9hG4bK6", 3, Some(&tag), "", ""),
        flow(),
        t0,
    );
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["200"]);
    assert!(s[0].1.contains("Allow: INVITE"));
}

#[test]
fn fuzz_corpus_and_truncations_run_through_the_core_without_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sip_ua");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        for cut in (0..data.len()).step_by(97) {
            crate::sip::ua::fuzzing::sip_ua(&data[..cut]);
        }
        for flags in 0..16u8 {
            let mut d = data.clone();
            d[0] = flags;
            crate::sip::ua::fuzzing::sip_ua(&d);
        }
        n += 1;
    }
    assert!(n >= 4, "corpus files: {n}");
}

/// Behind Kamailio: two Vias and a Record-Route on the INVITE. The 200 copies both Vias
/// and the Record-Route (RFC 3261 §12.1.1); our BYE carries the route as `Route` with the
/// caller's Contact as Request-URI (loose routing, §12.2.1.1).
#[test]
fn behind_a_proxy_responses_keep_vias_and_bye_follows_record_route() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let extra = "Via: SIP/2.0/UDP 127.0.0.9:5080;branch=z9hG4bKcaller\r\nRecord-Route: <sip:127.0.0.10;lr>\r\n";
    let (call, _) = answered(&mut c, t0, extra);
    c.handle_request(request("ACK", "z9hG4bK2", 1, Some("x"), "", ""), flow(), t0);
    let _ = sent(&mut c);
    // Re-run the answer to inspect the 200: the one `answered` saw.
    let mut c2 = core(IntegrationSettings::default());
    let (_call2, _, ok) = invite_and_answer(&mut c2, t0, extra, SDP);
    let text = &ok[0].1;
    let vias: Vec<&str> = text.lines().filter(|l| l.starts_with("Via:")).collect();
    assert_eq!(vias.len(), 2, "{text}");
    assert!(vias[0].contains("127.0.0.1:5070") && vias[1].contains("127.0.0.9:5080"));
    assert!(text.contains("Record-Route: <sip:127.0.0.10;lr>"), "{text}");
    c.hangup(call, &[], t0).expect("hangup");
    let s = sent(&mut c);
    let bye = s.iter().find(|(m, _)| m == "BYE").expect("BYE sent");
    assert!(
        bye.1.starts_with("BYE sip:trunk@127.0.0.1:5070"),
        "{}",
        bye.1
    );
    assert!(
        bye.1.contains("Route: <sip:127.0.0.10;lr>\r\n"),
        "{}",
        bye.1
    );
}

#[test]
fn draining_answers_options_and_new_invites_503_but_keeps_calls() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (_call, tag) = answered(&mut c, t0, "");
    c.set_draining(true);
    let mut opt = request("OPTIONS", "z9hG4bKo", 5, None, "", "");
    opt.call_id = "probe-1".into();
    c.handle_request(opt, flow(), t0);
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["503"]);
    assert!(s[0].1.contains("Retry-After: 30"), "{}", s[0].1);
    assert!(
        s[0].1.contains("Warning: 399 voxgate \"draining\""),
        "{}",
        s[0].1
    );
    let mut inv = request("INVITE", "z9hG4bKn", 1, None, "", SDP);
    inv.call_id = "call-2".into();
    c.handle_request(inv, flow(), t0);
    let s = sent(&mut c);
    assert_eq!(codes(&s).last(), Some(&"503"));
    let refusal = &s.last().unwrap().1;
    assert!(
        refusal.contains("Warning: 399 voxgate \"draining\"\r\n"),
        "a proxy tells a draining 503 from a capacity 503: {refusal}"
    );
    assert!(
        !events(&mut c)
            .iter()
            .any(|e| matches!(e, CallEvent::Incoming(_))),
        "no new call while draining"
    );
    // The call that was up still takes its BYE.
    c.handle_request(
        request("BYE", "z9hG4bKb", 2, Some(&tag), "", ""),
        flow(),
        t0,
    );
    assert_eq!(codes(&sent(&mut c)), ["200"]);
    assert_eq!(c.active_calls(), 0);
    c.set_draining(false);
    let mut opt = request("OPTIONS", "z9hG4bKo2", 6, None, "", "");
    opt.call_id = "probe-2".into();
    c.handle_request(opt, flow(), t0);
    assert_eq!(codes(&sent(&mut c)), ["200"]);
}

/// RFC 4028 with us as the refresher (`refresher=uas`): an UPDATE with Session-Expires
/// goes out at half the interval, again half an interval later, and a 481 to a refresh
/// ends the session.
#[test]
fn session_timer_we_refresh_with_update_and_a_481_ends_it() {
    // The trunk's answer to one of our requests, from the request's own headers.
    fn answer(c: &mut SipCore, request: &str, status: &str, now: Instant) {
        let header = |name: &str| {
            request
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or("")
                .to_owned()
        };
        let text = format!(
            "SIP/2.0 {status}\r\n{}\r\n{}\r\n{}\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
            header("Via:"),
            header("From:"),
            header("To:"),
            header("Call-ID:"),
            header("CSeq:")
        );
        let Ok(SipMessage::Response(r)) = crate::sip::parse(Bytes::from(text)) else {
            panic!("response parses")
        };
        c.handle_response(ResponseView::from_response(&r).expect("view"), now);
    }
    let t0 = Instant::now();
    let (mut c, call, _) = timed_session(t0, "uas");
    advance(&mut c, t0 + Duration::from_secs(44));
    assert!(
        sent(&mut c).is_empty(),
        "no refresh before half the interval"
    );
    advance(&mut c, t0 + Duration::from_secs(45));
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["UPDATE"], "refresh at 45 s");
    assert!(
        s[0].1.contains("Session-Expires: 90;refresher=uas"),
        "{}",
        s[0].1
    );
    answer(&mut c, &s[0].1, "200 OK", t0 + Duration::from_secs(45));
    advance(&mut c, t0 + Duration::from_secs(89));
    assert!(
        sent(&mut c).is_empty(),
        "answered: no retransmission, no refresh yet"
    );
    advance(&mut c, t0 + Duration::from_secs(90));
    let s = sent(&mut c);
    assert_eq!(codes(&s), ["UPDATE"], "the next refresh at 90 s");
    // The trunk lost the dialog: 481 to the refresh ends the session.
    answer(
        &mut c,
        &s[0].1,
        "481 Call/Transaction Does Not Exist",
        t0 + Duration::from_secs(90),
    );
    assert!(
        events(&mut c).iter().any(|e| matches!(e, CallEvent::Ended { call: x, reason: EndReason::SessionExpired } if *x == call)),
        "a 481 to the refresh ends the call"
    );
}

/// rtcp-mux (RFC 5761) offered is accepted and said in the answer; not offered, not said.
#[test]
fn rtcp_mux_is_echoed_only_when_offered() {
    for (offer_mux, expect) in [(true, true), (false, false)] {
        let t0 = Instant::now();
        let mut c = core(IntegrationSettings::default());
        let sdp = if offer_mux {
            SDP.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp-mux\r\n")
        } else {
            SDP.to_owned()
        };
        c.handle_request(request("INVITE", "z9hG4bK1", 1, None, "", &sdp), flow(), t0);
        let _ = sent(&mut c);
        let call = match events(&mut c).as_slice() {
            [CallEvent::Incoming(i)] => i.call,
            e => panic!("{e:?}"),
        };
        let media = c.preview_answer(call).expect("preview");
        assert_eq!(media.rtcp_mux, expect);
        c.answer(call, "127.0.0.1:20000".parse().unwrap(), t0)
            .expect("answer");
        let s = sent(&mut c);
        assert_eq!(codes(&s), ["200"]);
        assert_eq!(s[0].1.contains("a=rtcp-mux"), expect, "{}", s[0].1);
    }
}

/// The REFER the core sends, parsed back with the crate's own parser.
fn sent_refer(c: &mut SipCore) -> crate::sip::Request {
    let s = sent(c);
    assert_eq!(codes(&s), ["REFER"]);
    match crate::sip::parse(Bytes::from(s[0].1.clone())) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("REFER does not parse: {other:?}\n{}", s[0].1),
    }
}

#[test]
fn referred_by_is_a_single_name_addr_on_the_wire() {
    let t0 = Instant::now();
    // The call layer passes a name-addr (`<sip:…>`); a bare URI and a name-addr with a
    // display name must come out as one well-formed name-addr too.
    for (given, uri) in [
        ("<sip:+19585550123@voxgate>", "sip:+19585550123@voxgate"),
        ("sip:+19585550123@voxgate", "sip:+19585550123@voxgate"),
        (
            "\"Voxgate\" <sip:+19585550123@voxgate>",
            "sip:+19585550123@voxgate",
        ),
    ] {
        let mut c = core(IntegrationSettings::default());
        let (call, tag) = answered(&mut c, t0, "");
        c.handle_request(
            request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
            flow(),
            t0,
        );
        let req = ReferRequest {
            target: "sip:agent@pbx".into(),
            referred_by: Some(given.into()),
            headers: vec![],
        };
        c.refer(call, &req, t0).expect("refer");
        let r = sent_refer(&mut c);
        let raw: Vec<&str> = r.headers.get_all(HeaderName::ReferredBy).collect();
        assert_eq!(raw.len(), 1, "one Referred-By for {given:?}: {raw:?}");
        assert!(!raw[0].contains("<<"), "doubly wrapped: {:?}", raw[0]);
        let rb = r
            .headers
            .referred_by()
            .unwrap_or_else(|e| panic!("Referred-By {:?} malformed: {e:?}", raw[0]))
            .expect("Referred-By present");
        assert_eq!(rb.uri.raw, uri, "for {given:?}");
        assert!(rb.uri.is_sip());
        assert_eq!(
            r.headers.refer_to().expect("Refer-To").uri.raw,
            "sip:agent@pbx"
        );
    }
}

#[test]
fn referred_by_with_a_line_break_is_refused() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (call, tag) = answered(&mut c, t0, "");
    c.handle_request(
        request("ACK", "z9hG4bK2", 1, Some(&tag), "", ""),
        flow(),
        t0,
    );
    for bad in [
        "<sip:a@b>\r\nBYE sip:x SIP/2.0",
        "<<sip:a@b>>",
        "",
        "not a uri",
    ] {
        let req = ReferRequest {
            target: "sip:agent@pbx".into(),
            referred_by: Some(bad.into()),
            headers: vec![],
        };
        assert!(c.refer(call, &req, t0).is_err(), "{bad:?} accepted");
        assert!(sent(&mut c).is_empty(), "nothing sent for {bad:?}");
    }
}

#[test]
fn refused_invites_are_reported_once_with_their_status() {
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    c.set_numbers(HashSet::new());
    let invite = || request("INVITE", "z9hG4bK9", 1, None, "", SDP);
    c.handle_request(invite(), flow(), t0);
    assert_eq!(codes(&sent(&mut c)), ["100", "403"]);
    // The retransmitted INVITE is absorbed by its transaction: no second report.
    c.handle_request(invite(), flow(), t0 + Duration::from_millis(500));
    let ev = events(&mut c);
    let [CallEvent::Refused(r)] = ev.as_slice() else {
        panic!("one Refused event expected: {ev:?}")
    };
    assert_eq!(r.status, 403);
    assert_eq!(r.call_id, "call-1");
    assert_eq!(r.called_number.as_deref(), Some("+19585550123"));
    assert_eq!(r.caller_number.as_deref(), Some("+15550001"));
    assert_eq!(c.stats().calls_refused, 1);
}

/// A call keeps the transport it was answered with: a re-INVITE that switches between
/// RTP/AVP and RTP/SAVP gets 488 (the call stays as it is), one that keeps it gets 200.
#[test]
fn a_reinvite_that_switches_between_rtp_and_srtp_is_refused() {
    use voxgate_engine::srtp::{sdes::CryptoAttribute, SrtpSuite};
    let crypto = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80)
        .unwrap()
        .to_sdp_value();
    let savp = |version: u32| {
        SDP.replace("RTP/AVP", "RTP/SAVP")
            .replace("o=t 1 1", &format!("o=t 1 {version}"))
            .replace(
                "a=sendrecv\r\n",
                &format!("a=sendrecv\r\na=crypto:{crypto}\r\n"),
            )
    };
    let avp = |version: u32| SDP.replace("o=t 1 1", &format!("o=t 1 {version}"));
    let reinvite = |c: &mut SipCore, tag: &str, cseq: u32, body: &str| {
        let branch = format!("z9hG4bKre{cseq}");
        c.handle_request(
            request("INVITE", &branch, cseq, Some(tag), "", body),
            flow(),
            Instant::now(),
        );
        let s = sent(c);
        let _ = events(c);
        s.into_iter()
            .find(|(code, _)| code != "100")
            .expect("a final response")
    };
    let ack = |c: &mut SipCore, tag: &str, cseq: u32| {
        c.handle_request(
            request("ACK", &format!("z9hG4bKack{cseq}"), cseq, Some(tag), "", ""),
            flow(),
            Instant::now(),
        );
    };

    // A plain call re-offered as SRTP.
    let t0 = Instant::now();
    let mut c = core(IntegrationSettings::default());
    let (_call, tag) = answered(&mut c, t0, "");
    ack(&mut c, &tag, 1);
    let (code, text) = reinvite(&mut c, &tag, 2, &savp(2));
    assert_eq!(code, "488", "{text}");
    assert!(text.contains("re-offered as SRTP"), "{text}");
    let (code, text) = reinvite(&mut c, &tag, 3, &avp(3));
    assert_eq!(code, "200", "{text}");
    assert!(
        text.contains("RTP/AVP") && !text.contains("a=crypto"),
        "{text}"
    );

    // An SRTP call re-offered as plain RTP.
    let mut c = core(IntegrationSettings::default());
    let (_call, _, s) = invite_and_answer(&mut c, t0, "", &savp(1));
    assert!(s[0].1.contains("m=audio 20000 RTP/SAVP 0"), "{}", s[0].1);
    let tag = to_tag_of(&s[0].1);
    ack(&mut c, &tag, 1);
    let (code, text) = reinvite(&mut c, &tag, 2, &avp(2));
    assert_eq!(code, "488", "{text}");
    assert!(text.contains("re-offered as plain RTP"), "{text}");
    let (code, text) = reinvite(&mut c, &tag, 3, &savp(3));
    assert_eq!(code, "200", "{text}");
    assert!(
        text.contains("RTP/SAVP") && text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
        "{text}"
    );
}
