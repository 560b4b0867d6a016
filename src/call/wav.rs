//! WAV reading for `audio` responses and hold music: RIFF/WAVE, PCM 16-bit, mono or
//! stereo (mixed down), any rate (resampled to 8 kHz by the caller's resampler).
//! Malformed files are a [`WavError`] naming the fault, never a panic.

/// A WAV fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not RIFF/WAVE.
    #[error("not a RIFF/WAVE file")]
    NotWav,
    /// A chunk runs past the end.
    #[error("truncated {0} chunk")]
    Truncated(&'static str),
    /// No `fmt ` or `data` chunk.
    #[error("missing {0} chunk")]
    Missing(&'static str),
    /// Not 16-bit PCM, or more than two channels.
    #[error("unsupported format: {0}")]
    Unsupported(String),
}

/// Decoded audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// Mono samples.
    pub samples: Vec<i16>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Parses a PCM WAV file.
pub fn decode(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWav);
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32_at(bytes, pos + 4).ok_or(WavError::Truncated("chunk header"))? as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let f = bytes
                .get(body..body + len.min(16))
                .ok_or(WavError::Truncated("fmt"))?;
            if f.len() < 16 {
                return Err(WavError::Truncated("fmt"));
            }
            fmt = Some((
                u16_at(f, 0).unwrap_or(0),
                u16_at(f, 2).unwrap_or(0),
                u32_at(f, 4).unwrap_or(0),
                u16_at(f, 14).unwrap_or(0),
            ));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or(WavError::Missing("fmt"))?;
            // 1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM sub-format assumed).
            if !(format == 1 || format == 0xFFFE)
                || bits != 16
                || !(1..=2).contains(&channels)
                || rate == 0
            {
                return Err(WavError::Unsupported(format!(
                    "format {format}, {channels} channels, {bits} bits, {rate} Hz"
                )));
            }
            let end = body.saturating_add(len).min(bytes.len());
            let data = &bytes[body..end];
            let frame = 2 * usize::from(channels);
            let samples = data
                .chunks_exact(frame)
                .map(|f| {
                    let l = i32::from(i16::from_le_bytes([f[0], f[1]]));
                    if channels == 2 {
                        let r = i32::from(i16::from_le_bytes([f[2], f[3]]));
                        ((l + r) / 2) as i16
                    } else {
                        l as i16
                    }
                })
                .collect();
            return Ok(Wav { rate, samples });
        }
        pos = body.saturating_add(len).saturating_add(len & 1);
    }
    Err(WavError::Missing(if fmt.is_some() {
        "data"
    } else {
        "fmt"
    }))
}

/// Resamples mono PCM to 8 kHz by linear interpolation (prompts, not the media path).
pub fn to_8k(w: &Wav) -> Vec<i16> {
    if w.rate == 8000 || w.samples.is_empty() {
        return w.samples.clone();
    }
    let n = (w.samples.len() as u64 * 8000 / u64::from(w.rate)) as usize;
    let step = f64::from(w.rate) / 8000.0;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let a = f64::from(w.samples[j.min(w.samples.len() - 1)]);
            let b = f64::from(w.samples[(j + 1).min(w.samples.len() - 1)]);
            (a + (b - a) * (x - j as f64)) as i16
        })
        .collect()
}

/// A mono 16-bit PCM WAV file of `w` (what `audio` responses and hold music play).
pub fn encode(w: &Wav) -> Vec<u8> {
    riff(1, w.rate, 16, &w.samples)
}

/// RIFF/WAVE with a PCM `fmt ` chunk (`bits` as declared) and 16-bit `samples`.
fn riff(channels: u16, rate: u32, bits: u16, samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    b.extend_from_slice(&(channels * 2).to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32, bits: u16, samples: &[i16]) -> Vec<u8> {
        riff(channels, rate, bits, samples)
    }

    #[test]
    fn mono_8k_round_trips() {
        let w = decode(&wav(1, 8000, 16, &[1, -2, 300])).unwrap();
        assert_eq!(
            w,
            Wav {
                rate: 8000,
                samples: vec![1, -2, 300]
            }
        );
    }

    #[test]
    fn stereo_is_mixed_and_16k_halved() {
        let w = decode(&wav(2, 16000, 16, &[100, 300, -100, -300, 50, 50, 0, 0])).unwrap();
        assert_eq!(w.samples, vec![200, -200, 50, 0]);
        assert_eq!(to_8k(&w).len(), 2);
    }

    #[test]
    fn faults_are_named() {
        assert_eq!(decode(b"not a wav"), Err(WavError::NotWav));
        assert!(matches!(
            decode(&wav(1, 8000, 8, &[0])),
            Err(WavError::Unsupported(_))
        ));
        let mut t = wav(1, 8000, 16, &[0; 4]);
        t.truncate(30);
        assert!(decode(&t).is_err());
        // Arbitrary bytes after a RIFF/WAVE header never panic.
        for n in 0..64u8 {
            let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
            b.extend((0..n).map(|i| i.wrapping_mul(37)));
            let _ = decode(&b);
        }
    }
}
