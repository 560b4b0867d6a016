//! SRTP on the media cores, over real loopback sockets through each backend: a session
//! keyed like its peer passes audio on and sends SRTP the peer can unprotect; a session
//! whose peer uses another key drops every packet, counts it per session and per core
//! (`Engine::core_stats`), and never reports it as audio; a replayed packet is counted
//! as a replay.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use voxgate_engine::codec::g711::ulaw_encode;
use voxgate_engine::session::SrtpKeys;
use voxgate_engine::srtp::sdes::CryptoAttribute;
use voxgate_engine::srtp::{SrtpContext, SrtpSuite};
use voxgate_engine::worker::media::{CodecKind, SessionConfig};
use voxgate_engine::worker::{Backend, Engine, EngineConfig, Event, SessionId};

const SUITE: SrtpSuite = SrtpSuite::AesCm128HmacSha1_80;
const PACKETS: u16 = 30;

fn engine(backend: Backend, ports: std::ops::RangeInclusive<u16>) -> Engine {
    Engine::start(EngineConfig {
        cores: vec![0],
        rtp_port_range: ports,
        bind_ip: "127.0.0.1".parse().expect("ip"),
        backend,
        queue_capacity: 4096,
        socket_buffer_bytes: 256 * 1024,
    })
    .expect("engine starts")
}

/// One 20 ms µ-law RTP packet of a loud tone, with room for the SRTP tag.
fn rtp_packet(seq: u16, ssrc: u32, buf: &mut [u8; 256]) -> usize {
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for n in 0..160usize {
        let v = ((n % 8) as f64 / 8.0 * std::f64::consts::TAU).sin() * 8000.0;
        buf[12 + n] = ulaw_encode(v as i16);
    }
    172
}

struct Keyed {
    id: SessionId,
    addr: SocketAddr,
    /// What the peer protects with.
    tx: SrtpContext,
    /// What the peer unprotects the session's packets with.
    rx: SrtpContext,
}

/// Opens a session; `peer_key_matches` false: the session is told another peer key
/// than the one the peer sends with.
fn open(engine: &Engine, ssrc: u32, remote: SocketAddr, peer_key_matches: bool) -> Keyed {
    let ours = CryptoAttribute::generate(1, SUITE).expect("rng");
    let peers = CryptoAttribute::generate(1, SUITE).expect("rng");
    let told = if peer_key_matches {
        peers.clone()
    } else {
        CryptoAttribute::generate(1, SUITE).expect("rng")
    };
    let mut cfg = SessionConfig::new(ssrc, CodecKind::Pcmu, 0);
    cfg.remote_rtp = Some(remote);
    cfg.rtcp_mux = true;
    cfg.srtp = Some(SrtpKeys {
        local: ours.to_sdp_value(),
        remote: told.to_sdp_value(),
    });
    let h = engine.open_session(cfg).expect("open");
    Keyed {
        id: h.id,
        addr: h.local_rtp,
        tx: peers.context().expect("context"),
        rx: ours.context().expect("context"),
    }
}

/// What the control side saw.
#[derive(Default)]
struct Seen {
    audio_from: HashSet<SessionId>,
    /// Loud decoded frames of the session keyed like its peer.
    loud_good: usize,
    closed: Vec<(SessionId, voxgate_engine::worker::media::SessionStats)>,
}

impl Seen {
    fn drain(&mut self, engine: &Engine, good: SessionId) {
        while let Some(ev) = engine.poll_event() {
            match ev {
                Event::Audio { id, frame } => {
                    self.audio_from.insert(id);
                    let peak = frame.pcm().iter().map(|s| s.unsigned_abs()).max();
                    if id == good && peak.unwrap_or(0) > 4000 {
                        self.loud_good += 1;
                    }
                }
                Event::Closed { id, stats } => self.closed.push((id, stats)),
                _ => {}
            }
        }
    }
}

