//! MediaSession with SDES-keyed SRTP: audio flows between two keyed sessions, packets on
//! the wire are not plain RTP, and a session with the wrong key drops and counts them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use voxgate_engine::codec::CodecKind;
use voxgate_engine::session::{MediaSession, SessionConfig, SessionEvent, SrtpKeys};
use voxgate_engine::srtp::sdes::CryptoAttribute;
use voxgate_engine::srtp::SrtpSuite;

fn cfg(ssrc: u32, remote: SocketAddr, keys: Option<SrtpKeys>) -> SessionConfig {
    let mut c = SessionConfig::new(ssrc, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(remote);
    c.srtp = keys;
    c
}

fn tone(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
        .collect()
}

/// Runs `a` sending a tone to `b` for 1 s of virtual time; returns (audio frames with
/// energy seen by b, bytes of the first packet a sent).
fn run(a: &mut MediaSession, b: &mut MediaSession, a_addr: SocketAddr) -> (usize, Vec<u8>) {
    let t0 = Instant::now();
    a.play(&tone(8000));
    let mut buf = vec![0u8; 1500];
    let mut first = Vec::new();
    let mut heard = 0;
    for step in 0..60 {
        let now = t0 + Duration::from_millis(20 * step);
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            if first.is_empty() {
                first = buf[..t.len].to_vec();
            }
            let mut pkt = buf[..t.len].to_vec();
            b.handle_rtp(now, a_addr, &mut pkt);
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            let _ = t;
        }
        while let Some(ev) = b.poll_event() {
            if let SessionEvent::Audio(f) = ev {
                if f.pcm().iter().any(|s| s.unsigned_abs() > 1000) {
                    heard += 1;
                }
            }
        }
    }
    (heard, first)
}

/// The suites the sessions are tested with.
const SUITES: [SrtpSuite; 3] = [
    SrtpSuite::AesCm128HmacSha1_80,
    SrtpSuite::AesCm128HmacSha1_32,
    SrtpSuite::AeadAes128Gcm,
];

/// Fresh keys of `suite` for A and B, and A's and B's RTP addresses.
fn keyed(suite: SrtpSuite) -> (String, String, SocketAddr, SocketAddr) {
    let key = || CryptoAttribute::generate(1, suite).unwrap().to_sdp_value();
    (
        key(),
        key(),
        "127.0.0.1:4000".parse().unwrap(),
        "127.0.0.1:5000".parse().unwrap(),
    )
}

#[test]
fn keyed_sessions_carry_audio_and_wrong_keys_are_counted() {
    for suite in SUITES {
        let (ka, kb, a_addr, b_addr) = keyed(suite);
        let now = Instant::now();
        let mut a = MediaSession::new(
            cfg(
                1,
                b_addr,
                Some(SrtpKeys {
                    local: ka.clone(),
                    remote: kb.clone(),
                }),
            ),
            now,
        )
        .unwrap();
        let mut b = MediaSession::new(
            cfg(
                2,
                a_addr,
                Some(SrtpKeys {
                    local: kb.clone(),
                    remote: ka.clone(),
                }),
            ),
            now,
        )
        .unwrap();
        let (heard, first) = run(&mut a, &mut b, a_addr);
        assert!(heard > 20, "{suite:?}: b heard {heard} frames");
        assert_eq!(b.stats().srtp_auth_failed, 0);
        // On the wire the payload is encrypted: not the µ-law of the tone.
        let plain_tone: Vec<u8> = tone(160)
            .iter()
            .map(|&s| voxgate_engine::codec::g711::ulaw_encode(s))
            .collect();
        assert_ne!(&first[12..12 + 160], &plain_tone[..], "{suite:?}");

        // A receiver keyed with the wrong remote key authenticates nothing.
        let wrong = CryptoAttribute::generate(1, suite).unwrap().to_sdp_value();
        let mut a = MediaSession::new(
            cfg(
                1,
                b_addr,
                Some(SrtpKeys {
                    local: ka.clone(),
                    remote: kb.clone(),
                }),
            ),
            now,
        )
        .unwrap();
        let mut c = MediaSession::new(
            cfg(
                3,
                a_addr,
                Some(SrtpKeys {
                    local: kb.clone(),
                    remote: wrong,
                }),
            ),
            now,
        )
        .unwrap();
        let (heard, _) = run(&mut a, &mut c, a_addr);
        assert_eq!(heard, 0);
        assert!(
            c.stats().srtp_auth_failed >= 40,
            "{suite:?}: {:?}",
            c.stats()
        );
        assert_eq!(c.stats().packets_in, 0);
    }
}

