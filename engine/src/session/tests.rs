//! Unit tests of one session against hand-made packets.

use super::*;
use crate::codec::CodecKind;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn rtp(seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 12 + payload.len()];
    let h = RtpHeader {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc: 0xfeed,
    };
    h.write_packet(&mut b, payload).unwrap();
    b
}

#[test]
fn rejects_bad_config() {
    let t = Instant::now();
    let mut c = SessionConfig::new(1, CodecKind::Pcmu, 0);
    c.pcm_rate = 44100;
    assert!(matches!(
        MediaSession::new(c, t),
        Err(SessionError::InvalidConfig(_))
    ));
    let mut c = SessionConfig::new(1, CodecKind::Pcmu, 0);
    c.telephone_event_pt = Some(0);
    assert!(MediaSession::new(c, t).is_err());
    assert!(matches!(
        MediaSession::new(SessionConfig::new(1, CodecKind::Opus, 111), t),
        Err(SessionError::Codec(_))
    ));
}

#[test]
fn paced_stream_with_timestamps_marker_and_silence() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(0xabcd, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(4000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut buf = [0u8; 1500];
    let mut sent = Vec::new();
    for ms in (0..200).step_by(5) {
        let now = t0 + Duration::from_millis(ms);
        if ms == 100 {
            assert_eq!(s.play(&[1000; 240]), 240); // 30 ms of audio
        }
        s.handle_timeout(now);
        while let Some(tx) = s.poll_transmit(now, &mut buf) {
            if tx.kind == PacketKind::Rtp {
                assert_eq!(tx.dest, addr(4000));
                assert!(tx.len + TAIL_ROOM <= buf.len());
                let p = RtpPacket::parse(&buf[..tx.len]).unwrap();
                sent.push((
                    ms,
                    p.sequence_number(),
                    p.timestamp(),
                    p.marker(),
                    p.payload()[0],
                ));
            }
        }
    }
    assert_eq!(sent.len(), 10, "one packet per 20 ms: {sent:?}");
    for w in sent.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20);
        assert_eq!(w[1].1, w[0].1.wrapping_add(1));
        assert_eq!(w[1].2, w[0].2.wrapping_add(160));
    }
    // Silence (0xFF) until 100 ms, then audio with the marker on the first packet only.
    assert!(sent[0].3, "stream start has the marker");
    assert_eq!(sent[1].4, 0xff);
    assert!(!sent[1].3);
    assert!(sent[5].3 && sent[5].4 != 0xff, "{:?}", sent[5]);
    assert!(!sent[6].3 && sent[6].4 != 0xff);
    assert_eq!(sent[7].4, 0xff);
    let mut idle = 0;
    while let Some(e) = s.poll_event() {
        if e == SessionEvent::PlaybackIdle {
            idle += 1;
        }
    }
    assert_eq!(idle, 1);
}

#[test]
fn learns_remote_and_ignores_foreign_sources() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig::new(1, CodecKind::Pcmu, 0), t0).unwrap();
    let mut buf = [0u8; 1500];
    assert!(
        s.poll_transmit(t0, &mut buf).is_none(),
        "nowhere to send yet"
    );
    s.handle_rtp(t0, addr(5000), &mut rtp(1, 0, 0, &[0xff; 160]));
    assert_eq!(
        s.poll_event(),
        Some(SessionEvent::RemoteAddressLearned(addr(5000)))
    );
    let t1 = t0 + Duration::from_millis(20);
    s.handle_rtp(t1, addr(6000), &mut rtp(2, 160, 0, &[0xff; 160]));
    assert_eq!(s.stats().foreign_in, 1);
    // Wrong payload type and garbage are counted, not latched.
    s.handle_rtp(t1, addr(5000), &mut rtp(3, 320, 9, &[0; 160]));
    s.handle_rtp(t1, addr(5000), &mut [1, 2, 3]);
    assert_eq!(s.stats().invalid_in, 2);
    // After the latched source has been silent long enough, a new one takes over, once.
    let t2 = t1 + RELATCH_AFTER;
    s.handle_rtp(t2, addr(6000), &mut rtp(4, 480, 0, &[0xff; 160]));
    let learned: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .filter(|e| matches!(e, SessionEvent::RemoteAddressLearned(_)))
        .collect();
    assert_eq!(
        learned,
        vec![SessionEvent::RemoteAddressLearned(addr(6000))]
    );
    assert_eq!(s.remote_rtp(), Some(addr(6000)));
}

#[test]
fn rtp_timeout_fires_once_and_rearms() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(1, CodecKind::Pcma, 8);
    c.no_rtp_timeout = Duration::from_secs(2);
    let mut s = MediaSession::new(c, t0).unwrap();
    assert!(s.poll_timeout() <= t0 + Duration::from_secs(2));
    let mut timeouts = 0;
    for ms in (0..6000).step_by(20) {
        let now = t0 + Duration::from_millis(ms);
        if ms == 3000 {
            s.handle_rtp(now, addr(5000), &mut rtp(1, 0, 8, &[0xd5; 160]));
        }
        s.handle_timeout(now);
        while let Some(e) = s.poll_event() {
            if e == SessionEvent::RtpTimeout {
                timeouts += 1;
            }
        }
    }
    assert_eq!(timeouts, 2, "at 2 s, and 2 s after the packet at 3 s");
}

#[test]
fn dtmf_requires_telephone_event() {
    let mut s =
        MediaSession::new(SessionConfig::new(1, CodecKind::Pcmu, 0), Instant::now()).unwrap();
    assert_eq!(
        s.send_dtmf('5', Duration::from_millis(100)),
        Err(SessionError::NoTelephoneEvent)
    );
}