fn wrong_keys_are_dropped_and_counted(backend: Backend, ports: std::ops::RangeInclusive<u16>) {
    let engine = engine(backend, ports);
    assert_eq!(engine.backend(), backend);
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    let remote = peer.local_addr().expect("addr");
    let mut good = open(&engine, 0x1111, remote, true);
    let mut bad = open(&engine, 0x2222, remote, false);
    let before = engine.core_stats();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].srtp_auth_failed, 0);

    let mut seen = Seen::default();
    let good_id = good.id;
    let mut buf = [0u8; 256];
    let mut last_good = ([0u8; 256], 0usize);
    for seq in 0..PACKETS {
        for (s, ssrc) in [(&mut good, 0xAAA), (&mut bad, 0xBBB)] {
            let len = rtp_packet(seq, ssrc, &mut buf);
            let len = s.tx.protect_rtp(&mut buf, len).expect("protect");
            peer.send_to(&buf[..len], s.addr).expect("send");
            if ssrc == 0xAAA {
                last_good = (buf, len);
            }
        }
        // Paced like a phone; not a synchronisation.
        std::thread::sleep(Duration::from_millis(20));
        seen.drain(&engine, good_id);
    }
    // The last good packet again: a replay.
    peer.send_to(&last_good.0[..last_good.1], good.addr)
        .expect("send");

    // Per-core counters: every packet of the wrongly keyed session, one replay.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut stats = engine.core_stats();
    while Instant::now() < deadline
        && (stats[0].srtp_auth_failed < u64::from(PACKETS) || stats[0].srtp_replayed < 1)
    {
        engine.wait_events(Some(Duration::from_millis(20)));
        seen.drain(&engine, good_id);
        stats = engine.core_stats();
    }
    assert_eq!(stats[0].srtp_auth_failed, u64::from(PACKETS), "{stats:?}");
    assert_eq!(stats[0].srtp_replayed, 1, "{stats:?}");
    assert_eq!(stats[0].srtp_protect_failed, 0);

    // The session keyed like its peer sends SRTP the peer can unprotect (tag in the
    // worker's send slot) and carrying RTP.
    peer.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut got_from_good = 0usize;
    let mut got_from_bad = 0usize;
    let mut rbuf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && (got_from_good < 5 || got_from_bad < 5) {
        let Ok((n, from)) = peer.recv_from(&mut rbuf) else {
            continue;
        };
        let (ctx, count) = if from == good.addr {
            (&mut good.rx, &mut got_from_good)
        } else if from == bad.addr {
            (&mut bad.rx, &mut got_from_bad)
        } else {
            continue;
        };
        if let Ok(len) = ctx.unprotect_rtp(&mut rbuf[..n]) {
            assert_eq!(n - len, 10, "an 80-bit tag");
            assert_eq!(rbuf[0] >> 6, 2, "RTP inside");
            *count += 1;
        }
    }
    assert!(
        got_from_good >= 5,
        "SRTP from the good session: {got_from_good}"
    );
    assert!(
        got_from_bad >= 5,
        "SRTP from the bad session: {got_from_bad}"
    );

    // Audio only from the session whose packets authenticated.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && seen.loud_good < 10 {
        engine.wait_events(Some(Duration::from_millis(20)));
        seen.drain(&engine, good_id);
    }
    assert!(
        seen.loud_good >= 10,
        "decoded tone frames: {}",
        seen.loud_good
    );
    assert!(
        !seen.audio_from.contains(&bad.id),
        "a session whose packets all failed authentication reported audio"
    );

    // Per-session counters agree.
    for id in [good.id, bad.id] {
        engine
            .command(voxgate_engine::worker::Command::Close { id })
            .expect("close");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && seen.closed.len() < 2 {
        engine.wait_events(Some(Duration::from_millis(20)));
        seen.drain(&engine, good_id);
    }
    let of = |id| {
        seen.closed
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| *s)
            .expect("closed")
    };
    assert_eq!(of(bad.id).srtp_auth_failed, u64::from(PACKETS));
    assert_eq!(of(bad.id).packets_in, 0);
    assert_eq!(of(good.id).srtp_auth_failed, 0);
    assert_eq!(of(good.id).srtp_replayed, 1);
    assert_eq!(of(good.id).packets_in, u64::from(PACKETS));
    // Closed sessions stay in the core's totals.
    assert_eq!(engine.core_stats()[0].srtp_auth_failed, u64::from(PACKETS));
}

#[test]
fn uring_srtp_wrong_keys_dropped_and_counted_per_core() {
    wrong_keys_are_dropped_and_counted(Backend::Uring, 41500..=41503);
}

#[test]
fn mmsg_srtp_wrong_keys_dropped_and_counted_per_core() {
    wrong_keys_are_dropped_and_counted(Backend::Mmsg, 41600..=41603);
}
