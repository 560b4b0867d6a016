//! Two media sessions connected through a simulated network, in virtual time: audio,
//! DTMF, RTCP and the statistics end to end under loss, jitter, reordering and duplication.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use voxgate_engine::codec::CodecKind;
use voxgate_engine::session::{
    MediaSession, PacketKind, SessionConfig, SessionEvent, SessionStats,
};

const A_RTP: u16 = 40000;
const B_RTP: u16 = 50000;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[derive(Clone, Copy, Default)]
struct Netem {
    delay_ms: f64,
    jitter_ms: f64,
    loss: f64,
    dup: f64,
    reorder: f64,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at_us: u64,
    id: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

#[derive(Default, Debug)]
struct NetCounters {
    rtp_sent: [u64; 2],
    rtp_dropped: [u64; 2],
    rtp_duplicated: [u64; 2],
}

struct Peer {
    session: MediaSession,
    rtp: SocketAddr,
    rtcp: SocketAddr,
    events: Vec<(u64, SessionEvent)>,
    tone_phase: f64,
    tone_until_ms: u64,
    tone_hz: f64,
}

impl Peer {
    fn new(cfg: SessionConfig, port: u16, t0: Instant) -> Self {
        Self {
            session: MediaSession::new(cfg, t0).unwrap(),
            rtp: addr(port),
            rtcp: addr(port + 1),
            events: Vec::new(),
            tone_phase: 0.0,
            tone_until_ms: 0,
            tone_hz: 440.0,
        }
    }

    /// Keeps ~60 ms of a tone in the play queue until `tone_until_ms` (as a TTS stream
    /// would), so the tone ends close to `tone_until_ms`.
    fn feed(&mut self, now_ms: u64) {
        let rate = self.session.config().pcm_rate as usize;
        if now_ms >= self.tone_until_ms || self.session.queued_samples() > rate * 60 / 1000 {
            return;
        }
        let rate = rate as f64;
        let mut chunk = [0i16; 160];
        let phase0 = self.tone_phase;
        for s in chunk.iter_mut() {
            *s = (self.tone_phase.sin() * 8000.0) as i16;
            self.tone_phase += 2.0 * std::f64::consts::PI * self.tone_hz / rate;
        }
        let took = self.session.play(&chunk);
        // Rewind the phase for what was not accepted.
        self.tone_phase = phase0 + 2.0 * std::f64::consts::PI * self.tone_hz / rate * took as f64;
    }
}

struct Sim {
    t0: Instant,
    now_us: u64,
    peers: [Peer; 2],
    net: Netem,
    rng: StdRng,
    queue: BinaryHeap<Reverse<InFlight>>,
    next_id: u64,
    counters: NetCounters,
}

impl Sim {
    fn new(a: SessionConfig, b: SessionConfig, net: Netem, seed: u64) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now_us: 0,
            peers: [Peer::new(a, A_RTP, t0), Peer::new(b, B_RTP, t0)],
            net,
            rng: StdRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            next_id: 0,
            counters: NetCounters::default(),
        }
    }

    fn instant(&self, us: u64) -> Instant {
        self.t0 + Duration::from_micros(us)
    }

    fn send(&mut self, from_idx: usize, from: SocketAddr, to: SocketAddr, bytes: &[u8], rtp: bool) {
        if rtp {
            self.counters.rtp_sent[from_idx] += 1;
        }
        if self.rng.random::<f64>() < self.net.loss {
            if rtp {
                self.counters.rtp_dropped[from_idx] += 1;
            }
            return;
        }
        let copies = if self.rng.random::<f64>() < self.net.dup {
            2
        } else {
            1
        };
        if rtp && copies == 2 {
            self.counters.rtp_duplicated[from_idx] += 1;
        }
        for _ in 0..copies {
            let mut d = self.net.delay_ms + self.rng.random::<f64>() * self.net.jitter_ms;
            if self.rng.random::<f64>() < self.net.reorder {
                d += 30.0;
            }
            let at_us = self.now_us + (d * 1000.0) as u64;
            self.next_id += 1;
            self.queue.push(Reverse(InFlight {
                at_us,
                id: self.next_id,
                from,
                to,
                bytes: bytes.to_vec(),
            }));
        }
    }

    /// Runs until `until_ms`, calling `script(sim, now_ms)` every ms.
    fn run(&mut self, until_ms: u64, mut script: impl FnMut(&mut Sim, u64)) {
        let mut buf = [0u8; 1500];
        let mut last_ms = u64::MAX;
        let mut iterations = 0u64;
        while self.now_us < until_ms * 1000 {
            iterations += 1;
            assert!(iterations < 50_000_000, "simulation did not advance");
            let now_ms = self.now_us / 1000;
            if now_ms != last_ms {
                last_ms = now_ms;
                script(self, now_ms);
                for p in self.peers.iter_mut() {
                    p.feed(now_ms);
                }
            }
            let now = self.instant(self.now_us);
            // Deliver what is due.
            while self
                .queue
                .peek()
                .is_some_and(|Reverse(f)| f.at_us <= self.now_us)
            {
                let Some(Reverse(mut f)) = self.queue.pop() else {
                    break;
                };
                for p in self.peers.iter_mut() {
                    if f.to == p.rtp {
                        p.session.handle_rtp(now, f.from, &mut f.bytes);
                    } else if f.to == p.rtcp {
                        p.session.handle_rtcp(now, f.from, &mut f.bytes);
                    }
                }
            }
            for i in 0..2 {
                self.peers[i].session.handle_timeout(now);
                while let Some(t) = self.peers[i].session.poll_transmit(now, &mut buf) {
                    let (from, rtp) = match t.kind {
                        PacketKind::Rtp => (self.peers[i].rtp, true),
                        PacketKind::Rtcp => (self.peers[i].rtcp, false),
                    };
                    let bytes = buf[..t.len].to_vec();
                    self.send(i, from, t.dest, &bytes, rtp);
                }
                while let Some(e) = self.peers[i].session.poll_event() {
                    self.peers[i].events.push((now_ms, e));
                }
            }
            // Next instant with work: the earliest timeout or delivery, at least 1 µs on,
            // and never past the next ms boundary (the script runs every ms).
            let mut next = self
                .peers
                .iter()
                .map(|p| p.session.poll_timeout())
                .min()
                .unwrap_or(now);
            if let Some(Reverse(f)) = self.queue.peek() {
                next = next.min(self.instant(f.at_us));
            }
            let next_us = (next.saturating_duration_since(self.t0).as_micros() as u64)
                .max(self.now_us + 1)
                .min((now_ms + 1) * 1000);
            self.now_us = next_us;
        }
    }

    fn stats(&self, i: usize) -> SessionStats {
        self.peers[i].session.stats()
    }
}

