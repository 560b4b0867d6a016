//! Virtual-time tests: a sender emits one 20 ms packet per tick of its own clock, a
//! simulated network delays/drops/duplicates/reorders them, and the receiver pops once
//! per 20 ms of its own clock.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

#[derive(Default, Clone, Copy)]
struct Net {
    loss: f64,
    dup: f64,
    /// Uniform extra delay 0..jitter_ms.
    jitter_ms: f64,
    /// Sender clock rate relative to the receiver's (1.01 = 1 % fast).
    sender_speed: f64,
    /// (start packet, packets): a network stall; the packets sent during it arrive
    /// together when it ends.
    burst: Option<(u64, u64)>,
    /// Swap every n-th pair.
    swap_every: u64,
}

#[derive(Default, Debug)]
struct Outcome {
    sent: u64,
    dropped: u64,
    dups: u64,
    played: Vec<u64>,
    max_depth: u32,
    conceal: u64,
    silence: u64,
    stats: JitterStats,
    targets: Vec<u32>,
}

fn run(net: Net, packets: u64, seed: u64) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = Instant::now();
    let speed = if net.sender_speed == 0.0 {
        1.0
    } else {
        net.sender_speed
    };
    // (arrival time ms, seq)
    let mut arrivals: Vec<(f64, u64)> = Vec::new();
    let mut out = Outcome {
        sent: packets,
        ..Default::default()
    };
    for seq in 0..packets {
        let send_ms = seq as f64 * 20.0 / speed;
        if rng.random::<f64>() < net.loss {
            out.dropped += 1;
            continue;
        }
        let mut at = send_ms + 30.0 + rng.random::<f64>() * net.jitter_ms;
        if net.swap_every > 0 && seq % net.swap_every == 0 {
            at += 25.0; // arrives after its successor
        }
        if let Some((start, len)) = net.burst {
            if seq >= start && seq < start + len {
                at = at.max((start + len) as f64 * 20.0 + 30.0);
            }
        }
        arrivals.push((at, seq));
        if rng.random::<f64>() < net.dup {
            out.dups += 1;
            arrivals.push((at + rng.random::<f64>() * 50.0, seq));
        }
    }
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, 20));
    let payload = [0u8; 160];
    let mut i = 0;
    let end_ms = packets as f64 * 20.0 / speed + 1000.0;
    let mut tick = 5.0; // receiver pops at 5, 25, 45 ... ms
    while tick < end_ms {
        while i < arrivals.len() && arrivals[i].0 <= tick {
            let (at, seq) = arrivals[i];
            let now = t0 + Duration::from_micros((at * 1000.0) as u64);
            let mut p = payload;
            p[..8].copy_from_slice(&seq.to_be_bytes());
            jb.insert(now, seq, (seq * 160) as u32, false, &p);
            i += 1;
        }
        let now = t0 + Duration::from_micros((tick * 1000.0) as u64);
        match jb.pop(now) {
            Playout::Packet {
                seq,
                payload,
                timestamp,
                ..
            } => {
                assert_eq!(&payload[..8], &seq.to_be_bytes());
                assert_eq!(timestamp, (seq * 160) as u32);
                out.played.push(seq);
            }
            Playout::Conceal => out.conceal += 1,
            Playout::Silence => out.silence += 1,
            Playout::Empty => {}
        }
        out.max_depth = out.max_depth.max(jb.stats().depth);
        out.targets.push(jb.stats().target_delay_ms);
        tick += 20.0;
    }
    out.stats = jb.stats();
    out
}

fn assert_in_order(played: &[u64]) {
    assert!(
        played.windows(2).all(|w| w[0] < w[1]),
        "playout out of order"
    );
}

#[test]
fn clean_path_starts_at_40ms_and_plays_everything() {
    let o = run(
        Net {
            jitter_ms: 2.0,
            ..Net::default()
        },
        500,
        1,
    );
    assert_eq!(o.played.len(), 500);
    assert_in_order(&o.played);
    assert!(
        o.targets.iter().all(|&t| t <= 40),
        "target rose on a clean path"
    );
    assert_eq!(
        o.stats.lost + o.stats.late + o.stats.duplicate + o.stats.discarded,
        0
    );
}

