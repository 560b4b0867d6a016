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
    assert!(MediaSession::new(SessionConfig::new(1, CodecKind::Opus, 111), t).is_ok());
    let mut c = SessionConfig::new(1, CodecKind::Opus, 111);
    c.ptime_ms = 30; // libopus has no 30 ms frame: every packet fails, counted, no panic
    assert!(MediaSession::new(c, t).is_ok());
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

#[test]
fn idle_session_without_remote_does_not_spin() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig::new(1, CodecKind::Pcmu, 0), t0).unwrap();
    let mut buf = [0u8; 1500];
    let mut now = t0;
    let mut wakeups = 0;
    while now < t0 + Duration::from_secs(10) {
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
        let next = s.poll_timeout();
        assert!(next > now, "poll_timeout did not advance");
        now = next;
        wakeups += 1;
    }
    assert!(wakeups <= 520, "{wakeups} wakeups in 10 s");
}

#[test]
fn echo_stream_marks_only_talkspurt_starts() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(2, CodecKind::Pcmu, 0);
    c.echo = true;
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut buf = [0u8; 1500];
    let loud: Vec<u8> = (0..160)
        .map(|i| if i % 2 == 0 { 0x10 } else { 0x90 })
        .collect();
    let (mut markers, mut audio_packets) = (0, 0);
    for n in 0..300u16 {
        let now = t0 + Duration::from_millis(u64::from(n) * 20 + 3);
        s.handle_rtp(now, addr(7000), &mut rtp(n, u32::from(n) * 160, 0, &loud));
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            if t.kind == PacketKind::Rtp {
                let p = RtpPacket::parse(&buf[..t.len]).unwrap();
                markers += usize::from(p.marker());
                audio_packets += usize::from(p.payload()[0] != 0xff);
            }
        }
    }
    assert!(audio_packets > 280, "{audio_packets} echoed packets");
    assert!(markers <= 2, "{markers} marker bits");
    let idle = std::iter::from_fn(|| s.poll_event())
        .filter(|e| *e == SessionEvent::PlaybackIdle)
        .count();
    assert_eq!(idle, 0);
}

#[test]
fn goodbye_is_a_valid_compound_with_bye() {
    use crate::rtcp::{RtcpCompound, RtcpPacket};
    let t0 = Instant::now();
    let mut c = SessionConfig::new(0x42, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(6000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut buf = [0u8; 1500];
    while s.poll_transmit(t0, &mut buf).is_some() {}
    let t = s.goodbye(t0 + Duration::from_millis(40), &mut buf).unwrap();
    assert_eq!((t.kind, t.dest), (PacketKind::Rtcp, addr(6001)));
    let c = RtcpCompound::parse(&buf[..t.len]).unwrap();
    let types: Vec<u8> = c.packets().map(|p| p.packet_type()).collect();
    assert_eq!(types, vec![200, 202, 203]);
    let Some(RtcpPacket::Goodbye(b)) = c.packets().last() else {
        panic!("no BYE")
    };
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), vec![0x42]);
}

#[test]
fn unended_dtmf_is_flushed_once() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(1, CodecKind::Pcmu, 0);
    c.telephone_event_pt = Some(101);
    let mut s = MediaSession::new(c, t0).unwrap();
    // Two progress packets of digit 4; the end packets are lost; audio resumes.
    for (i, d) in [160u16, 320].iter().enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 20);
        let b = d.to_be_bytes();
        s.handle_rtp(
            now,
            addr(5000),
            &mut rtp(i as u16, 800, 101, &[4, 0x0a, b[0], b[1]]),
        );
        s.handle_timeout(now);
    }
    let mut digits = Vec::new();
    for ms in (40..2000).step_by(20) {
        let now = t0 + Duration::from_millis(ms);
        s.handle_rtp(
            now,
            addr(5000),
            &mut rtp((ms / 20) as u16, 800 + ms as u32 * 8, 0, &[0xff; 160]),
        );
        s.handle_timeout(now);
        while let Some(e) = s.poll_event() {
            if let SessionEvent::Dtmf { digit, duration } = e {
                digits.push((ms, digit, duration));
            }
        }
    }
    assert_eq!(digits.len(), 1, "{digits:?}");
    assert_eq!(digits[0].1, '4');
    assert_eq!(digits[0].2, Duration::from_millis(40));
    assert!(
        (500..=560).contains(&digits[0].0),
        "flushed at {} ms",
        digits[0].0
    );
}