#[test]
fn mismatched_or_garbage_keys_are_a_config_error() {
    let ka = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80)
        .unwrap()
        .to_sdp_value();
    let kb = CryptoAttribute::generate(1, SrtpSuite::AeadAes128Gcm)
        .unwrap()
        .to_sdp_value();
    let to: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let now = Instant::now();
    assert!(MediaSession::new(
        cfg(
            1,
            to,
            Some(SrtpKeys {
                local: ka.clone(),
                remote: kb
            })
        ),
        now
    )
    .is_err());
    assert!(MediaSession::new(
        cfg(
            1,
            to,
            Some(SrtpKeys {
                local: ka,
                remote: "1 garbage".into()
            })
        ),
        now
    )
    .is_err());
    let keys = SrtpKeys {
        local: "secret".into(),
        remote: "secret".into(),
    };
    assert!(!format!("{keys:?}").contains("secret"));
}

/// A re-offer with a new `a=crypto` (an SBC re-anchoring the call) re-keys what the
/// session receives: before the retarget the new key fails authentication, after it the
/// audio flows again, from the new address.
#[test]
fn retarget_with_a_new_key_rekeys_the_receiver() {
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let ours = CryptoAttribute::generate(1, suite).unwrap().to_sdp_value();
    let peer_old = CryptoAttribute::generate(1, suite).unwrap().to_sdp_value();
    let peer_new = CryptoAttribute::generate(1, suite).unwrap();
    let old_addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let new_addr: SocketAddr = "127.0.0.1:4100".parse().unwrap();
    let gw_addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let now = Instant::now();
    let keys = |local: &str, remote: &str| {
        Some(SrtpKeys {
            local: local.to_owned(),
            remote: remote.to_owned(),
        })
    };
    let mut gw = MediaSession::new(cfg(2, old_addr, keys(&ours, &peer_old)), now).unwrap();
    // The trunk after the move: new key, new address.
    let mut moved =
        MediaSession::new(cfg(1, gw_addr, keys(&peer_new.to_sdp_value(), &ours)), now).unwrap();
    let (heard, _) = run(&mut moved, &mut gw, new_addr);
    assert_eq!(heard, 0, "the old key cannot authenticate the new stream");
    assert!(gw.stats().srtp_auth_failed > 0);
    gw.retarget(new_addr, None, Some(peer_new.context().unwrap()));
    assert_eq!(gw.remote_rtp(), Some(new_addr));
    let mut moved =
        MediaSession::new(cfg(3, gw_addr, keys(&peer_new.to_sdp_value(), &ours)), now).unwrap();
    let failed_before = gw.stats().srtp_auth_failed;
    let (heard, _) = run(&mut moved, &mut gw, new_addr);
    assert!(
        heard > 20,
        "after the re-key the gateway hears {heard} frames"
    );
    assert_eq!(gw.stats().srtp_auth_failed, failed_before);
}

