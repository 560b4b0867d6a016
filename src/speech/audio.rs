//! Sample rates and a streaming resampler (rubato FFT, fixed in/out chunks).

use rubato::{FftFixedInOut, Resampler as _};

use super::SpeechError;

/// A telephone or wideband PCM rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SampleRate {
    /// 8,000 Hz (G.711 narrowband).
    Hz8000,
    /// 16,000 Hz (wideband).
    Hz16000,
}

impl SampleRate {
    /// Samples per second.
    pub fn hz(self) -> u32 {
        match self {
            SampleRate::Hz8000 => 8_000,
            SampleRate::Hz16000 => 16_000,
        }
    }

    /// Parse 8000 or 16000.
    pub fn from_hz(hz: u32) -> Result<Self, SpeechError> {
        match hz {
            8_000 => Ok(SampleRate::Hz8000),
            16_000 => Ok(SampleRate::Hz16000),
            other => Err(SpeechError::UnsupportedAudio(format!(
                "rate {other} (8000 or 16000)"
            ))),
        }
    }
}

/// Converts a mono i16 stream between two rates, chunk by chunk, keeping state across
/// calls. Passes samples through untouched when the rates are equal.
pub struct Resampler {
    inner: Option<FftFixedInOut<f32>>,
    pending: Vec<f32>,
    out: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz with roughly 20 ms input chunks.
    pub fn new(from: u32, to: u32) -> Result<Self, SpeechError> {
        if from == to {
            return Ok(Resampler {
                inner: None,
                pending: Vec::new(),
                out: Vec::new(),
            });
        }
        let chunk = (from / 50) as usize;
        let inner = FftFixedInOut::<f32>::new(from as usize, to as usize, chunk.max(1), 1)
            .map_err(|e| SpeechError::Engine(format!("resampler {from}->{to}: {e}")))?;
        let out = vec![vec![0.0; inner.output_frames_max()]];
        Ok(Resampler {
            inner: Some(inner),
            pending: Vec::new(),
            out,
        })
    }

    /// Push input; append every output sample now available to `dst`.
    pub fn push(&mut self, input: &[i16], dst: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            dst.extend_from_slice(input);
            return;
        };
        self.pending
            .extend(input.iter().map(|&s| s as f32 / 32768.0));
        let mut used = 0;
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() - used < need {
                break;
            }
            let slice = &self.pending[used..used + need];
            match inner.process_into_buffer(&[slice], &mut self.out, None) {
                Ok((_, produced)) => {
                    dst.extend(self.out[0][..produced].iter().map(|&v| to_i16(v)));
                }
                Err(_) => break,
            }
            used += need;
        }
        self.pending.drain(..used);
    }

    /// Flush the remaining input (zero-padded) and the filter's delay line.
    pub fn finish(&mut self, dst: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let pending = std::mem::take(&mut self.pending);
        let rest: &[f32] = &pending;
        if let Ok(out) = inner.process_partial(Some(&[rest]), None) {
            dst.extend(out[0].iter().map(|&v| to_i16(v)));
        }
        if let Ok(out) = inner.process_partial::<&[f32]>(None, None) {
            dst.extend(out[0].iter().map(|&v| to_i16(v)));
        }
    }
}

fn to_i16(v: f32) -> i16 {
    (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Decode little-endian 16-bit PCM bytes (an odd trailing byte is ignored).
pub fn pcm_from_le_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Encode samples as little-endian 16-bit PCM bytes.
pub fn pcm_to_le_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_lengths() {
        for (from, to) in [(22_050, 8_000), (22_050, 16_000), (8_000, 16_000)] {
            let mut r = Resampler::new(from, to).expect("resampler");
            let tone: Vec<i16> = (0..from)
                .map(|i| {
                    ((i as f32 * 440.0 * std::f32::consts::TAU / from as f32).sin() * 8000.0) as i16
                })
                .collect();
            let mut out = Vec::new();
            for c in tone.chunks(333) {
                r.push(c, &mut out);
            }
            r.finish(&mut out);
            let want = to as usize;
            assert!(
                out.len() >= want && out.len() < want + 2 * to as usize / 50 + 64,
                "{from}->{to}: {}",
                out.len()
            );
            let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!((7000..9000).contains(&peak), "{from}->{to}: peak {peak}");
        }
        assert!(SampleRate::from_hz(11_025).is_err());
    }
}

/// 8 → 16 kHz by linear interpolation (or pass-through at 16 kHz), stateful across pushes.
///
/// Deliberately not band-limited: PocketSphinx's en-us model (upper filter edge 6.8 kHz)
/// recognised nothing from a properly band-limited upsample (empty 4–8 kHz band), while the
/// images linear interpolation leaves above 4 kHz give it the energy it expects
/// (measured: `tests/speech` round trips; docs/DECISIONS.md `## Speech`).
/// It also adds low-level uniform noise (±[`DECODER_NOISE`], about -54 dBFS, fixed-seed
/// LCG): digital silence and the empty spectrum of synthetic speech upset the decoder's
/// cepstral normalisation; on the tuning set this raised accuracy by ~10 points.
#[derive(Debug, Clone)]
pub struct DecoderUpsampler {
    double: bool,
    prev: i16,
    rng: u32,
}

/// Amplitude of the noise [`DecoderUpsampler`] adds.
pub const DECODER_NOISE: i32 = 128;

impl DecoderUpsampler {
    /// From `rate` to 16 kHz.
    pub fn new(rate: SampleRate) -> Self {
        DecoderUpsampler {
            double: rate == SampleRate::Hz8000,
            prev: 0,
            rng: 0x9E37_79B9,
        }
    }

    /// Append the 16 kHz samples for `input` to `dst`.
    pub fn push(&mut self, input: &[i16], dst: &mut Vec<i16>) {
        let start = dst.len();
        if self.double {
            dst.reserve(input.len() * 2);
            for &x in input {
                dst.push(((self.prev as i32 + x as i32) / 2) as i16);
                dst.push(x);
                self.prev = x;
            }
        } else {
            dst.extend_from_slice(input);
        }
        for s in &mut dst[start..] {
            self.rng = self.rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = ((self.rng >> 16) as i32 % (2 * DECODER_NOISE + 1)) - DECODER_NOISE;
            *s = (*s as i32 + n).clamp(-32768, 32767) as i16;
        }
    }
}