fn cfg(ssrc: u32, remote: Option<u16>) -> SessionConfig {
    let mut c = SessionConfig::new(ssrc, CodecKind::Pcmu, 0);
    c.telephone_event_pt = Some(101);
    c.remote_rtp = remote.map(addr);
    c
}

/// Audio frames received by a peer: (ms, samples).
fn audio(p: &Peer) -> Vec<(u64, Vec<i16>)> {
    p.events
        .iter()
        .filter_map(|(t, e)| match e {
            SessionEvent::Audio(f) => Some((*t, f.pcm().to_vec())),
            _ => None,
        })
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Dominant frequency by zero crossings.
fn zero_cross_hz(x: &[i16], rate: f64) -> f64 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (x.len() as f64 / rate)
}

#[test]
fn clean_path_audio_end_to_end() {
    let mut sim = Sim::new(
        cfg(0xa, Some(B_RTP)),
        cfg(0xb, None),
        Netem {
            delay_ms: 10.0,
            jitter_ms: 1.0,
            ..Netem::default()
        },
        1,
    );
    sim.peers[0].tone_until_ms = 10_000;
    sim.run(12_000, |_, _| {});
    let b = &sim.peers[1];
    let frames = audio(b);
    // 10 s of tone at 20 ms = 500 frames of 160 samples, plus silence before/after.
    let loud: Vec<i16> = frames
        .iter()
        .filter(|(_, f)| rms(f) > 3000.0)
        .flat_map(|(_, f)| f.clone())
        .collect();
    assert!(
        (495..=505).contains(&(loud.len() / 160)),
        "loud frames {}",
        loud.len() / 160
    );
    let hz = zero_cross_hz(&loud, 8000.0);
    assert!((435.0..445.0).contains(&hz), "tone {hz} Hz");
    assert!(
        (rms(&loud) - 8000.0 / 2f64.sqrt()).abs() < 300.0,
        "level {}",
        rms(&loud)
    );
    let (sa, sb) = (sim.stats(0), sim.stats(1));
    // Both streams are continuous (codec silence): 600 packets in 12 s each way.
    assert!(
        (598..=601).contains(&sa.packets_out),
        "A sent {}",
        sa.packets_out
    );
    // Every RTP packet A sent reached B or is still on the way to B's RTP port.
    let to_b = sim.queue.iter().filter(|f| f.0.to.port() == B_RTP).count() as u64;
    assert_eq!(sb.packets_in + to_b, sa.packets_out);
    assert_eq!(sb.lost + sb.late + sb.duplicate, 0);
    // B learnt A's address from its first packet and sent back to it.
    assert!(b
        .events
        .iter()
        .any(|(_, e)| *e == SessionEvent::RemoteAddressLearned(addr(A_RTP))));
    assert!(sa.packets_in > 500);
    // RTCP flowed both ways and RTT ≈ 2 × 10 ms.
    assert!(
        sa.rtcp_in >= 2 && sb.rtcp_in >= 2,
        "rtcp {} {}",
        sa.rtcp_in,
        sb.rtcp_in
    );
    let rtt = sa.rtt.expect("A has an RTT");
    assert!(
        (Duration::from_millis(19)..Duration::from_millis(23)).contains(&rtt),
        "rtt {rtt:?}"
    );
    assert_eq!(sa.remote_lost, 0);
    assert!(sb.jitter_us < 2000, "jitter {} µs", sb.jitter_us);
}

