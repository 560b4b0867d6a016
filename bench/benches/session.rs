//! One echo session, per 20 ms packet: receive (parse, stats, jitter buffer), playout
//! (decode, speech detector, re-queue), send (encode, build) — the engine's per-packet
//! protocol cost without I/O.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voxgate_engine::codec::CodecKind;
use voxgate_engine::rtp::RtpHeader;
use voxgate_engine::session::{MediaSession, SessionConfig};

fn echo(c: &mut Criterion, name: &str, pcm_rate: u32) {
    let from = SocketAddr::from(([127, 0, 0, 1], 4000));
    let t0 = Instant::now();
    let mut cfg = SessionConfig::new(7, CodecKind::Pcmu, 0);
    cfg.echo = true;
    cfg.pcm_rate = pcm_rate;
    cfg.no_rtp_timeout = Duration::from_secs(3600);
    let mut s = MediaSession::new(cfg, t0).unwrap();
    let mut pkt = [0u8; 172];
    let mut out = [0u8; 1500];
    let payload: Vec<u8> = (0..160).map(|i| (i * 7) as u8).collect();
    let mut n = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(n * 20);
            let h = RtpHeader {
                marker: false,
                payload_type: 0,
                sequence_number: n as u16,
                timestamp: (n * 160) as u32,
                ssrc: 99,
            };
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

fn session(c: &mut Criterion) {
    echo(c, "session_echo_per_packet", 8000);
    // pcm_rate 16 kHz: adds 8→16 kHz on receive and 16→8 kHz on send.
    echo(c, "session_echo_per_packet_pcm16k", 16000);
}

criterion_group!(benches, session);
criterion_main!(benches);
