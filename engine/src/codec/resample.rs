//! Polyphase FIR resampler between 8, 16 and 48 kHz (any ratio of those).
//!
//! The prototype is a Blackman-windowed sinc low-pass at 90 % of the lower Nyquist
//! frequency, split into L phases of [`TAPS`] taps; each output sample costs [`TAPS`]
//! multiply-adds. Streaming: a history of `TAPS - 1` input samples is carried between
//! calls, so frames of any length can be fed. All buffers are allocated in `new`; the
//! per-frame path does not allocate. See docs/DECISIONS.md for the comparison with rubato.

use super::CodecError;

/// Taps per polyphase branch.
pub const TAPS: usize = 16;

/// Streaming sample-rate converter for mono i16 PCM.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    up: usize,
    down: usize,
    coeffs: Vec<f32>,
    work: Vec<f32>,
    /// Newest input sample (index into `work`) the next output uses.
    base: usize,
    /// Polyphase branch of the next output (0..up).
    phase: usize,
    max_in: usize,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz (each one of 8000, 16000, 48000) accepting
    /// up to `max_in` samples per call.
    pub fn new(from: u32, to: u32, max_in: usize) -> Result<Self, CodecError> {
        let ok = |r| matches!(r, 8000 | 16000 | 48000);
        if !ok(from) || !ok(to) {
            return Err(CodecError::UnsupportedRate { from, to });
        }
        let g = gcd(from, to);
        let up = (to / g) as usize;
        let down = (from / g) as usize;
        let len = up * TAPS;
        let fc = 0.5 / up.max(down) as f64 * 0.9; // cycles per upsampled sample
        let centre = (len - 1) as f64 / 2.0;
        let mut proto = vec![0f64; len];
        for (i, h) in proto.iter_mut().enumerate() {
            let t = i as f64 - centre;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
            };
            let w = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (len - 1) as f64).cos()
                + 0.08 * (4.0 * std::f64::consts::PI * i as f64 / (len - 1) as f64).cos();
            *h = sinc * w;
        }
        let sum: f64 = proto.iter().sum();
        // Phase-major, each phase reversed so the dot product runs forward over the
        // input: coeffs[phase * TAPS + (TAPS - 1 - j)] = h[phase + j * up], gain `up`.
        let mut coeffs = vec![0f32; len];
        for phase in 0..up {
            for j in 0..TAPS {
                coeffs[phase * TAPS + (TAPS - 1 - j)] =
                    (proto[phase + j * up] * up as f64 / sum) as f32;
            }
        }
        Ok(Self {
            from,
            to,
            up,
            down,
            coeffs,
            work: vec![0f32; TAPS - 1 + max_in],
            base: TAPS - 1,
            phase: 0,
            max_in,
        })
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }
    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Largest output one call with `input_len` samples can produce.
    pub fn max_output(&self, input_len: usize) -> usize {
        (input_len * self.up).div_ceil(self.down) + 1
    }

    /// Converts `input` (at most `max_in` samples) into `out`; returns samples written.
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) -> Result<usize, CodecError> {
        if input.len() > self.max_in {
            return Err(CodecError::BufferTooSmall {
                need: input.len(),
                have: self.max_in,
            });
        }
        let need = self.max_output(input.len());
        if out.len() < need {
            return Err(CodecError::BufferTooSmall {
                need,
                have: out.len(),
            });
        }
        let hist = TAPS - 1;
        for (w, &s) in self.work[hist..hist + input.len()].iter_mut().zip(input) {
            *w = f32::from(s);
        }
        let avail = hist + input.len();
        let mut n = 0;
        // Each output advances by down/up input samples: no division in the loop.
        let (step, frac) = (self.down / self.up, self.down % self.up);
        let (mut base, mut phase) = (self.base, self.phase);
        while base < avail {
            let Ok(h) = <&[f32; TAPS]>::try_from(&self.coeffs[phase * TAPS..phase * TAPS + TAPS])
            else {
                break;
            };
            let Ok(x) = <&[f32; TAPS]>::try_from(&self.work[base + 1 - TAPS..=base]) else {
                break;
            };
            // Eight independent lanes so the compiler can vectorise the dot product.
            let mut lanes = [0f32; 8];
            for (hc, xc) in h.chunks_exact(8).zip(x.chunks_exact(8)) {
                for i in 0..8 {
                    lanes[i] += hc[i] * xc[i];
                }
            }
            let q = [
                lanes[0] + lanes[4],
                lanes[1] + lanes[5],
                lanes[2] + lanes[6],
                lanes[3] + lanes[7],
            ];
            let acc = (q[0] + q[2]) + (q[1] + q[3]);
            // Round half away from zero; `as` saturates to the i16 range.
            out[n] = (acc + 0.5f32.copysign(acc)) as i16;
            n += 1;
            base += step;
            phase += frac;
            if phase >= self.up {
                phase -= self.up;
                base += 1;
            }
        }
        self.base = base;
        self.phase = phase;
        self.work.copy_within(input.len()..avail, 0);
        self.base -= input.len();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                ((i as f32 * hz * 2.0 * std::f32::consts::PI / rate as f32).sin() * 10000.0) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn frame_sizes_are_exact() {
        for (from, to, inn, outn) in [
            (8000, 16000, 160, 320),
            (16000, 8000, 320, 160),
            (8000, 48000, 160, 960),
            (48000, 8000, 960, 160),
            (16000, 48000, 320, 960),
            (48000, 16000, 960, 320),
        ] {
            let mut r = Resampler::new(from, to, inn).unwrap();
            let mut out = vec![0i16; r.max_output(inn)];
            let input = tone(from, 400.0, inn);
            let mut total = 0;
            for _ in 0..10 {
                total += r.process(&input, &mut out).unwrap();
            }
            assert_eq!(total, outn * 10, "{from}->{to}");
        }
    }

    #[test]
    fn passes_speech_band_and_keeps_level() {
        let mut r = Resampler::new(8000, 16000, 160).unwrap();
        let input = tone(8000, 1000.0, 1600);
        let mut out = vec![0i16; 3300];
        let mut got = Vec::new();
        for chunk in input.chunks(160) {
            let n = r.process(chunk, &mut out).unwrap();
            got.extend_from_slice(&out[..n]);
        }
        let ratio = rms(&got[100..]) / rms(&input[50..]);
        assert!((0.95..1.05).contains(&ratio), "gain {ratio}");
        // The output is the same tone at the new rate: compare with an ideal 1 kHz at 16 kHz.
        let delay = (TAPS / 2) as f64 * 2.0 - 0.5; // group delay in output samples
        let mut err = 0f64;
        for (i, &s) in got.iter().enumerate().skip(200) {
            let ideal = ((i as f64 - delay) * 1000.0 * 2.0 * std::f64::consts::PI / 16000.0).sin()
                * 10000.0;
            err += (f64::from(s) - ideal).powi(2);
        }
        let snr = 10.0 * (rms(&got[200..]).powi(2) * (got.len() - 200) as f64 / err).log10();
        assert!(snr > 30.0, "SNR {snr} dB");
    }

    #[test]
    fn downsampling_rejects_aliases() {
        // 6 kHz at 16 kHz is above the 4 kHz Nyquist of 8 kHz: must be attenuated.
        let mut r = Resampler::new(16000, 8000, 320).unwrap();
        let input = tone(16000, 6000.0, 3200);
        let mut out = vec![0i16; 200];
        let mut got = Vec::new();
        for chunk in input.chunks(320) {
            let n = r.process(chunk, &mut out).unwrap();
            got.extend_from_slice(&out[..n]);
        }
        assert!(
            rms(&got[50..]) < rms(&input) * 0.05,
            "alias rms {}",
            rms(&got[50..])
        );
    }

    #[test]
    fn rejects_bad_rates_and_sizes() {
        assert!(Resampler::new(44100, 8000, 160).is_err());
        let mut r = Resampler::new(8000, 16000, 160).unwrap();
        assert!(r.process(&[0; 161], &mut [0; 400]).is_err());
        assert!(r.process(&[0; 160], &mut [0; 100]).is_err());
    }
}