/// SRTCP between two keyed sessions, RTCP on its own port: A's reports reach B (B counts
/// them as RTCP in, and learns A's sender report), a tampered report is dropped and
/// counted as an authentication failure, a replayed one as a replay; nothing of either
/// is taken as RTCP.
#[test]
fn srtcp_reports_flow_and_bad_ones_are_dropped_and_counted() {
    use voxgate_engine::session::PacketKind;
    for suite in SUITES {
        let (ka, kb, a_addr, b_addr) = keyed(suite);
        let a_rtcp = SocketAddr::new(a_addr.ip(), a_addr.port() + 1);
        let t0 = Instant::now();
        let keys = |local: &String, remote: &String| SrtpKeys {
            local: local.clone(),
            remote: remote.clone(),
        };
        let mut a = MediaSession::new(cfg(1, b_addr, Some(keys(&ka, &kb))), t0).unwrap();
        let mut b = MediaSession::new(cfg(2, a_addr, Some(keys(&kb, &ka))), t0).unwrap();
        a.play(&tone(8000 * 20));
        let mut buf = vec![0u8; 1500];
        let mut reports: Vec<Vec<u8>> = Vec::new();
        // 16 s of virtual time: RTCP goes out every ~5 s (RFC 3550's minimum interval).
        for step in 0..800u64 {
            let now = t0 + Duration::from_millis(20 * step);
            a.handle_timeout(now);
            b.handle_timeout(now);
            while let Some(t) = a.poll_transmit(now, &mut buf) {
                let mut pkt = buf[..t.len].to_vec();
                match t.kind {
                    PacketKind::Rtp => b.handle_rtp(now, a_addr, &mut pkt),
                    PacketKind::Rtcp => {
                        assert_eq!(t.dest.port(), b_addr.port() + 1, "{suite:?}");
                        // Each report reaches b when the next one is made (so the
                        // last one can be held back).
                        if let Some(mut prev) = reports.last().cloned() {
                            b.handle_rtcp(now, a_rtcp, &mut prev);
                        }
                        reports.push(pkt);
                    }
                }
            }
            while b.poll_transmit(now, &mut buf).is_some() {}
            while b.poll_event().is_some() {}
        }
        // The last report is held back from b for the checks below.
        let held = reports.pop().expect("a report");
        let s = b.stats();
        assert!(reports.len() >= 2, "{suite:?}: {} reports", reports.len());
        assert_eq!(s.rtcp_in, reports.len() as u64, "{suite:?}: {s:?}");
        assert_eq!((s.srtp_auth_failed, s.srtp_replayed), (0, 0), "{suite:?}");
        // On the wire a report is SRTCP: longer than its RTCP (index and tag at least)
        // and with the compound's first sender SSRC readable.
        assert!(held.len() >= 8 + 20 + 4 + 4, "{suite:?}");
        assert_eq!(&held[4..8], &1u32.to_be_bytes(), "{suite:?}");

        let now = t0 + Duration::from_secs(17);
        // The held report with one bit flipped: not authentic, not RTCP.
        let mut tampered = held.clone();
        tampered[10] ^= 0x01;
        b.handle_rtcp(now, a_rtcp, &mut tampered);
        let after = b.stats();
        assert_eq!(after.srtp_auth_failed, 1, "{suite:?}: {after:?}");
        assert_eq!(after.rtcp_in, s.rtcp_in, "{suite:?}: {after:?}");
        // The report itself still gets in (the forgery did not take its index) ...
        let mut original = held.clone();
        b.handle_rtcp(now, a_rtcp, &mut original);
        assert_eq!(b.stats().rtcp_in, s.rtcp_in + 1, "{suite:?}");
        // ... once: played again it is a replay.
        let mut again = held.clone();
        b.handle_rtcp(now, a_rtcp, &mut again);
        let last = b.stats();
        assert_eq!(last.rtcp_in, s.rtcp_in + 1, "{suite:?}: {last:?}");
        assert_eq!(last.srtp_replayed, 1, "{suite:?}: {last:?}");
        assert_eq!(last.srtp_auth_failed, 1, "{suite:?}: {last:?}");
    }
}

/// A trunk re-keys mid-call (a re-INVITE with a new `a=crypto`) after its sequence
/// numbers have wrapped once, and keeps its SRTP index under the new key (RFC 3711;
/// libsrtp's `srtp_update`): the retargeted session reads it at ROC 1 and authenticates
/// every packet, in every suite. A session that took the new key at ROC 0 would fail
/// them all.
#[test]
fn a_rekeyed_trunk_that_keeps_its_rollover_counter_is_heard() {
    use voxgate_engine::rtp::RtpHeader;
    use voxgate_engine::srtp::SrtpContext;
    for suite in SUITES {
        let ours = CryptoAttribute::generate(1, suite).unwrap().to_sdp_value();
        let old = CryptoAttribute::generate(1, suite).unwrap();
        let new = CryptoAttribute::generate(1, suite).unwrap();
        let trunk: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let t0 = Instant::now();
        let keys = SrtpKeys {
            local: ours,
            remote: old.to_sdp_value(),
        };
        let mut gw = MediaSession::new(cfg(2, trunk, Some(keys)), t0).unwrap();
        let mut step = 0u32;
        let mut send = |tx: &mut SrtpContext, gw: &mut MediaSession, seq: u16| {
            step += 1;
            let mut buf = [0u8; 300];
            let header = RtpHeader {
                payload_type: 0,
                sequence_number: seq,
                timestamp: step * 160,
                ssrc: 0x1234,
                marker: false,
            };
            let n = header.write_packet(&mut buf, &[0xff; 160]).unwrap();
            let n = tx.protect_rtp(&mut buf, n).unwrap();
            let now = t0 + Duration::from_millis(20 * u64::from(step));
            gw.handle_timeout(now);
            gw.handle_rtp(now, trunk, &mut buf[..n]);
        };
        let mut tx = old.context().unwrap();
        for seq in [65534, 65535, 0, 1] {
            send(&mut tx, &mut gw, seq);
        }
        assert_eq!(gw.stats().packets_in, 4, "{suite}");
        gw.retarget(trunk, None, Some(new.context().unwrap()));
        let mut tx = new.context().unwrap();
        tx.set_roc(1, 1);
        for seq in 2..12 {
            send(&mut tx, &mut gw, seq);
        }
        assert_eq!(gw.stats().srtp_auth_failed, 0, "{suite}");
        assert_eq!(gw.stats().packets_in, 14, "{suite}");
    }
}
