//! The media workers over real loopback sockets, through each backend: sessions receive
//! RTP and report decoded audio, play PCM as paced RTP, close and give their ports back
//! for reuse; full queues are counted.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use voxgate_engine::codec::g711::{ulaw_decode, ulaw_encode};
use voxgate_engine::worker::media::{CodecKind, SessionConfig};
use voxgate_engine::worker::{
    Backend, Command, Engine, EngineConfig, EngineError, Event, SessionHandle,
};

fn engine(backend: Backend, ports: std::ops::RangeInclusive<u16>, queue_capacity: usize) -> Engine {
    Engine::start(EngineConfig {
        cores: vec![0],
        rtp_port_range: ports,
        bind_ip: "127.0.0.1".parse().expect("ip"),
        backend,
        queue_capacity,
        socket_buffer_bytes: 256 * 1024,
    })
    .expect("engine starts")
}

fn config(ssrc: u32, remote: SocketAddr) -> SessionConfig {
    let mut cfg = SessionConfig::new(ssrc, CodecKind::Pcmu, 0);
    cfg.remote_rtp = Some(remote);
    cfg
}

/// One 20 ms µ-law RTP packet of a 1 kHz tone.
fn rtp_packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for n in 0..160u32 {
        let v = ((n % 8) as f64 / 8.0 * std::f64::consts::TAU).sin() * 8000.0;
        p.push(ulaw_encode(v as i16));
    }
    p
}

/// Drains events until `done` says so or `limit` passes; returns whether it did.
fn events_until(engine: &Engine, limit: Duration, mut done: impl FnMut(&Event) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        while let Some(ev) = engine.poll_event() {
            if done(&ev) {
                return true;
            }
        }
        engine.wait_events(Some(Duration::from_millis(20)));
    }
    false
}

