//! Opus codec tests: round trips measured by correlation, frame sizes, FEC vs PLC.

use super::*;

/// A speech-like test signal: two formant-ish tones with a 4 Hz syllable envelope.
pub(crate) fn voice(rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let s = (2.0 * std::f64::consts::PI * 220.0 * t).sin() * 0.6
                + (2.0 * std::f64::consts::PI * 660.0 * t).sin() * 0.3
                + (2.0 * std::f64::consts::PI * 1250.0 * t).sin() * 0.1;
            (s * env * 9000.0) as i16
        })
        .collect()
}

/// Best normalised cross-correlation of `b` against `a` over lags 0..max_lag (codec
/// delay), skipping the first `skip` samples of `a`.
pub(crate) fn best_correlation(a: &[i16], b: &[i16], skip: usize, max_lag: usize) -> (f64, usize) {
    let mut best = (f64::MIN, 0);
    for lag in 0..max_lag {
        let n = a.len().min(b.len().saturating_sub(lag));
        if n <= skip {
            break;
        }
        let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
        for i in skip..n {
            let x = f64::from(a[i]);
            let y = f64::from(b[i + lag]);
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        let c = xy / (xx.sqrt() * yy.sqrt()).max(1.0);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

fn round_trip(rate: u32, frame_ms: u32) -> (f64, usize) {
    let frame = (rate * frame_ms / 1000) as usize;
    let pcm = voice(rate, frame * (1000 / frame_ms as usize));
    let mut enc = OpusEncoder::new(OpusParams::new(rate)).unwrap();
    let mut dec = OpusDecoder::new(rate).unwrap();
    let mut out = Vec::new();
    let mut payload = [0u8; 1275];
    let mut pcm_out = vec![0i16; crate::codec::MAX_FRAME_SAMPLES];
    for chunk in pcm.chunks(frame) {
        let n = enc.encode(chunk, &mut payload).unwrap();
        assert!(n > 2 && n < 400, "{n} bytes");
        assert_eq!(dec.packet_samples(&payload[..n]).unwrap(), frame);
        let m = dec.decode(&payload[..n], &mut pcm_out).unwrap();
        assert_eq!(m, frame);
        out.extend_from_slice(&pcm_out[..m]);
    }
    best_correlation(&pcm, &out, frame * 5, rate as usize / 50)
}

#[test]
fn round_trip_at_8_16_48_khz() {
    for rate in [8000, 16000, 48000] {
        let (c, lag) = round_trip(rate, 20);
        assert!(c > 0.9, "{rate} Hz: correlation {c:.3} at lag {lag}");
        // The codec delay is a few ms (lookahead), not more.
        assert!(lag < rate as usize / 100, "{rate} Hz: lag {lag}");
    }
}

#[test]
fn every_frame_size_decodes() {
    for ms in [10, 20, 40, 60] {
        let (c, _) = round_trip(16000, ms);
        assert!(c > 0.85, "{ms} ms: correlation {c:.3}");
    }
    // A 48 kHz-encoded 60 ms packet decodes at 8 kHz to 480 samples.
    let mut enc = OpusEncoder::new(OpusParams::new(48000)).unwrap();
    let mut p = [0u8; 1275];
    let n = enc.encode(&voice(48000, 2880), &mut p).unwrap();
    let mut dec = OpusDecoder::new(8000).unwrap();
    let mut out = [0i16; 960];
    assert_eq!(dec.decode(&p[..n], &mut out).unwrap(), 480);
    assert!(matches!(
        dec.decode(&p[..n], &mut out[..100]),
        Err(CodecError::BufferTooSmall { need: 480, .. })
    ));
    // 30 ms is no Opus frame size.
    assert!(enc.encode(&voice(48000, 1440), &mut p).is_err());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut dec = OpusDecoder::new(16000).unwrap();
    let mut out = [0i16; 5760];
    assert_eq!(dec.decode(&[], &mut out), Err(CodecError::CorruptPayload));
    // Code 3 with a frame count of 0 is invalid (RFC 6716 §3.2.5).
    assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
    assert!(dec.packet_samples(&[0x03]).is_err());
    assert!(OpusDecoder::new(44100).is_err());
    fuzz_decode(&[0xff; 40]);
    fuzz_decode(&[0x0b, 0xc0]);
}

/// Decodes `pcm` through a lossy channel (`lost(i)` drops packet i); `fec` chooses FEC
/// recovery from the next packet, else PLC. Returns (output, frames recovered by FEC).
fn lossy(pcm: &[i16], rate: u32, lost: &dyn Fn(usize) -> bool, fec: bool) -> (Vec<i16>, usize) {
    let frame = (rate / 50) as usize;
    let mut params = OpusParams::new(rate);
    params.expected_loss_percent = 20;
    params.bitrate = Some(24000);
    let mut enc = OpusEncoder::new(params).unwrap();
    let mut dec = OpusDecoder::new(rate).unwrap();
    let packets: Vec<Vec<u8>> = pcm
        .chunks(frame)
        .map(|c| {
            let mut p = vec![0u8; 1275];
            let n = enc.encode(c, &mut p).unwrap();
            p.truncate(n);
            p
        })
        .collect();
    let mut out = Vec::new();
    let mut buf = vec![0i16; frame];
    let mut recovered = 0;
    for (i, p) in packets.iter().enumerate() {
        let (n, used_fec) = if lost(i) {
            let next = packets.get(i + 1).filter(|_| fec && !lost(i + 1));
            dec.recover(next.map(|v| v.as_slice()), 0, &mut buf)
                .unwrap()
        } else {
            (dec.decode(p, &mut buf).unwrap(), false)
        };
        recovered += usize::from(used_fec);
        out.extend_from_slice(&buf[..n]);
    }
    (out, recovered)
}

fn snr_db(a: &[i16], b: &[i16], lag: usize) -> f64 {
    let (mut sig, mut err) = (0f64, 0f64);
    for i in 0..a.len().min(b.len().saturating_sub(lag)) {
        let x = f64::from(a[i]);
        sig += x * x;
        let d = x - f64::from(b[i + lag]);
        err += d * d;
    }
    10.0 * (sig / err.max(1.0)).log10()
}

/// SNR over the lost frames only.
fn lost_frames_snr(a: &[i16], b: &[i16], lag: usize, lost: &dyn Fn(usize) -> bool) -> f64 {
    let (mut sig, mut err) = (0f64, 0f64);
    for i in 0..a.len().min(b.len().saturating_sub(lag)) {
        if !lost(i / 320) {
            continue;
        }
        let x = f64::from(a[i]);
        sig += x * x;
        let d = x - f64::from(b[i + lag]);
        err += d * d;
    }
    10.0 * (sig / err.max(1.0)).log10()
}

#[test]
fn fec_beats_plc_at_5_and_20_percent_loss() {
    let rate = 16000;
    let pcm = voice(rate, rate as usize * 4);
    let (_, lag) = best_correlation(&pcm, &lossy(&pcm, rate, &|_| false, true).0, 1600, 320);
    let clean = snr_db(&pcm, &lossy(&pcm, rate, &|_| false, true).0, lag);
    for percent in [5u64, 20] {
        // Deterministic pseudo-random loss (LCG), ~percent % of 200 packets, never the first.
        let lost = move |i: usize| {
            let x = (i as u64 + 1)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            i > 0 && (x >> 33) % 100 < percent
        };
        let drops = (0..200).filter(|&i| lost(i)).count();
        assert!(
            drops >= (percent as usize) * 2 - 4,
            "{percent}%: {drops} drops"
        );
        let (with_fec, recovered) = lossy(&pcm, rate, &lost, true);
        let (plc_only, none) = lossy(&pcm, rate, &lost, false);
        assert_eq!(none, 0);
        assert!(
            recovered * 2 >= drops,
            "{percent}%: {recovered}/{drops} recovered by FEC"
        );
        let s_fec = snr_db(&pcm, &with_fec, lag);
        let s_plc = snr_db(&pcm, &plc_only, lag);
        let lf = lost_frames_snr(&pcm, &with_fec, lag, &lost);
        let lp = lost_frames_snr(&pcm, &plc_only, lag, &lost);

        // Over the lost frames, the FEC copy is clearly closer to what was sent than PLC's
        // extrapolation; overall the stream is better too.
        assert!(
            lf > lp + 1.0,
            "{percent}%: lost frames FEC {lf:.1} dB vs PLC {lp:.1} dB"
        );
        assert!(
            s_fec > s_plc,
            "{percent}%: FEC {s_fec:.1} dB vs PLC {s_plc:.1} dB"
        );
        assert!(
            s_fec < clean + 0.1,
            "{percent}%: FEC {s_fec:.1} dB vs clean {clean:.1} dB"
        );
        let (c, _) = best_correlation(&pcm, &with_fec, 1600, 320);
        assert!(c > 0.8, "{percent}%: correlation {c:.3} with FEC");
    }
}

#[test]
fn has_fec_follows_the_lbrr_flag() {
    let rate = 16000;
    let pcm = voice(rate, 320 * 10);
    let mut with = OpusParams::new(rate);
    with.expected_loss_percent = 20;
    with.bitrate = Some(24000);
    let without = OpusParams {
        inband_fec: false,
        ..with
    };
    let count = |p: OpusParams| {
        let mut enc = OpusEncoder::new(p).unwrap();
        let mut buf = [0u8; 1275];
        pcm.chunks(320)
            .filter(|c| {
                let n = enc.encode(c, &mut buf).unwrap();
                has_fec(&buf[..n])
            })
            .count()
    };
    assert!(count(with) >= 5, "FEC packets with FEC on");
    assert_eq!(count(without), 0);
    assert!(!has_fec(&[]));
    assert!(!has_fec(&[0xf8, 0xff])); // CELT-only config 31
}

#[test]
fn dtx_sends_tiny_frames_in_silence() {
    let mut p = OpusParams::new(16000);
    p.dtx = true;
    let mut enc = OpusEncoder::new(p).unwrap();
    let mut buf = [0u8; 1275];
    let silence = [0i16; 320];
    let sizes: Vec<usize> = (0..50)
        .map(|_| enc.encode(&silence, &mut buf).unwrap())
        .collect();
    let tiny = sizes.iter().filter(|&&n| n <= DTX_MAX_PAYLOAD).count();
    assert!(tiny >= 30, "{sizes:?}");
    p.dtx = false;
    let mut enc = OpusEncoder::new(p).unwrap();
    let sizes: Vec<usize> = (0..50)
        .map(|_| enc.encode(&silence, &mut buf).unwrap())
        .collect();
    assert!(sizes.iter().all(|&n| n > DTX_MAX_PAYLOAD), "{sizes:?}");
}

#[test]
fn fuzz_entry_survives_seeds_and_random_bytes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/opus_decode");
    let mut seeds = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        fuzz_decode(&std::fs::read(e.unwrap().path()).unwrap());
        seeds += 1;
    }
    assert!(seeds >= 10);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = [0u8; 300];
    for i in 0..3000 {
        let len = i % buf.len();
        for b in &mut buf[..len] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        fuzz_decode(&buf[..len]);
    }
}