#[test]
fn sequence_restart_keeps_audio_flowing() {
    let t0 = Instant::now();
    let mut s = MediaSession::new(SessionConfig::new(1, CodecKind::Pcmu, 0), t0).unwrap();
    let loud: Vec<u8> = (0..160)
        .map(|i| if i % 2 == 0 { 0x10 } else { 0x90 })
        .collect();
    let mut loud_after = 0;
    for n in 0..200u32 {
        let now = t0 + Duration::from_millis(u64::from(n) * 20);
        // The sender restarts its sequence numbers at packet 100 (same SSRC).
        let seq = if n < 100 {
            60_000 + n as u16
        } else {
            1000 + n as u16
        };
        s.handle_rtp(now, addr(5000), &mut rtp(seq, n * 160, 0, &loud));
        s.handle_timeout(now);
        while let Some(e) = s.poll_event() {
            if let SessionEvent::Audio(f) = e {
                if n > 110 && f.pcm().iter().any(|&x| x.abs() > 5000) {
                    loud_after += 1;
                }
            }
        }
    }
    assert!(
        loud_after > 80,
        "only {loud_after} frames after the restart"
    );
    assert_eq!(s.stats().late, 0);
}

#[test]
fn rtcp_from_another_host_is_ignored() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(1, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(6000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut rr = [0x80u8, 0xc9, 0, 1, 0, 0, 0, 9];
    let stranger = SocketAddr::from(([10, 9, 8, 7], 6001));
    s.handle_rtcp(t0, stranger, &mut rr);
    assert_eq!((s.stats().rtcp_in, s.stats().foreign_in), (0, 1));
    s.handle_rtcp(t0, addr(6001), &mut rr);
    assert_eq!(s.stats().rtcp_in, 1);
}

/// Echo delay with the worker's timer coalescing: the send tick just before the playout
/// tick is served sometimes alone (on time), sometimes together with the playout (held
/// for the coalescing window). The delay must not depend on which (no one-frame steps).
#[test]
fn echo_delay_does_not_step_with_timer_coalescing() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(3, CodecKind::Pcmu, 0);
    c.echo = true;
    c.remote_rtp = Some(addr(7000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut buf = [0u8; 1500];
    let at = |step: u64| t0 + Duration::from_micros(step * 100);
    // Packets arrive 0.2 ms after each send tick of the session (opened at t0).
    let mut arrived: Vec<Instant> = Vec::new();
    let mut delays_us: Vec<(u32, u64)> = Vec::new();
    // Datagrams the worker has not picked up yet (the kernel queues them).
    let mut inbox: Vec<u16> = Vec::new();
    for step in 0..20_000u64 {
        let (cycle, phase) = (step / 200, step % 200);
        let now = at(step);
        if phase == 2 && cycle < 90 {
            inbox.push(cycle as u16);
        }
        // Until cycle 40 every timer due in the first 0.2 ms of a cycle waits for the
        // next wake-up (coalesced with the arrival); from then on only in even cycles.
        let held = phase < 2 && (cycle < 40 || cycle % 2 == 0);
        // Cycle 60: the worker stalls for 25 ms (no wake-ups at all).
        let stalled = (60 * 200 + 3..61 * 200 + 50).contains(&step);
        let timer = s.poll_timeout() <= now && !held && !stalled;
        let io = !inbox.is_empty() && !stalled;
        if !(io || timer) {
            continue;
        }
        for n in std::mem::take(&mut inbox) {
            let mut payload = [0x10u8; 160];
            payload[0] = 0x80 | (n % 127) as u8;
            let mut pkt = rtp(n, u32::from(n) * 160, 0, &payload);
            s.handle_rtp(now, addr(7000), &mut pkt);
            // Sent (and due) on its schedule, whenever the worker picks it up.
            arrived.push(at(u64::from(n) * 200 + 2));
        }
        s.handle_timeout(now);
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            if t.kind != PacketKind::Rtp {
                continue;
            }
            let p = RtpPacket::parse(&buf[..t.len]).unwrap();
            let first = p.payload()[0];
            if (0x80..0xff).contains(&first) {
                let k = u32::from(first & 0x7f);
                if let Some(a) = arrived.get(k as usize) {
                    delays_us.push((k, now.duration_since(*a).as_micros() as u64));
                }
            }
        }
    }
    // Frames played around the stall are late once; the rest share one delay.
    let steady: Vec<u64> = delays_us
        .iter()
        .filter(|(k, _)| (10..80).contains(k) && !(55..66).contains(k))
        .map(|(_, d)| *d)
        .collect();
    assert!(steady.len() >= 55, "echoes matched: {}", steady.len());
    let (min, max) = (
        steady.iter().min().copied().unwrap_or(0),
        steady.iter().max().copied().unwrap_or(0),
    );
    assert!(
        max - min <= 1_000,
        "echo delay varies {min}..{max} us: {delays_us:?}"
    );
    // And it is the jitter buffer's depth, not more: the echo leaves at its playout tick.
    assert!(max <= 40_000 + 20_000 + 1_000, "max {max} us");
}

/// After a stall longer than the catch-up (several frames played out at once), an echo
/// session keeps at most the newest frame queued: its echo delay does not grow.
#[test]
fn echo_queue_does_not_grow_after_a_long_stall() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(4, CodecKind::Pcmu, 0);
    c.echo = true;
    c.remote_rtp = Some(addr(7000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut buf = [0u8; 1500];
    let payload = [0x10u8; 160];
    let mut serve = |s: &mut MediaSession, now: Instant| {
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
    };
    // 1 s of normal traffic, served every 1 ms.
    for ms in 0..1000u64 {
        let now = t0 + Duration::from_millis(ms);
        if ms % 20 == 3 {
            let n = (ms / 20) as u16;
            s.handle_rtp(
                now,
                addr(7000),
                &mut rtp(n, u32::from(n) * 160, 0, &payload),
            );
        }
        serve(&mut s, now);
    }
    assert!(s.play.len() <= 160, "steady queue {}", s.play.len());
    // The worker stalls 200 ms; the ten packets sent meanwhile arrive at once, then
    // traffic and service go on as before.
    let now = t0 + Duration::from_millis(1200);
    for n in 50..60u16 {
        s.handle_rtp(
            now,
            addr(7000),
            &mut rtp(n, u32::from(n) * 160, 0, &payload),
        );
    }
    serve(&mut s, now);
    let mut worst = 0;
    for ms in 1201..1600u64 {
        let now = t0 + Duration::from_millis(ms);
        if ms % 20 == 3 {
            let n = (ms / 20) as u16;
            s.handle_rtp(
                now,
                addr(7000),
                &mut rtp(n, u32::from(n) * 160, 0, &payload),
            );
        }
        serve(&mut s, now);
        if ms >= 1300 {
            worst = worst.max(s.play.len());
        }
    }
    assert!(
        worst <= 160,
        "after the stall up to {worst} samples stay queued"
    );
    assert!(s.stats().echo_dropped_samples > 0);
}

/// A stall longer than the catch-up leaves each session on its own playout phase: two
/// sessions whose callers send at different instants of the packet time, stalled
/// together and served at one instant after it, still play out (and echo) at different
/// instants, each where it did before.
#[test]
fn a_long_stall_keeps_each_sessions_playout_phase() {
    let t0 = Instant::now();
    let payload = [0x10u8; 160];
    let mut buf = [0u8; 1500];
    let ptime_ns = 20_000_000u128;
    let phase = |at: Instant| at.duration_since(t0).as_nanos() % ptime_ns;
    let mut sessions: Vec<(MediaSession, u64)> = [3u64, 11]
        .into_iter()
        .map(|offset_ms| {
            let mut c = SessionConfig::new(10 + offset_ms as u32, CodecKind::Pcmu, 0);
            c.echo = true;
            c.remote_rtp = Some(addr(7000));
            (MediaSession::new(c, t0).unwrap(), offset_ms)
        })
        .collect();
    let mut serve = |s: &mut MediaSession, now: Instant| {
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
    };
    // 1 s of traffic, each caller at its own offset in the packet time, served every 1 ms.
    for ms in 0..1000u64 {
        let now = t0 + Duration::from_millis(ms);
        for (s, offset) in &mut sessions {
            if ms % 20 == *offset {
                let n = (ms / 20) as u16;
                s.handle_rtp(
                    now,
                    addr(7000),
                    &mut rtp(n, u32::from(n) * 160, 0, &payload),
                );
            }
            serve(s, now);
        }
    }
    let before: Vec<u128> = sessions
        .iter()
        .map(|(s, _)| phase(s.next_playout.expect("playing")))
        .collect();
    assert_ne!(before[0], before[1]);
    // Both stall 200 ms (ten packet times) and are served at one odd instant after.
    let now = t0 + Duration::from_micros(1_207_300);
    for (s, _) in &mut sessions {
        serve(s, now);
    }
    for (i, (s, _)) in sessions.iter().enumerate() {
        let next = s.next_playout.expect("playing");
        assert!(next > now && next <= now + Duration::from_millis(20));
        assert_eq!(phase(next), before[i], "session {i} moved to another phase");
        // The echo leaves on that tick too.
        assert_eq!(s.next_send, next);
    }
}

/// Packets that arrive exactly on the session's own 20 ms grid (no jitter) give the same
/// echo delay whether the worker serves a packet before or after a timer due at the same
/// instant: the playout clock starts an eighth of a packet time after the first arrival, so no
/// playout tick coincides with an arrival and the start depth is never a coin flip.
#[test]
fn start_depth_does_not_depend_on_service_order() {
    let delay_us = |packet_first: bool| -> Vec<u64> {
        let t0 = Instant::now();
        let mut c = SessionConfig::new(5, CodecKind::Pcmu, 0);
        c.echo = true;
        c.remote_rtp = Some(addr(7000));
        let mut s = MediaSession::new(c, t0).unwrap();
        let mut delays = Vec::new();
        let serve_timers = |s: &mut MediaSession, now: Instant, delays: &mut Vec<u64>| {
            let mut buf = [0u8; 1500];
            if s.poll_timeout() <= now {
                s.handle_timeout(now);
            }
            while let Some(t) = s.poll_transmit(now, &mut buf) {
                if t.kind != PacketKind::Rtp {
                    continue;
                }
                let p = RtpPacket::parse(&buf[..t.len]).unwrap();
                let first = p.payload()[0];
                if (0x80..0xff).contains(&first) {
                    let k = u64::from(first & 0x7f);
                    let sent = now.duration_since(t0).as_micros() as u64;
                    delays.push(sent.saturating_sub(k * 20_000));
                }
            }
        };
        for ms in 0..2_000u64 {
            let now = t0 + Duration::from_millis(ms);
            let arrival = ms % 20 == 0 && ms / 20 < 90;
            if !packet_first {
                serve_timers(&mut s, now, &mut delays);
            }
            if arrival {
                let n = (ms / 20) as u16;
                let mut payload = [0x10u8; 160];
                payload[0] = 0x80 | (n % 127) as u8;
                let mut pkt = rtp(n, u32::from(n) * 160, 0, &payload);
                s.handle_rtp(now, addr(7000), &mut pkt);
            }
            serve_timers(&mut s, now, &mut delays);
        }
        delays
    };
    let (a, b) = (delay_us(true), delay_us(false));
    assert!(
        a.len() >= 80 && b.len() >= 80,
        "echoes: {} {}",
        a.len(),
        b.len()
    );
    let steady = |d: &[u64]| d[10..70].iter().copied().max().unwrap_or(0);
    assert_eq!(
        steady(&a),
        steady(&b),
        "echo delay with the packet served first {a:?} vs the timer first {b:?}"
    );
}

#[test]
fn audio_on_an_idle_stream_starts_at_once_with_true_timestamps() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(0xabcd, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(4000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let mut buf = [0u8; 1500];
    // (µs since t0, seq, ts, marker, first payload byte)
    let mut sent: Vec<(u64, u16, u32, bool, u8)> = Vec::new();
    let mut started = Vec::new();
    for us in (0..200_000u64).step_by(500) {
        let now = t0 + Duration::from_micros(us);
        if us == 107_000 {
            // Mid-slot: the next silence packet was due at 120 ms.
            assert_eq!(s.play(&[1000; 480]), 480);
        }
        s.handle_timeout(now);
        while let Some(tx) = s.poll_transmit(now, &mut buf) {
            if tx.kind == PacketKind::Rtp {
                let p = RtpPacket::parse(&buf[..tx.len]).unwrap();
                sent.push((
                    us,
                    p.sequence_number(),
                    p.timestamp(),
                    p.marker(),
                    p.payload()[0],
                ));
            }
        }
        while let Some(e) = s.poll_event() {
            if e == SessionEvent::PlaybackStarted {
                started.push(us);
            }
        }
    }
    let first = sent
        .iter()
        .position(|p| p.4 != 0xff)
        .expect("audio was sent");
    let (at, seq, ts, marker, _) = sent[first];
    assert_eq!(
        at, 107_000,
        "audio leaves when queued, not at the 120 ms slot"
    );
    assert!(marker, "a talkspurt starts");
    let (prev_at, prev_seq, prev_ts, ..) = sent[first - 1];
    assert_eq!(prev_at, 100_000);
    assert_eq!(seq, prev_seq.wrapping_add(1), "no sequence gap");
    // 7 ms after the previous packet at 8 kHz: 56 timestamp units, not 160.
    assert_eq!(ts.wrapping_sub(prev_ts), 56);
    // The stream keeps the new phase: 20 ms and 160 units apart from here on.
    for w in sent[first..].windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20_000, "{sent:?}");
        assert_eq!(w[1].2.wrapping_sub(w[0].2), 160);
    }
    assert_eq!(
        started,
        vec![107_000],
        "one PlaybackStarted, when the audio left"
    );
}

/// Queued audio leaves sample for sample, zero-padded at its end, also when a packet's
/// samples straddle the end of the play queue's ring (30 ms packets: 240 samples do not
/// divide the 8,000-sample queue) and audio is added while the queue still holds some.
#[test]
fn queued_audio_is_sent_sample_exact_across_the_queue_ring() {
    for (codec, pt) in [(CodecKind::Pcmu, 0u8), (CodecKind::Pcma, 8)] {
        let t0 = Instant::now();
        let mut c = SessionConfig::new(0x77, codec, pt);
        c.ptime_ms = 30;
        c.remote_rtp = Some(addr(4000));
        let mut s = MediaSession::new(c, t0).unwrap();
        let sample = |i: usize| ((i * 37) % 20000) as i16 - 10000;
        let first: Vec<i16> = (0..7990).map(sample).collect();
        let second: Vec<i16> = (7990..8190).map(sample).collect();
        assert_eq!(s.play(&first), 7990);
        let mut added = false;
        let mut payloads = Vec::new();
        let mut buf = [0u8; 1500];
        let mut ms = 0;
        while payloads.len() < 36 {
            let now = t0 + Duration::from_millis(ms);
            if !added && s.queued_samples() < 300 {
                assert_eq!(s.play(&second), 200);
                added = true;
            }
            s.handle_timeout(now);
            while let Some(tx) = s.poll_transmit(now, &mut buf) {
                if tx.kind == PacketKind::Rtp {
                    let p = RtpPacket::parse(&buf[..tx.len]).unwrap();
                    payloads.push(p.payload().to_vec());
                }
            }
            ms += 5;
        }
        let encode = |x: i16| match codec {
            CodecKind::Pcma => crate::codec::g711::alaw_encode(x),
            _ => crate::codec::g711::ulaw_encode(x),
        };
        let all: Vec<i16> = first.iter().chain(&second).copied().collect();
        for (k, p) in payloads.iter().enumerate() {
            let want: Vec<u8> = (k * 240..(k + 1) * 240)
                .map(|i| encode(all.get(i).copied().unwrap_or(0)))
                .collect();
            assert_eq!(p, &want, "{codec:?} packet {k}");
        }
    }
}

#[test]
fn due_reads_name_what_the_next_service_reads() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut c = SessionConfig::new(7, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(4000));
    c.echo = true;
    let mut s = MediaSession::new(c, t0).unwrap();
    // Before any packet: nothing to play out; nothing queued to send.
    let (jitter, play) = s.due_reads(ms(0));
    assert!(jitter.is_empty() && play.is_empty());
    // Packets arrive; once a playout is due, the jitter buffer's next slot is named.
    for k in 0..3u16 {
        let mut p = rtp(k, 160 * u32::from(k), 0, &[0x80 + k as u8; 160]);
        s.handle_rtp(ms(20 * u64::from(k)), addr(4000), &mut p);
    }
    let playout_at = s.next_playout.expect("playout clock started");
    assert!(s
        .due_reads(playout_at - Duration::from_micros(1))
        .0
        .is_empty());
    let (jitter, _) = s.due_reads(playout_at);
    assert_eq!(jitter.len(), 192);
    assert_eq!(jitter.as_ptr(), s.jitter.next_storage().as_ptr());
    // After playout the echo's PCM waits in the play queue; when its send is due, the
    // head of the queue (one packet, 160 samples) is named.
    s.handle_timeout(ms(60));
    let queued = s.play.len();
    assert!(queued > 0, "echo queued nothing");
    let send_at = s.next_send;
    assert!(s.due_reads(send_at - Duration::from_micros(1)).1.is_empty());
    let (_, play) = s.due_reads(send_at);
    assert_eq!(play.len(), queued.min(160));
    assert_eq!(play.as_ptr(), s.play.as_slices().0.as_ptr());
}

