//! The gateway against SIPp (Debian `sip-tester`), on loopback ephemeral ports. Each
//! test starts the gateway in-process and SIPp as a child process bounded by a timeout;
//! SIPp's exit status says whether every call went as its scenario (tests/sipp/) says.

mod common;

use std::time::Duration;

use common::{sipp, test_cert, tls_bridge, TestGateway, NUMBER};
use voxgate::gateway::GatewayConfig;
use voxgate::settings::{BusyResponse, Plan, SipCredentials};
use voxgate::sip::dialog::{Direction, ReferRequest, TransferOutcome};
use voxgate::sip::ua::CallEvent;

const T: Duration = Duration::from_secs(20);

fn assert_ok(run: &common::SippRun, what: &str) {
    assert!(
        run.success,
        "{what}: sipp exit {:?}\n{}",
        run.code, run.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_call_with_rtp_both_ways() {
    let mut cfg = GatewayConfig::ephemeral();
    cfg.settings.invite_headers_to_extract = vec!["X-Account-Id".into()];
    let mut t = TestGateway::start("basic", cfg).await;
    let target = t.gw.local.udp;
    let dir = t.dir.clone();
    let run = tokio::spawn(async move {
        sipp(
            &dir,
            "uac_call.xml",
            target,
            "u1",
            NUMBER,
            &["-m", "1", "-d", "3000"],
            T,
        )
        .await
    });
    let incoming = t
        .next_event(T, |e| matches!(e, CallEvent::Incoming(_)))
        .await
        .expect("incoming call event");
    let CallEvent::Incoming(info) = incoming else {
        unreachable!()
    };
    assert_eq!(info.called_number, NUMBER);
    assert_eq!(info.caller_number.as_deref(), Some("+15550001"));
    assert_eq!(
        info.custom_headers,
        vec![("X-Account-Id".to_owned(), "acct-42".to_owned())]
    );
    // Media flows both ways while the call is up: our prompt out, SIPp's pcap in.
    let s = t.wait_for(T, |s| s.rtp.0 >= 20 && s.rtp.1 >= 20).await;
    assert!(
        s.rtp.0 >= 20 && s.rtp.1 >= 20,
        "RTP (sent, received) = {:?}",
        s.rtp
    );
    let run = run.await.expect("join");
    assert_ok(&run, "basic call");
    let s = t.wait_for(T, |s| s.active_calls == 0).await;
    assert_eq!((s.active_calls, s.calls_ended), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_gets_487() {
    let mut cfg = GatewayConfig::ephemeral();
    cfg.auto_answer = false;
    let t = TestGateway::start("cancel", cfg).await;
    let run = sipp(
        &t.dir,
        "uac_cancel.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "CANCEL");
    let s = t.wait_for(T, |s| s.calls_ended == 1).await;
    assert_eq!(s.active_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_is_forbidden() {
    let t = TestGateway::start("403", GatewayConfig::ephemeral()).await;
    let run = sipp(
        &t.dir,
        "uac_expect_403.xml",
        t.gw.local.udp,
        "u1",
        "+19585550199",
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "403 for an unknown number");
    // The configured number in national-looking form (no +) is still ours: not 403.
    let run = sipp(
        &t.dir,
        "uac_expect_403.xml",
        t.gw.local.udp,
        "u1",
        "19585550123",
        &["-m", "1"],
        T,
    )
    .await;
    assert!(
        !run.success,
        "19585550123 is the configured number in E.164 and must be admitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringing_can_be_disabled() {
    let mut cfg = GatewayConfig::ephemeral();
    cfg.settings.disable_ringing = true;
    let t = TestGateway::start("noring", cfg).await;
    let run = sipp(
        &t.dir,
        "uac_no_ringing.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "no 180 when disabled");
    // Twin: with ringing on, the same scenario sees a 180 and fails.
    let t2 = TestGateway::start("ring", GatewayConfig::ephemeral()).await;
    let run = sipp(
        &t2.dir,
        "uac_no_ringing.xml",
        t2.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert!(!run.success, "a 180 must be sent by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_secure_trunking_refuses_plain_rtp_with_488() {
    let mut cfg = GatewayConfig::ephemeral();
    cfg.settings.force_secure_trunking = true;
    let t = TestGateway::start("488", cfg).await;
    let run = sipp(
        &t.dir,
        "uac_expect_488.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "488 for RTP/AVP under force secure trunking");
}

async fn cap_case(busy: BusyResponse, scenario: &str) {
    let mut cfg = GatewayConfig::ephemeral();
    cfg.settings.plan = Plan::Custom(2);
    cfg.settings.busy_response = busy;
    let t = TestGateway::start(scenario, cfg).await;
    let target = t.gw.local.udp;
    let dir = t.dir.clone();
    let held = tokio::spawn(async move {
        sipp(
            &dir,
            "uac_load.xml",
            target,
            "u1",
            NUMBER,
            &["-m", "2", "-l", "2", "-r", "10", "-d", "4000"],
            T,
        )
        .await
    });
    let s = t.wait_for(T, |s| s.active_calls == 2).await;
    assert_eq!(s.active_calls, 2, "two calls up");
    let dir2 = common::scratch(&format!("{scenario}-over"));
    let run = sipp(&dir2, scenario, target, "u1", NUMBER, &["-m", "1"], T).await;
    assert_ok(&run, scenario);
    assert_ok(&held.await.expect("join"), "the two calls under the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_call_cap_answers_486() {
    cap_case(BusyResponse::BusyHere, "uac_expect_486.xml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_call_cap_answers_503_with_retry_after() {
    cap_case(
        BusyResponse::ServiceUnavailable {
            retry_after_secs: 30,
        },
        "uac_expect_503.xml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_reinvite_from_trunk_is_answered_with_matching_direction() {
    let mut t = TestGateway::start("hold", GatewayConfig::ephemeral()).await;
    let run = sipp(
        &t.dir,
        "uac_hold.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "hold re-INVITE");
    let changed = t
        .next_event(T, |e| matches!(e, CallEvent::MediaChanged { media, .. } if media.direction == Direction::RecvOnly))
        .await;
    assert!(changed.is_some(), "media changed to recvonly on our side");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_is_answered_with_allow() {
    let t = TestGateway::start("options", GatewayConfig::ephemeral()).await;
    let run = sipp(
        &t.dir,
        "uac_options.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "3"],
        T,
    )
    .await;
    assert_ok(&run, "OPTIONS over UDP");
    let run = sipp(
        &t.dir,
        "uac_options.xml",
        t.gw.local.tcp,
        "t1",
        NUMBER,
        &["-m", "3"],
        T,
    )
    .await;
    assert_ok(&run, "OPTIONS over TCP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_is_accepted_and_notify_reports_success() {
    let mut t = TestGateway::start("refer", GatewayConfig::ephemeral()).await;
    let target = t.gw.local.udp;
    let dir = t.dir.clone();
    let run = tokio::spawn(async move {
        sipp(&dir, "uac_refer.xml", target, "u1", NUMBER, &["-m", "1"], T).await
    });
    let Some(CallEvent::Established { call }) = t
        .next_event(T, |e| matches!(e, CallEvent::Established { .. }))
        .await
    else {
        panic!("call established")
    };
    let req = ReferRequest {
        target: "sip:agent@pbx.example.com".into(),
        referred_by: Some(format!("sip:{NUMBER}@127.0.0.1")),
        headers: vec![("X-Transfer-Context".into(), "queue=billing".into())],
    };
    let outcome = tokio::time::timeout(T, t.handle.refer(call, req))
        .await
        .expect("in time")
        .expect("gateway")
        .expect("refer sent");
    assert_eq!(outcome, TransferOutcome::Succeeded);
    t.handle
        .hangup(call, vec![])
        .await
        .expect("gateway")
        .expect("hangup");
    assert_ok(&run.await.expect("join"), "REFER scenario");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_over_tls_accepts_refuses_and_udp_is_forbidden() {
    let dir = common::scratch("tls-cert");
    let (cert, key, der) = test_cert(&dir);
    let mut cfg = GatewayConfig::ephemeral();
    cfg.tls_cert = Some((cert, key));
    // SIPp 3.6 reads only the first WWW-Authenticate and knows only MD5.
    cfg.digest_md5_first = true;
    cfg.settings.sip_auth = Some(SipCredentials {
        username: "trunk".into(),
        password: "s3cret".into(),
    });
    let t = TestGateway::start("digest", cfg).await;
    let bridge = tls_bridge(t.gw.local.tls, der).await;
    let auth = ["-au", "trunk", "-ap", "s3cret", "-m", "1"];
    let run = sipp(&t.dir, "uac_auth.xml", bridge, "t1", NUMBER, &auth, T).await;
    assert_ok(&run, "digest accepted over TLS");
    let run = sipp(
        &t.dir,
        "uac_auth_wrong.xml",
        bridge,
        "t1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "wrong password refused");
    let run = sipp(
        &t.dir,
        "uac_expect_403.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "1"],
        T,
    )
    .await;
    assert_ok(&run, "UDP refused with 403");
    let s = t.snapshot().await;
    assert!(
        s.core.auth_challenges >= 3 && s.core.auth_failures >= 2,
        "{:?}",
        s.core
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_at_200_per_second_without_failure() {
    let mut cfg = GatewayConfig::ephemeral();
    cfg.settings.plan = Plan::Custom(5000);
    let t = TestGateway::start("load", cfg).await;
    let run = sipp(
        &t.dir,
        "uac_load.xml",
        t.gw.local.udp,
        "u1",
        NUMBER,
        &["-m", "10000", "-r", "250", "-l", "3000", "-d", "0"],
        Duration::from_secs(120),
    )
    .await;
    assert_ok(&run, "10,000 calls");
    let rate = 10_000.0 / run.elapsed.as_secs_f64();
    assert!(rate >= 200.0, "{rate:.0} calls/s");
    let s = t.wait_for(T, |s| s.calls_ended >= 10_000).await;
    assert_eq!(s.calls_ended, 10_000, "{s:?}");
}

/// A replayed request (same nonce and nonce-count) over a real TLS connection is
/// challenged again, not accepted. SIPp cannot resend its own Authorization, so this
/// peer is a raw TLS client computing the MD5 digest itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_digest_nonce_over_tls_is_challenged() {
    use md5::{Digest, Md5};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = common::scratch("replay-cert");
    let (cert, key, der) = test_cert(&dir);
    let mut cfg = GatewayConfig::ephemeral();
    cfg.tls_cert = Some((cert, key));
    cfg.settings.sip_auth = Some(SipCredentials {
        username: "trunk".into(),
        password: "s3cret".into(),
    });
    let t = TestGateway::start("replay", cfg).await;
    let bridge = tls_bridge(t.gw.local.tls, der).await;
    let mut conn = tokio::net::TcpStream::connect(bridge)
        .await
        .expect("connect");
    let port = conn.local_addr().expect("addr").port();
    let uri = format!("sip:{NUMBER}@127.0.0.1");
    let options = |cseq: u32, auth: &str| {
        format!("OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bKr{cseq}\r\nFrom: <sip:trunk@127.0.0.1>;tag=r\r\nTo: <{uri}>\r\nCall-ID: replay-1\r\nCSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n")
    };
    async fn response(conn: &mut tokio::net::TcpStream) -> String {
        let mut buf = vec![0u8; 8192];
        let mut got = String::new();
        while !got.contains("\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .expect("in time")
                .expect("read");
            assert!(n > 0, "connection closed");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    }
    conn.write_all(options(1, "").as_bytes())
        .await
        .expect("write");
    let challenge = response(&mut conn).await;
    assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("nonce")
        .to_owned();
    let h = |s: String| hex::encode(Md5::digest(s.as_bytes()));
    let ha1 = h("trunk:voxgate:s3cret".to_owned());
    let ha2 = h(format!("OPTIONS:{uri}"));
    let resp = h(format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    let auth = format!("Authorization: Digest username=\"trunk\", realm=\"voxgate\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, cnonce=\"c0ffee\", qop=auth, nc=00000001\r\n");
    conn.write_all(options(2, &auth).as_bytes())
        .await
        .expect("write");
    let ok = response(&mut conn).await;
    assert!(ok.starts_with("SIP/2.0 200 "), "first use accepted: {ok}");
    // The same credentials again (a captured request replayed with a new CSeq/branch).
    conn.write_all(options(3, &auth).as_bytes())
        .await
        .expect("write");
    let again = response(&mut conn).await;
    assert!(
        again.starts_with("SIP/2.0 401 "),
        "replay challenged: {again}"
    );
    assert!(
        !again.contains("stale=true"),
        "a replay is not a stale nonce"
    );
}

/// The seed's transfer: the caller is held (re-INVITE `sendonly`) before the REFER,
/// unless "don't place callers on hold" is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_holds_the_caller_before_refer() {
    let mut t = TestGateway::start("transfer", GatewayConfig::ephemeral()).await;
    let target = t.gw.local.udp;
    let dir = t.dir.clone();
    let run = tokio::spawn(async move {
        sipp(
            &dir,
            "uac_transfer.xml",
            target,
            "u1",
            NUMBER,
            &["-m", "1"],
            T,
        )
        .await
    });
    let Some(CallEvent::Established { call }) = t
        .next_event(T, |e| matches!(e, CallEvent::Established { .. }))
        .await
    else {
        panic!("call established")
    };
    let req = ReferRequest {
        target: "sip:agent@pbx.example.com".into(),
        referred_by: None,
        headers: vec![("X-Transfer-Context".into(), "queue=billing".into())],
    };
    let outcome = tokio::time::timeout(T, t.handle.transfer(call, req))
        .await
        .expect("in time")
        .expect("gateway")
        .expect("transfer");
    assert_eq!(outcome, TransferOutcome::Succeeded);
    t.handle
        .hangup(call, vec![])
        .await
        .expect("gateway")
        .expect("hangup");
    assert_ok(&run.await.expect("join"), "hold then REFER");
    // With the option off, the same scenario fails: no re-INVITE comes before the REFER.
    let mut cfg = GatewayConfig::ephemeral();
    cfg.settings.no_hold_on_transfer = true;
    let mut t2 = TestGateway::start("transfer-nohold", cfg).await;
    let target = t2.gw.local.udp;
    let dir = t2.dir.clone();
    let run = tokio::spawn(async move {
        sipp(
            &dir,
            "uac_transfer.xml",
            target,
            "u1",
            NUMBER,
            &["-m", "1", "-recv_timeout", "3000"],
            Duration::from_secs(8),
        )
        .await
    });
    let Some(CallEvent::Established { call }) = t2
        .next_event(T, |e| matches!(e, CallEvent::Established { .. }))
        .await
    else {
        panic!("call established")
    };
    let req = ReferRequest {
        target: "sip:agent@pbx.example.com".into(),
        referred_by: None,
        headers: vec![],
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), t2.handle.transfer(call, req)).await;
    assert!(
        !run.await.expect("join").success,
        "no hold re-INVITE when no_hold_on_transfer is set"
    );
}
