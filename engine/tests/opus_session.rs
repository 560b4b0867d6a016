//! Two Opus media sessions in virtual time: in-band FEC and PLC under 5 % and 20 %
//! loss, DTX silence not counted as loss, Opus ↔ G.711 transcoding through PCM.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use voxgate_engine::codec::opus::has_fec;
use voxgate_engine::codec::CodecKind;
use voxgate_engine::session::{MediaSession, PacketKind, SessionConfig, SessionEvent};

const A_RTP: u16 = 40_000;
const B_RTP: u16 = 40_002;

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn voice(rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let s = (2.0 * std::f64::consts::PI * 220.0 * t).sin() * 0.6
                + (2.0 * std::f64::consts::PI * 660.0 * t).sin() * 0.3;
            (s * env * 9000.0) as i16
        })
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

struct Run {
    received: Vec<i16>,
    /// Per packet A sent: (dropped, payload carries Opus in-band FEC).
    sent: Vec<(bool, bool)>,
    a: voxgate_engine::session::SessionStats,
    b: voxgate_engine::session::SessionStats,
}

/// A sends `pcm` (at `rate`) to B for `ms`, B plays out; packet `i` of A's RTP is
/// dropped when `drop(i)`. 10 ms network delay, 5 ms steps, virtual clock.
fn run(
    codec_a: CodecKind,
    codec_b: CodecKind,
    rate: u32,
    pcm: &[i16],
    ms: u64,
    tweak: impl Fn(&mut SessionConfig),
    drop: impl Fn(usize) -> bool,
) -> Run {
    let t0 = Instant::now();
    let pt = |c: CodecKind| c.static_payload_type().unwrap_or(111);
    let mut ca = SessionConfig::new(0xa, codec_a, pt(codec_a));
    ca.remote_rtp = Some(addr(B_RTP));
    ca.pcm_rate = rate;
    tweak(&mut ca);
    let mut cb = SessionConfig::new(0xb, codec_b, pt(codec_b));
    cb.pcm_rate = rate;
    tweak(&mut cb);
    let mut a = MediaSession::new(ca, t0).unwrap();
    let mut b = MediaSession::new(cb, t0).unwrap();
    let mut fed = 0usize;
    let mut in_flight: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut received = Vec::new();
    let mut buf = [0u8; 1500];
    let mut sent = 0usize;
    let mut sent_log = Vec::new();
    for step in 0..ms / 5 {
        let t = step * 5;
        let now = t0 + Duration::from_millis(t);
        // Keep A's play queue (1 s) topped up.
        if a.queued_samples() < rate as usize / 4 && fed < pcm.len() {
            fed += a.play(&pcm[fed..(fed + rate as usize / 2).min(pcm.len())]);
        }
        a.handle_timeout(now);
        while let Some(tx) = a.poll_transmit(now, &mut buf) {
            if tx.kind == PacketKind::Rtp {
                let fec = codec_a == CodecKind::Opus && has_fec(&buf[12..tx.len]);
                sent_log.push((drop(sent), fec));
                if !drop(sent) {
                    in_flight.push((t + 10, buf[..tx.len].to_vec()));
                }
                sent += 1;
            }
        }
        // Delivered in send order (constant delay).
        let due = in_flight.iter().take_while(|(at, _)| *at <= t).count();
        for (_, mut p) in in_flight.drain(..due) {
            b.handle_rtp(now, addr(A_RTP), &mut p);
        }
        b.handle_timeout(now);
        while b.poll_transmit(now, &mut buf).is_some() {}
        while let Some(ev) = b.poll_event() {
            if let SessionEvent::Audio(f) = ev {
                received.extend_from_slice(f.pcm());
            }
        }
    }
    Run {
        received,
        sent: sent_log,
        a: a.stats(),
        b: b.stats(),
    }
}