#[test]
fn random_loss_is_counted_and_concealed() {
    let o = run(
        Net {
            loss: 0.05,
            jitter_ms: 5.0,
            ..Net::default()
        },
        2000,
        2,
    );
    assert!(o.dropped > 50);
    assert_in_order(&o.played);
    // Every dropped packet is either counted lost or was the last ones (none here).
    assert_eq!(o.stats.lost, o.dropped);
    assert_eq!(o.played.len() as u64, o.sent - o.dropped);
    assert!(o.stats.concealed >= 1 && o.stats.concealed <= o.dropped);
    assert_eq!(o.conceal, o.stats.concealed);
}

#[test]
fn reordered_packets_are_played_in_order() {
    let o = run(
        Net {
            swap_every: 7,
            ..Net::default()
        },
        1000,
        3,
    );
    assert_eq!(o.played.len(), 1000);
    assert_in_order(&o.played);
    assert_eq!(o.stats.lost, 0);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let o = run(
        Net {
            dup: 0.2,
            jitter_ms: 10.0,
            ..Net::default()
        },
        1000,
        4,
    );
    assert!(o.dups > 100);
    assert_eq!(o.stats.duplicate, o.dups);
    assert_eq!(o.played.len(), 1000);
    assert_in_order(&o.played);
}

#[test]
fn jitter_raises_target_and_keeps_late_low() {
    let o = run(
        Net {
            jitter_ms: 80.0,
            ..Net::default()
        },
        3000,
        5,
    );
    assert!(
        o.stats.target_delay_ms >= 80,
        "target {}",
        o.stats.target_delay_ms
    );
    assert!(o.stats.target_delay_ms <= 400);
    let late = o.stats.late as f64 / 3000.0;
    assert!(late < 0.03, "late fraction {late}");
    assert!(
        o.stats.jitter_ms >= 10,
        "jitter estimate {}",
        o.stats.jitter_ms
    );
    assert_in_order(&o.played);
}

#[test]
fn burst_is_survived_and_recovered() {
    let o = run(
        Net {
            burst: Some((200, 10)),
            jitter_ms: 2.0,
            ..Net::default()
        },
        1500,
        6,
    );
    assert_in_order(&o.played);
    // A 200 ms stall: the buffer runs dry, conceals, waits, and loses nothing.
    assert_eq!(o.stats.lost, 0);
    assert_eq!(o.stats.late, 0);
    assert!(o.stats.underruns > 0 && o.stats.concealed > 0);
    // Afterwards it sheds the extra delay again by discarding a few packets.
    assert!(o.stats.discarded >= 1, "delay never recovered");
    assert_eq!(o.played.len() as u64, 1500 - o.stats.discarded);
    assert!(o.stats.depth <= 3, "final depth {}", o.stats.depth);
    assert!(*o.targets.last().unwrap() <= 60);
}

#[test]
fn late_packets_raise_the_target_once_per_event() {
    // Every 100th packet is 120 ms late: each event raises the target by one packet.
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, 20));
    let t0 = Instant::now();
    let mut late_seen = 0;
    for tick in 0..400u64 {
        let now = t0 + Duration::from_millis(tick * 20);
        if tick % 100 != 50 {
            jb.insert(now, tick, (tick * 160) as u32, false, &[0; 160]);
        }
        if tick % 100 == 56 {
            let seq = tick - 6;
            if jb.insert(now, seq, (seq * 160) as u32, false, &[0; 160]) == InsertOutcome::Late {
                late_seen += 1;
            }
        }
        let _ = jb.pop(now);
    }
    assert_eq!(late_seen, 4);
    assert_eq!(jb.stats().late, 4);
    assert!(
        jb.stats().target_delay_ms >= 80,
        "target {}",
        jb.stats().target_delay_ms
    );
}