/// Serves `s` like a worker in virtual time: at each arrival (a G.711 packet of
/// `period_us`, the first `phase_us` after t0) and at each deadline, nothing in between;
/// every other service calls `poll_transmit` before `handle_timeout` (a worker serving a
/// datagram before its timers). Returns (service instants, sent RTP packets as (µs,
/// timestamp, first payload byte)) over `until_us`.
fn serve_in_virtual_time(
    s: &mut MediaSession,
    t0: Instant,
    (phase_us, period_us): (u64, u64),
    until_us: u64,
) -> (Vec<u64>, Vec<(u64, u32, u8)>) {
    let samples = (period_us / 125) as usize;
    let mut buf = [0u8; 1500];
    let (mut services, mut sent) = (Vec::new(), Vec::new());
    let mut next_arrival = phase_us;
    let mut n = 0u16;
    let mut transmit = |s: &mut MediaSession, now: Instant, sent: &mut Vec<(u64, u32, u8)>| {
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            if t.kind == PacketKind::Rtp {
                let p = RtpPacket::parse(&buf[..t.len]).unwrap();
                let us = now.duration_since(t0).as_micros() as u64;
                sent.push((us, p.timestamp(), p.payload()[0]));
            }
        }
    };
    for turn in 0..100_000u32 {
        let deadline = s.poll_timeout().duration_since(t0).as_micros() as u64;
        let us = deadline.min(next_arrival);
        if us >= until_us {
            break;
        }
        let now = t0 + Duration::from_micros(us);
        if us == next_arrival {
            let mut payload = vec![0x10u8; samples];
            payload[0] = 0x80 | (n % 127) as u8;
            let ts = u32::from(n) * samples as u32;
            s.handle_rtp(now, addr(7000), &mut rtp(n, ts, 0, &payload));
            n = n.wrapping_add(1);
            next_arrival += period_us;
        }
        if s.poll_timeout() <= now {
            services.push(us);
            if turn % 2 == 0 {
                transmit(s, now, &mut sent);
                s.handle_timeout(now);
            } else {
                s.handle_timeout(now);
            }
            transmit(s, now, &mut sent);
        }
    }
    (services, sent)
}