#[test]
fn lossy_jittery_path_counts_match_the_network() {
    let net = Netem {
        delay_ms: 20.0,
        jitter_ms: 40.0,
        loss: 0.03,
        dup: 0.02,
        reorder: 0.02,
    };
    let mut sim = Sim::new(cfg(0xa, Some(B_RTP)), cfg(0xb, Some(A_RTP)), net, 7);
    sim.peers[0].tone_until_ms = 30_000;
    sim.run(30_000, |_, _| {});
    let sb = sim.stats(1);
    let sa = sim.stats(0);
    let c = &sim.counters;
    eprintln!("A {sa:?}\nB {sb:?}\nnet {c:?}");
    // Every RTP packet A sent is accounted for at B: received once, or lost, or late.
    assert!(c.rtp_dropped[0] > 20);
    let in_flight = 3; // the last few packets may still be in the network / buffer
    let played_or_buffered = sb.packets_in - sb.duplicate;
    assert!(played_or_buffered + c.rtp_dropped[0] >= c.rtp_sent[0] - in_flight);
    // Duplicates: each duplicated packet (that was not a loss) is seen twice.
    assert!(
        sb.duplicate <= c.rtp_duplicated[0] && sb.duplicate + 10 >= c.rtp_duplicated[0],
        "dup {} vs {}",
        sb.duplicate,
        c.rtp_duplicated[0]
    );
    // Losses seen by the jitter buffer: the network's drops (± packets that were late).
    let lost = sb.lost as i64;
    let dropped = c.rtp_dropped[0] as i64;
    assert!(
        (lost - dropped).abs() <= sb.late as i64 + 3,
        "lost {lost} dropped {dropped} late {}",
        sb.late
    );
    assert!(sb.late * 100 < c.rtp_sent[0], "late {} too many", sb.late);
    assert!(sb.concealed > 0);
    // The jitter buffer grew for 40 ms of jitter; A.8 jitter reported is in range.
    assert!(sb.jitter_buffer_ms >= 60, "target {}", sb.jitter_buffer_ms);
    assert!(
        (5_000..20_000).contains(&sb.jitter_us),
        "jitter {} µs",
        sb.jitter_us
    );
    // A learns B's loss figure from RTCP.
    assert!(sa.remote_lost > 0, "remote_lost {}", sa.remote_lost);
    // The tone still gets through.
    let loud: Vec<i16> = audio(&sim.peers[1])
        .into_iter()
        .filter(|(_, f)| rms(f) > 3000.0)
        .flat_map(|(_, f)| f)
        .collect();
    assert!(loud.len() / 160 > 1300, "{} loud frames", loud.len() / 160);
}

#[test]
fn dtmf_digits_arrive_once_over_a_duplicating_network() {
    let net = Netem {
        delay_ms: 15.0,
        jitter_ms: 5.0,
        dup: 0.3,
        ..Netem::default()
    };
    let mut sim = Sim::new(cfg(0xa, Some(B_RTP)), cfg(0xb, Some(A_RTP)), net, 3);
    sim.run(3_000, |sim, ms| {
        let digit = match ms {
            500 => '1',
            1000 => '#',
            1500 => '9',
            _ => return,
        };
        sim.peers[0]
            .session
            .send_dtmf(digit, Duration::from_millis(120))
            .unwrap();
    });
    let digits: Vec<(char, Duration)> = sim.peers[1]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Dtmf { digit, duration } => Some((*digit, *duration)),
            _ => None,
        })
        .collect();
    assert_eq!(digits.iter().map(|d| d.0).collect::<String>(), "1#9");
    assert!(
        digits.iter().all(|d| d.1 == Duration::from_millis(120)),
        "{digits:?}"
    );
    // The digits' slots did not count as lost audio.
    assert_eq!(sim.stats(1).lost, 0);
}

