//! One echo session, per 20 ms packet: receive (parse, stats, jitter buffer), playout
//! (decode, speech detector, re-queue), send (encode, build) — the engine's per-packet
//! protocol cost without I/O.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voxgate_engine::codec::CodecKind;
use voxgate_engine::rtp::RtpHeader;
use voxgate_engine::session::{MediaSession, SessionConfig};

/// A PCMU echo session (SSRC `ssrc`) that never times out.
fn echo_session(ssrc: u32, pcm_rate: u32, t0: Instant) -> MediaSession {
    let mut cfg = SessionConfig::new(ssrc, CodecKind::Pcmu, 0);
    cfg.echo = true;
    cfg.pcm_rate = pcm_rate;
    cfg.no_rtp_timeout = Duration::from_secs(3600);
    MediaSession::new(cfg, t0).unwrap()
}

/// The caller's `n`th packet header (20 ms of PCMU each).
fn caller_header(n: u64) -> RtpHeader {
    RtpHeader {
        marker: false,
        payload_type: 0,
        sequence_number: n as u16,
        timestamp: (n * 160) as u32,
        ssrc: 99,
    }
}

fn echo(c: &mut Criterion, name: &str, pcm_rate: u32) {
    let from = SocketAddr::from(([127, 0, 0, 1], 4000));
    let t0 = Instant::now();
    let mut s = echo_session(7, pcm_rate, t0);
    let mut pkt = [0u8; 172];
    let mut out = [0u8; 1500];
    let payload: Vec<u8> = (0..160).map(|i| (i * 7) as u8).collect();
    let mut n = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(n * 20);
            let h = caller_header(n);
            h.write_packet(&mut pkt, &payload).unwrap();
            s.handle_rtp(now, from, &mut pkt);
            s.handle_timeout(now);
            let mut sent = 0;
            while let Some(t) = s.poll_transmit(now, &mut out) {
                sent += t.len;
            }
            while s.poll_event().is_some() {}
            n += 1;
            black_box(sent)
        })
    });
}

/// `sessions` echo sessions served like a loaded media core serves them: per 20 ms round,
/// every session receives its packet, then (2.5 ms later, after its playout offset) every
/// session plays it out, then (10 ms later) every session sends; each session's state has
/// gone cold in between, as it does on a core with 1,000 sessions. Time is per round:
/// divide by `sessions` for one packet pair.
fn echo_many(c: &mut Criterion, name: &str, sessions: usize) {
    let t0 = Instant::now();
    let mut all: Vec<Box<MediaSession>> = (0..sessions)
        .map(|i| Box::new(echo_session(7 + i as u32, 8000, t0)))
        .collect();
    let from: Vec<SocketAddr> = (0..sessions)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 4000 + i as u16)))
        .collect();
    let mut pkt = [0u8; 172];
    let mut out = [0u8; 1500];
    let payload: Vec<u8> = (0..160).map(|i| (i * 7) as u8).collect();
    let mut n = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(n * 20);
            let h = caller_header(n);
            for (s, &from) in all.iter_mut().zip(&from) {
                h.write_packet(&mut pkt, &payload).unwrap();
                s.handle_rtp(now, from, &mut pkt);
            }
            let playout = now + Duration::from_micros(2_600);
            for s in all.iter_mut() {
                s.handle_timeout(playout);
                while s.poll_event().is_some() {}
            }
            let send = now + Duration::from_micros(12_600);
            let mut sent = 0;
            for s in all.iter_mut() {
                s.handle_timeout(send);
                while let Some(t) = s.poll_transmit(send, &mut out) {
                    sent += t.len;
                }
            }
            n += 1;
            black_box(sent)
        })
    });
}

fn session(c: &mut Criterion) {
    echo_many(c, "session_echo_1000_sessions_per_round", 1000);
    echo(c, "session_echo_per_packet", 8000);
    // pcm_rate 16 kHz: adds 8→16 kHz on receive and 16→8 kHz on send.
    echo(c, "session_echo_per_packet_pcm16k", 16000);
}

criterion_group!(benches, session);
criterion_main!(benches);