/// An echo is sent in the service that plays its frame out: one service per packet
/// time (plus RTCP), the echo delay is the jitter buffer's alone, and a worker that
/// polls for packets before running timers still sends the frame, not silence.
#[test]
fn echo_leaves_in_the_service_that_plays_it_out() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(9, CodecKind::Pcmu, 0);
    c.echo = true;
    c.remote_rtp = Some(addr(7000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let (services, sent) = serve_in_virtual_time(&mut s, t0, (3_000, 20_000), 3_000_000);
    // Steady state (1–3 s): 100 packet times, 100 services and a few RTCP reports; with
    // the send clock half a packet time off the playout clock it was 200.
    let steady = services.iter().filter(|&&us| us >= 1_000_000).count();
    assert!((100..=104).contains(&steady), "{steady} services in 2 s");
    // Every echo in the steady state carries the caller's frame, sent at its playout
    // tick: arrival + 2.5 ms (the playout clock's offset) + whole packet times of
    // jitter-buffer depth, the same for all.
    let delays: Vec<u64> = sent
        .iter()
        .filter(|p| p.0 >= 1_000_000)
        .map(|&(us, _, first)| {
            assert!((0x80..0xff).contains(&first), "silence sent at {us} us");
            // The payload names the packet number modulo 127 (2.54 s of packets).
            let arrival = u64::from(first & 0x7f) * 20_000 + 3_000;
            (us as i64 - arrival as i64).rem_euclid(127 * 20_000) as u64
        })
        .collect();
    assert!(delays.len() >= 99, "{} echoes", delays.len());
    let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    assert_eq!(min, max, "echo delay varies");
    assert_eq!(
        min % 20_000,
        2_500,
        "echo delay {min} us is not on a playout tick"
    );
}

/// A session that is not an echo moves its send clock onto its playout clock while
/// nothing plays (one service per packet time), with timestamps that stay true to the
/// send times; a talkspurt still starts at once, and the clock is re-aligned after it.
#[test]
fn idle_send_clock_follows_the_playout_clock_with_true_timestamps() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(0x5150, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(7000));
    let mut s = MediaSession::new(c, t0).unwrap();
    // Opened at t0 (send clock phase 0), caller packets 7 ms into each slot: playout
    // ticks at 9.5 ms into each slot.
    let (services, sent) = serve_in_virtual_time(&mut s, t0, (7_000, 20_000), 1_000_000);
    assert!(s.send_aligned);
    let tail = services.iter().filter(|&&us| us >= 500_000).count();
    assert!((25..=27).contains(&tail), "{tail} services in 0.5 s");
    for w in sent.windows(2) {
        let (dt_us, dts) = (w[1].0 - w[0].0, w[1].1.wrapping_sub(w[0].1));
        // 8 kHz: 8 units per ms, to within a unit of truncation.
        assert!(
            (dts as i64 - (dt_us * 8 / 1000) as i64).abs() <= 1,
            "{dt_us} us but {dts} timestamp units: {sent:?}"
        );
        assert!(dt_us >= 10_000, "two packets {dt_us} us apart");
    }
    assert!(sent
        .iter()
        .filter(|p| p.0 >= 100_000)
        .all(|p| p.0 % 20_000 == 9_500));

    // A talkspurt queued mid-slot leaves at once, off the ticks; once it has played,
    // the clock is back on them.
    let now = t0 + Duration::from_micros(1_004_000);
    s.handle_timeout(now);
    assert_eq!(s.play(&[1000; 480]), 480);
    let mut buf = [0u8; 1500];
    assert!(
        s.poll_transmit(now, &mut buf).is_some(),
        "talkspurt did not start at once"
    );
    assert!(!s.send_aligned);
    for _ in 0..10 {
        let now = s.poll_timeout();
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
    }
    assert!(s.send_aligned, "not re-aligned after the talkspurt");
    assert_eq!(Some(s.next_send), s.next_playout);
}