#[test]
fn fast_sender_clock_drift_is_bounded() {
    let o = run(
        Net {
            sender_speed: 1.01,
            jitter_ms: 2.0,
            ..Net::default()
        },
        6000,
        7,
    );
    assert_in_order(&o.played);
    // 1 % of 6000 packets too many for our clock: ~60 discarded, depth stays bounded.
    assert!(
        (40..=80).contains(&o.stats.discarded),
        "discarded {}",
        o.stats.discarded
    );
    assert!(o.max_depth <= 5, "depth {}", o.max_depth);
    assert_eq!(o.stats.lost, 0);
}

#[test]
fn slow_sender_clock_drift_is_concealed() {
    let o = run(
        Net {
            sender_speed: 0.99,
            jitter_ms: 2.0,
            ..Net::default()
        },
        6000,
        8,
    );
    assert_in_order(&o.played);
    assert_eq!(o.played.len(), 6000);
    assert_eq!(o.stats.lost, 0);
    assert!(
        (40..=80).contains(&o.stats.underruns),
        "underruns {}",
        o.stats.underruns
    );
}

#[test]
fn oversized_and_far_ahead_packets() {
    let t = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, 20));
    assert_eq!(jb.insert(t, 0, 0, true, &[0; 600]), InsertOutcome::TooLarge);
    assert_eq!(jb.insert(t, 10, 0, true, &[1; 10]), InsertOutcome::Stored);
    assert_eq!(
        jb.insert(t, 10, 0, true, &[1; 10]),
        InsertOutcome::Duplicate
    );
    assert_eq!(
        jb.insert(t, 10_000, 0, false, &[2; 10]),
        InsertOutcome::Resynced
    );
    assert_eq!(jb.stats().too_large, 1);
    assert!(jb.stats().depth <= 32);
}

#[test]
fn reset_forgets_the_stream_but_keeps_its_storage_and_counters() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, 20));
    let storage = (jb.slots.as_ptr(), jb.data.as_ptr(), jb.data.len());
    for k in 0..4u64 {
        jb.insert(
            ms(20 * k),
            100 + k,
            (160 * k) as u32,
            false,
            &[k as u8; 160],
        );
    }
    let stored = jb.stats().stored;
    assert_eq!(stored, 4);
    jb.reset();
    // Same memory: a media core allocates nothing on a new SSRC.
    assert_eq!(
        (jb.slots.as_ptr(), jb.data.as_ptr(), jb.data.len()),
        storage
    );
    assert_eq!(jb.stats().stored, stored, "counters survive a reset");
    assert_eq!(jb.stats().depth, 0);
    // The old packets are gone: a new stream from another base starts afresh and
    // plays its own payload, after its own prebuffering.
    assert!(matches!(jb.pop(ms(100)), Playout::Empty));
    jb.insert(ms(100), 7000, 50_000, true, &[0xaa; 160]);
    jb.insert(ms(120), 7001, 50_160, false, &[0xbb; 160]);
    match jb.pop(ms(125)) {
        Playout::Packet { seq, payload, .. } => {
            assert_eq!(seq, 7000);
            assert_eq!(payload, &[0xaa; 160][..]);
        }
        other => panic!("expected the new stream's first packet, got {other:?}"),
    }
}

#[test]
fn prefetching_an_insert_reads_only_this_buffers_own_storage() {
    // Any sequence number, any capacity (rounded to a power of two, possibly past the
    // 16-bit sequence space), any payload size: a hint, never an out-of-bounds slice.
    for (capacity, max_payload) in [(4, 0), (32, 160), (32, 1275), (1 << 17, 1)] {
        let cfg = JitterConfig {
            capacity,
            max_payload,
            ..JitterConfig::new(8000, 20)
        };
        let mut jb = JitterBuffer::new(cfg);
        for seq in [0u16, 1, 31, 32, 65535] {
            jb.prefetch_insert(seq);
        }
        // The insert the hint was for, as usual.
        let payload = vec![0x55; max_payload];
        let out = jb.insert(Instant::now(), 65535, 0, false, &payload);
        assert_eq!(out, InsertOutcome::Stored, "capacity {capacity}");
    }
}