/// Best normalised cross-correlation over lags up to `max_lag`.
fn correlation(a: &[i16], b: &[i16], max_lag: usize) -> f64 {
    let mut best = f64::MIN;
    for lag in 0..max_lag.min(b.len()) {
        let n = a.len().min(b.len() - lag);
        let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
        for i in 0..n {
            let (x, y) = (f64::from(a[i]), f64::from(b[i + lag]));
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        best = best.max(xy / (xx * yy).sqrt().max(1.0));
    }
    best
}

/// Deterministic pseudo-random loss of about `percent` %, never the first packets.
fn lossy(percent: u64) -> impl Fn(usize) -> bool {
    move |i| {
        let x = (i as u64 + 7)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        i > 3 && (x >> 33) % 100 < percent
    }
}

#[test]
fn clean_opus_call_carries_the_voice() {
    let rate = 16000;
    let pcm = voice(rate, rate as usize * 3);
    let r = run(
        CodecKind::Opus,
        CodecKind::Opus,
        rate,
        &pcm,
        4000,
        |_| {},
        |_| false,
    );
    assert_eq!(r.b.lost + r.b.concealed, 0, "{:?}", r.b);
    assert!((195..=201).contains(&r.a.packets_out), "{:?}", r.a);
    // Find where the voice starts in the output (jitter-buffer delay + codec delay).
    let start = r.received.iter().position(|&s| s.abs() > 500).unwrap();
    let out = &r.received[start.saturating_sub(400)..];
    let c = correlation(&pcm[..rate as usize * 2], out, 800);
    assert!(c > 0.9, "correlation {c:.3}");
}

#[test]
fn fec_and_plc_under_5_and_20_percent_loss() {
    let rate = 16000;
    let pcm = voice(rate, rate as usize * 8);
    for percent in [5, 20] {
        let r = run(
            CodecKind::Opus,
            CodecKind::Opus,
            rate,
            &pcm,
            9000,
            |c| c.opus.expected_loss_percent = 20,
            lossy(percent),
        );
        let lost = r.b.lost;
        let expect = 400 * percent / 100;
        assert!(
            lost >= expect / 2 && lost <= expect * 2,
            "{percent}%: lost {lost}, {:?}",
            r.b
        );
        // Every loss whose next packet arrived with in-band FEC (libopus adds it where
        // its VAD sees activity) is rebuilt from it, also the last of a run; the rest
        // get PLC (first of a run) or silence (the jitter buffer's policy).
        let fec_usable = r
            .sent
            .windows(2)
            .filter(|w| w[0].0 && !w[1].0 && w[1].1)
            .count() as u64;
        assert_eq!(r.b.fec_recovered, fec_usable, "{percent}%: {:?}", r.b);
        assert!(r.b.fec_recovered <= r.b.lost);
        // How many packets carry LBRR is libopus' choice (its VAD on this synthetic
        // signal); some do.
        assert!(
            r.b.fec_recovered > 0,
            "{percent}%: {} of {} losses rebuilt by FEC {:?}",
            r.b.fec_recovered,
            r.b.lost,
            r.b
        );
        // All packet times are played: no gap, no stretch.
        let start = r.received.iter().position(|&s| s.abs() > 500).unwrap();
        let voiced = &r.received[start..start + rate as usize * 7];
        assert!(rms(voiced) > 2000.0, "{percent}%: level {}", rms(voiced));
        let c = correlation(
            &pcm[..rate as usize * 7],
            &r.received[start.saturating_sub(400)..],
            800,
        );
        let floor = if percent == 5 { 0.85 } else { 0.6 };
        assert!(c > floor, "{percent}%: correlation {c:.3}");
    }
}

#[test]
fn plc_without_fec() {
    let rate = 8000;
    let pcm = voice(rate, rate as usize * 8);
    let r = run(
        CodecKind::Opus,
        CodecKind::Opus,
        rate,
        &pcm,
        9000,
        |c| c.opus.inband_fec = false,
        lossy(5),
    );
    assert!(r.b.lost > 5, "{:?}", r.b);
    assert_eq!(r.b.fec_recovered, 0);
    assert!(r.b.concealed > 5);
    let start = r.received.iter().position(|&s| s.abs() > 500).unwrap();
    let c = correlation(
        &pcm[..rate as usize * 7],
        &r.received[start.saturating_sub(200)..],
        400,
    );
    assert!(c > 0.8, "correlation {c:.3}");
}

#[test]
fn dtx_silence_is_not_loss() {
    let rate = 16000;
    // 1 s voice, 3 s silence, 1 s voice.
    let mut pcm = voice(rate, rate as usize);
    pcm.extend(std::iter::repeat_n(0, rate as usize * 3));
    pcm.extend(voice(rate, rate as usize));
    let r = run(
        CodecKind::Opus,
        CodecKind::Opus,
        rate,
        &pcm,
        6000,
        |c| c.opus.dtx = true,
        |_| false,
    );
    // Most of the silence (and the time after the queue ran empty) is not sent.
    assert!(r.a.dtx_suppressed > 100, "{:?}", r.a);
    assert!(r.a.packets_out < 200, "{:?}", r.a);
    assert_eq!(r.b.lost, 0, "DTX gaps are no loss: {:?}", r.b);
    // The second talkspurt arrives and plays.
    let tail = &r.received[r.received.len() - rate as usize * 2..];
    assert!(rms(tail) > 1000.0, "second talkspurt level {}", rms(tail));
}

#[test]
fn opus_to_g711_transcoding_through_pcm() {
    // Leg 1: Opus caller → session (decode to 8 kHz PCM); leg 2: that PCM → G.711 out.
    let rate = 8000;
    let pcm = voice(rate, rate as usize * 3);
    let leg1 = run(
        CodecKind::Opus,
        CodecKind::Opus,
        rate,
        &pcm,
        4000,
        |_| {},
        |_| false,
    );
    let start = leg1.received.iter().position(|&s| s.abs() > 500).unwrap();
    let mid = leg1.received[start..].to_vec();
    let leg2 = run(
        CodecKind::Pcmu,
        CodecKind::Pcmu,
        rate,
        &mid,
        4000,
        |_| {},
        |_| false,
    );
    let c = correlation(&pcm[..rate as usize * 2], &leg2.received, 4000);
    assert!(c > 0.85, "Opus→PCMU correlation {c:.3}");
    // And back: G.711 → PCM → Opus.
    let leg3 = run(
        CodecKind::Pcma,
        CodecKind::Pcma,
        rate,
        &pcm,
        4000,
        |_| {},
        |_| false,
    );
    let start = leg3.received.iter().position(|&s| s.abs() > 500).unwrap();
    let leg4 = run(
        CodecKind::Opus,
        CodecKind::Opus,
        rate,
        &leg3.received[start..],
        4000,
        |_| {},
        |_| false,
    );
    let c = correlation(&pcm[..rate as usize * 2], &leg4.received, 4000);
    assert!(c > 0.85, "PCMA→Opus correlation {c:.3}");
}