/// An echo of a caller whose packets are longer than ours (30 ms against 20 ms) sends
/// all of the caller's audio: the clocks meet only every 60 ms, and what is left in the
/// play queue on those ticks is sent next, not dropped as stale.
#[test]
fn echo_of_a_caller_with_another_ptime_keeps_all_audio() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(11, CodecKind::Pcmu, 0);
    c.echo = true;
    c.remote_rtp = Some(addr(7000));
    let mut s = MediaSession::new(c, t0).unwrap();
    let (_, sent) = serve_in_virtual_time(&mut s, t0, (3_000, 30_000), 2_000_000);
    assert_eq!(s.stats().echo_dropped_samples, 0);
    // Steady state (0.5–2 s): every packet carries the caller's audio, none silence.
    let steady: Vec<_> = sent.iter().filter(|p| p.0 >= 500_000).collect();
    assert!(steady.len() >= 74, "{} packets", steady.len());
    assert!(
        steady.iter().all(|p| p.2 != 0xff),
        "silence in the echo: {steady:?}"
    );
}

/// Audio that streams in just after each send (a TTS engine's chunks) leaves as one
/// seamless talkspurt: timestamps step by one packet, 20 ms apart, the clock is not
/// moved onto the playout ticks in the middle of it.
#[test]
fn streamed_audio_is_not_split_by_the_send_clock_alignment() {
    let t0 = Instant::now();
    let mut c = SessionConfig::new(0x7a7a, CodecKind::Pcmu, 0);
    c.remote_rtp = Some(addr(7000));
    let mut s = MediaSession::new(c, t0).unwrap();
    // Caller packets 7 ms into each slot; the idle send clock aligns onto the playout
    // ticks (9.5 ms into each slot).
    serve_in_virtual_time(&mut s, t0, (7_000, 20_000), 500_000);
    assert!(s.send_aligned);
    let mut buf = [0u8; 1500];
    let mut now = t0 + Duration::from_micros(503_000);
    s.handle_timeout(now);
    // Mid-slot: the talkspurt starts at once, off the ticks.
    assert_eq!(s.play(&[1000; 160]), 160);
    let mut audio: Vec<(u64, u32)> = Vec::new();
    for _ in 0..200 {
        if audio.len() >= 20 {
            break;
        }
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            if t.kind != PacketKind::Rtp {
                continue;
            }
            let p = RtpPacket::parse(&buf[..t.len]).unwrap();
            if p.payload()[0] != 0xff {
                audio.push((now.duration_since(t0).as_micros() as u64, p.timestamp()));
                // The next chunk arrives right after this send.
                if audio.len() < 20 {
                    assert_eq!(s.play(&[1000; 160]), 160);
                }
            }
        }
        now = s.poll_timeout();
        s.handle_timeout(now);
    }
    assert_eq!(audio.len(), 20, "{audio:?}");
    for w in audio.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 20_000, "{audio:?}");
        assert_eq!(w[1].1.wrapping_sub(w[0].1), 160, "{audio:?}");
    }
}