fn receive_send_play_close_reuse(backend: Backend, ports: std::ops::RangeInclusive<u16>) {
    let engine = engine(backend, ports, 4096);
    assert_eq!(engine.backend(), backend);
    let pool = engine.free_ports();
    assert_eq!(pool, 4, "the range holds exactly four pairs");
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    peer.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let remote = peer.local_addr().expect("addr");
    let handles: Vec<SessionHandle> = (0..4)
        .map(|i| {
            engine
                .open_session(config(0x100 + i, remote))
                .expect("open")
        })
        .collect();
    for h in &handles {
        assert_eq!(h.local_rtp.port() % 2, 0);
        assert_eq!(h.local_rtcp.port(), h.local_rtp.port() + 1);
    }
    assert!(matches!(
        engine.open_session(config(0x200, remote)),
        Err(EngineError::NoFreePorts)
    ));

    // Caller audio: 25 packets to every session, paced like a phone (20 ms).
    for seq in 0..25u16 {
        for h in &handles {
            peer.send_to(&rtp_packet(seq, 0xABC), h.local_rtp)
                .expect("send");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut loud_frames = [0usize; 4];
    let all_heard = events_until(&engine, Duration::from_secs(3), |ev| {
        if let Event::Audio { id, frame } = ev {
            let peak = frame
                .pcm()
                .iter()
                .map(|s| s.unsigned_abs())
                .max()
                .unwrap_or(0);
            if let Some(i) = handles.iter().position(|h| h.id == *id) {
                if peak > 4000 {
                    loud_frames[i] += 1;
                }
            }
        }
        loud_frames.iter().all(|&n| n >= 10)
    });
    assert!(
        all_heard,
        "decoded tone frames per session: {loud_frames:?}"
    );

    // Play 1 s of a 500 Hz tone on session 0 and receive it as paced RTP.
    peer.set_nonblocking(true).expect("nonblocking");
    for _ in 0..10_000 {
        if peer.recv_from(&mut [0u8; 1500]).is_err() {
            break;
        }
    }
    peer.set_nonblocking(false).expect("blocking");
    let pcm: Vec<i16> = (0..8000)
        .map(|n| ((n as f64) * 500.0 / 8000.0 * std::f64::consts::TAU).sin() as f32 * 10000.0)
        .map(|v| v as i16)
        .collect();
    let played_at = Instant::now();
    engine
        .command(Command::Play {
            id: handles[0].id,
            pcm: pcm.into(),
        })
        .expect("play");
    let mut started = None;
    let mut loud = Vec::new();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(3);
    while loud.len() < 40 && Instant::now() < deadline {
        let Ok((n, from)) = peer.recv_from(&mut buf) else {
            continue;
        };
        if from != handles[0].local_rtp || n != 172 {
            continue;
        }
        let peak = buf[12..n]
            .iter()
            .map(|&c| ulaw_decode(c).unsigned_abs())
            .max()
            .unwrap_or(0);
        if peak > 5000 {
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            loud.push((Instant::now(), seq, ts));
        }
        while let Some(ev) = engine.poll_event() {
            if let Event::PlaybackStarted { id, at } = ev {
                assert_eq!(id, handles[0].id, "only session 0 plays");
                assert!(started.replace(at).is_none(), "one PlaybackStarted");
            }
        }
    }
    assert!(loud.len() >= 40, "only {} tone packets", loud.len());
    let started = started.expect("PlaybackStarted reported");
    assert!(
        played_at <= started && started <= loud[0].0,
        "stamped between the Play command and the first packet's arrival"
    );
    for w in loud.windows(2) {
        assert_eq!(
            w[1].1,
            w[0].1.wrapping_add(1),
            "consecutive sequence numbers"
        );
        assert_eq!(
            w[1].2,
            w[0].2.wrapping_add(160),
            "timestamps advance 160 per packet"
        );
    }
    let span = loud[39].0 - loud[0].0;
    assert!(
        span >= Duration::from_millis(39 * 20 - 60) && span <= Duration::from_millis(39 * 20 + 200),
        "40 packets paced over {span:?}"
    );

    // Periodic statistics (every 5 s) count what session 1 received.
    let mut packets_in = 0;
    assert!(
        events_until(&engine, Duration::from_secs(7), |ev| {
            if let Event::Stats { id, stats } = ev {
                if *id == handles[1].id {
                    packets_in = stats.packets_in;
                    return true;
                }
            }
            false
        }),
        "no Stats event"
    );
    assert_eq!(packets_in, 25);

    // Close everything: each Closed gives its ports back.
    for h in &handles {
        engine.command(Command::Close { id: h.id }).expect("close");
    }
    let mut closed = 0;
    assert!(events_until(&engine, Duration::from_secs(3), |ev| {
        if matches!(ev, Event::Closed { .. }) {
            closed += 1;
        }
        closed == 4
    }));
    assert_eq!(engine.free_ports(), pool);
    assert_eq!(engine.open_sessions(), 0);
    assert!(matches!(
        engine.command(Command::Close { id: handles[0].id }),
        Err(EngineError::UnknownSession(_))
    ));

    // The same ports bind again and work.
    let again: Vec<SessionHandle> = (0..4)
        .map(|i| {
            engine
                .open_session(config(0x300 + i, remote))
                .expect("reopen on freed ports")
        })
        .collect();
    let mut old: Vec<u16> = handles.iter().map(|h| h.local_rtp.port()).collect();
    let mut new: Vec<u16> = again.iter().map(|h| h.local_rtp.port()).collect();
    old.sort_unstable();
    new.sort_unstable();
    assert_eq!(old, new);
    for seq in 0..5u16 {
        peer.send_to(&rtp_packet(seq, 0xDEF), again[2].local_rtp)
            .expect("send");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        events_until(
            &engine,
            Duration::from_secs(2),
            |ev| matches!(ev, Event::Audio { id, .. } if *id == again[2].id)
        ),
        "a reopened session receives"
    );
    engine.shutdown();
}

#[test]
fn uring_backend_end_to_end() {
    receive_send_play_close_reuse(Backend::Uring, 41000..=41007);
}

#[test]
fn mmsg_backend_end_to_end() {
    receive_send_play_close_reuse(Backend::Mmsg, 41100..=41107);
}

#[test]
fn auto_picks_io_uring_where_it_is_available() {
    let engine = engine(Backend::Auto, 41200..=41203, 16);
    assert_eq!(engine.backend(), Backend::Uring);
    engine.shutdown();
}

fn full_queues_are_counted(backend: Backend, ports: std::ops::RangeInclusive<u16>) {
    let engine = engine(backend, ports, 2);
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    let h = engine
        .open_session(config(7, peer.local_addr().expect("addr")))
        .expect("open");
    let mut refused = 0u64;
    for _ in 0..100_000 {
        match engine.command(Command::StopPlayback { id: h.id }) {
            Ok(()) => {}
            Err(EngineError::QueueFull {
                command: Some(cmd), ..
            }) => {
                assert!(
                    matches!(*cmd, Command::StopPlayback { id } if id == h.id),
                    "handed back"
                );
                refused += 1;
                if refused >= 3 {
                    break;
                }
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused >= 3, "a 2-slot queue never filled");
    assert_eq!(engine.queue_counters().commands_rejected, refused);

    // Events: nobody drains while 30 packets produce audio, so the 2-slot event queue
    // overflows and the drops are counted; Closed still arrives afterwards.
    for seq in 0..30u16 {
        peer.send_to(&rtp_packet(seq, 9), h.local_rtp)
            .expect("send");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while engine.queue_counters().events_dropped == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(engine.queue_counters().events_dropped > 0);
    let mut close = Command::Close { id: h.id };
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match engine.command(close) {
            Ok(()) => break,
            Err(EngineError::QueueFull {
                command: Some(c), ..
            }) if Instant::now() < deadline => close = *c,
            Err(e) => panic!("close: {e}"),
        }
    }
    assert!(events_until(
        &engine,
        Duration::from_secs(3),
        |ev| matches!(ev, Event::Closed { id, .. } if *id == h.id)
    ));
    assert_eq!(engine.open_sessions(), 0);
    engine.shutdown();
}

#[test]
fn uring_full_queues_are_counted() {
    full_queues_are_counted(Backend::Uring, 41300..=41303);
}

#[test]
fn mmsg_full_queues_are_counted() {
    full_queues_are_counted(Backend::Mmsg, 41400..=41403);
}

/// A trunk that moves (re-INVITE with a new address) is followed at once: after
/// `Command::Retarget` the session sends to the new address and takes the new source's
/// audio without waiting for the old one to fall silent.
fn retarget_follows_the_peer(backend: Backend, ports: std::ops::RangeInclusive<u16>) {
    let engine = engine(backend, ports, 1024);
    let old = UdpSocket::bind("127.0.0.1:0").expect("old peer");
    let new = UdpSocket::bind("127.0.0.1:0").expect("new peer");
    for s in [&old, &new] {
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
    }
    let h = engine
        .open_session(config(0x300, old.local_addr().expect("addr")))
        .expect("open");
    // The old peer talks (and is latched); the session sends to it.
    for seq in 0..5u16 {
        old.send_to(&rtp_packet(seq, 0xAAA), h.local_rtp)
            .expect("send");
    }
    let mut buf = [0u8; 1500];
    let heard_old =
        (0..100).any(|_| matches!(old.recv_from(&mut buf), Ok((_, from)) if from == h.local_rtp));
    assert!(heard_old, "the session sends to the first peer");
    engine
        .command(Command::Retarget {
            id: h.id,
            remote_rtp: new.local_addr().expect("addr"),
            remote_rtcp: None,
            inbound: None,
        })
        .expect("queued");
    // At once (well inside RELATCH_AFTER), the new peer's audio is decoded ...
    let mut loud = 0;
    for seq in 5..40u16 {
        new.send_to(&rtp_packet(seq, 0xBBB), h.local_rtp)
            .expect("send");
        while let Some(ev) = engine.poll_event() {
            if let Event::Audio { frame, .. } = ev {
                if frame.pcm().iter().any(|s| s.unsigned_abs() > 4000) {
                    loud += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20)); // RTP pacing, not synchronisation
    }
    let got_new = events_until(&engine, Duration::from_secs(2), |ev| {
        if let Event::Audio { frame, .. } = ev {
            if frame.pcm().iter().any(|s| s.unsigned_abs() > 4000) {
                loud += 1;
            }
        }
        loud >= 10
    });
    assert!(
        got_new,
        "the new peer's audio is heard ({loud} loud frames)"
    );
    // ... and the session's RTP goes to the new peer.
    let heard_new =
        (0..100).any(|_| matches!(new.recv_from(&mut buf), Ok((_, from)) if from == h.local_rtp));
    assert!(heard_new, "the session sends to the new peer");
    engine.shutdown();
}

#[test]
fn uring_retarget_follows_the_peer() {
    retarget_follows_the_peer(Backend::Uring, 41700..=41703);
}

#[test]
fn mmsg_retarget_follows_the_peer() {
    retarget_follows_the_peer(Backend::Mmsg, 41800..=41803);
}

/// The core's health counters: every session timer it serves is counted in the lateness
/// histogram (playout and send every 20 ms, so at least one per packet the peer hears),
/// and its thread's CPU time grows.
fn core_health_is_counted(backend: Backend, ports: std::ops::RangeInclusive<u16>) {
    let engine = engine(backend, ports, 64);
    let before = engine.core_stats()[0];
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    peer.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let h = engine
        .open_session(config(9, peer.local_addr().expect("addr")))
        .expect("open");
    // The session sends codec silence every 20 ms from the start.
    let mut heard = 0u64;
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard < 25 && Instant::now() < deadline {
        if let Ok((_, from)) = peer.recv_from(&mut buf) {
            if from == h.local_rtp {
                heard += 1;
            }
        }
    }
    assert_eq!(heard, 25, "the session streams");
    // The core publishes its tally after each timer turn: wait for it to catch up with
    // what the peer heard (it is at most one turn behind).
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut now = engine.core_stats()[0];
    while now.services() < before.services() + heard && Instant::now() < deadline {
        engine.wait_events(Some(Duration::from_millis(20)));
        now = engine.core_stats()[0];
    }
    assert!(
        now.services() >= before.services() + heard,
        "{} services counted for {heard} packets heard",
        now.services() - before.services()
    );
    assert!(
        now.service_lateness_max_us >= before.service_lateness_max_us,
        "the largest lateness never shrinks"
    );
    assert!(
        now.service_lateness_quantile_us(0.5).is_some(),
        "a median lateness once services are counted"
    );
    assert!(now.cpu_ns > before.cpu_ns, "the core's CPU time grows");
    engine.command(Command::Close { id: h.id }).expect("close");
    engine.shutdown();
}

#[test]
fn uring_core_health_is_counted() {
    core_health_is_counted(Backend::Uring, 41900..=41903);
}

#[test]
fn mmsg_core_health_is_counted() {
    core_health_is_counted(Backend::Mmsg, 42000..=42003);
}