#[test]
fn echo_mode_returns_the_callers_audio_at_16khz() {
    let mut a = cfg(0xa, Some(B_RTP));
    a.pcm_rate = 16000;
    let mut b = cfg(0xb, None);
    b.echo = true;
    let mut sim = Sim::new(
        a,
        b,
        Netem {
            delay_ms: 5.0,
            jitter_ms: 2.0,
            ..Netem::default()
        },
        5,
    );
    sim.peers[0].tone_until_ms = 3_000;
    sim.peers[0].tone_hz = 600.0;
    sim.run(4_000, |_, _| {});
    assert!(
        audio(&sim.peers[1]).is_empty(),
        "echo mode emits no audio events"
    );
    let back = audio(&sim.peers[0]);
    assert!(back.iter().all(|(_, f)| f.len() == 320));
    let loud: Vec<i16> = back
        .iter()
        .filter(|(_, f)| rms(f) > 3000.0)
        .flat_map(|(_, f)| f.clone())
        .collect();
    assert!(
        loud.len() / 320 > 130,
        "{} loud frames came back",
        loud.len() / 320
    );
    let hz = zero_cross_hz(&loud, 16000.0);
    assert!((590.0..610.0).contains(&hz), "echoed tone {hz} Hz");
}

#[test]
fn speech_events_playback_idle_and_timeout() {
    let mut b = cfg(0xb, None);
    b.no_rtp_timeout = Duration::from_secs(2);
    let mut sim = Sim::new(
        cfg(0xa, Some(B_RTP)),
        b,
        Netem {
            delay_ms: 10.0,
            ..Netem::default()
        },
        9,
    );
    sim.peers[0].tone_until_ms = 2_000;
    let mut stopped = false;
    sim.run(8_000, |sim, ms| {
        // A goes away at 4 s (its session stops being driven: simulate by muting the network).
        if ms == 4_000 && !stopped {
            stopped = true;
            sim.net.loss = 1.0;
        }
    });
    let ev: Vec<(u64, SessionEvent)> = sim.peers[1]
        .events
        .iter()
        .filter(|(_, e)| !matches!(e, SessionEvent::Audio(_)))
        .cloned()
        .collect();
    let at = |want: SessionEvent| ev.iter().find(|(_, e)| *e == want).map(|(t, _)| *t);
    let start = at(SessionEvent::SpeechStart).expect("speech start");
    let end = at(SessionEvent::SpeechEnd).expect("speech end");
    let timeout = at(SessionEvent::RtpTimeout).expect("rtp timeout");
    assert!((50..300).contains(&start), "speech start at {start} ms");
    assert!((2_000..3_000).contains(&end), "speech end at {end} ms");
    assert!((5_900..6_200).contains(&timeout), "timeout at {timeout} ms");
    assert_eq!(
        ev.iter()
            .filter(|(_, e)| *e == SessionEvent::RtpTimeout)
            .count(),
        1
    );
    // A's tone queue drained once.
    assert_eq!(
        sim.peers[0]
            .events
            .iter()
            .filter(|(_, e)| *e == SessionEvent::PlaybackIdle)
            .count(),
        1
    );
}

#[test]
fn stop_playback_silences_the_next_packet() {
    let mut sim = Sim::new(
        cfg(0xa, Some(B_RTP)),
        cfg(0xb, Some(A_RTP)),
        Netem {
            delay_ms: 10.0,
            ..Netem::default()
        },
        11,
    );
    sim.peers[0].tone_until_ms = 1_000;
    sim.run(2_000, |sim, ms| {
        if ms == 500 {
            sim.peers[0].tone_until_ms = 0;
            sim.peers[0].session.stop_playback();
        }
    });
    let frames = audio(&sim.peers[1]);
    let last_loud = frames
        .iter()
        .filter(|(_, f)| rms(f) > 3000.0)
        .map(|(t, _)| *t)
        .max()
        .unwrap();
    // Stopped at 500 ms: at most one packet more, plus 10 ms network and ≤ 60 ms buffer.
    assert!(
        (480..=600).contains(&last_loud),
        "last loud frame at {last_loud} ms"
    );
}