#[test]
fn a_receive_prefetch_takes_any_bytes_with_or_without_srtp() {
    use crate::srtp::sdes::CryptoAttribute;
    use crate::srtp::SrtpSuite;
    let t0 = Instant::now();
    let heads: [&[u8]; 6] = [
        &[],
        &[0x80, 0],
        &rtp(65535, 0, 0, &[0xff; 4])[..16],
        &[0xff; 16],
        &[0x80, 0x00, 0x12, 0x34],
        // An RTCP receiver report, multiplexed: its length where a sequence would be.
        &[0x81, 201, 0x00, 0x07, 0, 0, 0, 1],
    ];
    let ours = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let peers = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80).unwrap();
    for srtp in [false, true] {
        let mut c = SessionConfig::new(7, CodecKind::Pcmu, 0);
        c.remote_rtp = Some(addr(4000));
        c.rtcp_mux = true;
        if srtp {
            c.srtp = Some(SrtpKeys {
                local: ours.to_sdp_value(),
                remote: peers.to_sdp_value(),
            });
        }
        let mut s = MediaSession::new(c, t0).unwrap();
        for h in heads {
            s.prefetch_receive(h);
        }
        // And the packet the last hint was for is then received as usual.
        let mut p = rtp(65535, 0, 0, &[0xff; 160]);
        p.resize(p.len() + 16, 0);
        let len = if srtp {
            let n = p.len() - 16;
            peers.context().unwrap().protect_rtp(&mut p, n).unwrap()
        } else {
            p.len() - 16
        };
        s.prefetch_receive(&p[..16]);
        s.handle_rtp(t0, addr(4000), &mut p[..len]);
        assert_eq!(s.stats().packets_in, 1, "srtp {srtp}");
    }
}
