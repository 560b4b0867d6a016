//! Opus (RFC 6716, RTP payload RFC 7587) through libopus (the `audiopus` binding, linked
//! against the system libopus; see docs/DECISIONS.md "## Opus").
//!
//! One [`OpusEncoder`] / [`OpusDecoder`] per session, created with the session and never
//! on the packet path. Mono only (`stereo=0`): a stereo packet from the peer is decoded
//! down-mixed by libopus. The decoder runs at the session's PCM rate (8, 16 or 48 kHz;
//! libopus decodes natively at those rates, so no resampler is needed) and accepts any
//! frame size a packet carries (2.5–120 ms). Loss recovery: [`OpusDecoder::recover`]
//! decodes the in-band FEC copy of a lost frame from the packet after it, and falls back
//! to libopus' packet loss concealment when that packet carries none.

use super::{AudioDecoder, AudioEncoder, CodecError, CodecKind};
use audiopus::coder::{Decoder as RawDecoder, Encoder as RawEncoder};
use audiopus::{packet, Application, Bitrate, Channels, SampleRate};

/// Default encoder complexity (0–10); chosen by measurement (docs/DECISIONS.md "## Opus").
pub const DEFAULT_COMPLEXITY: u8 = 5;

/// Payloads of this many bytes or fewer are DTX frames (RFC 6716 / libopus: "no need to
/// transmit"); the sender skips them and the receiver sees a timestamp gap, not a loss.
pub const DTX_MAX_PAYLOAD: usize = 2;

/// Negotiated Opus parameters (from the SDP fmtp of both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    /// PCM rate the encoder takes and the decoder produces (8000, 16000 or 48000).
    pub pcm_rate: u32,
    /// Encoder complexity 0–10.
    pub complexity: u8,
    /// Target bit rate (the peer's `maxaveragebitrate`, clamped to 6000–510000), or
    /// `None` for [`default_bitrate`] at this rate.
    pub bitrate: Option<u32>,
    /// Put in-band FEC into what we send (the peer's `useinbandfec=1`).
    pub inband_fec: bool,
    /// Discontinuous transmission (the peer's `usedtx=1`).
    pub dtx: bool,
    /// Expected packet loss in percent, tuning how much FEC the encoder adds.
    pub expected_loss_percent: u8,
}

impl OpusParams {
    /// Defaults for `pcm_rate`: [`DEFAULT_COMPLEXITY`], libopus bit rate, FEC on at 5 %
    /// expected loss, no DTX.
    pub fn new(pcm_rate: u32) -> Self {
        Self {
            pcm_rate,
            complexity: DEFAULT_COMPLEXITY,
            bitrate: None,
            inband_fec: true,
            dtx: false,
            expected_loss_percent: 5,
        }
    }
}

impl Default for OpusParams {
    fn default() -> Self {
        Self::new(16000)
    }
}

/// Bit rate used when the peer sets no `maxaveragebitrate`: the top of SILK's useful
/// range for the band (libopus' own automatic choice at 8 kHz, 11 kbit/s, costs speech
/// recognition accuracy), 20 kbit/s narrowband, 28 kbit/s wideband, 32 kbit/s above.
pub fn default_bitrate(pcm_rate: u32) -> u32 {
    match pcm_rate {
        0..=8000 => 20_000,
        8001..=16000 => 28_000,
        _ => 32_000,
    }
}

fn sample_rate(rate: u32) -> Result<SampleRate, CodecError> {
    match rate {
        8000 => Ok(SampleRate::Hz8000),
        12000 => Ok(SampleRate::Hz12000),
        16000 => Ok(SampleRate::Hz16000),
        24000 => Ok(SampleRate::Hz24000),
        48000 => Ok(SampleRate::Hz48000),
        _ => Err(CodecError::UnsupportedRate {
            from: rate,
            to: 48000,
        }),
    }
}

fn map_err(e: audiopus::Error) -> CodecError {
    match e {
        audiopus::Error::Opus(audiopus::ErrorCode::BufferTooSmall) => {
            CodecError::BufferTooSmall { need: 0, have: 0 }
        }
        _ => CodecError::CorruptPayload,
    }
}

/// Opus encoder (mono, VoIP application).
#[derive(Debug)]
pub struct OpusEncoder {
    raw: RawEncoder,
    params: OpusParams,
}

impl OpusEncoder {
    /// Creates the encoder; call once per session.
    pub fn new(params: OpusParams) -> Result<Self, CodecError> {
        let rate = sample_rate(params.pcm_rate)?;
        let init = |e: audiopus::Error| {
            tracing::warn!(error = %e, "opus encoder setup failed");
            CodecError::Unavailable(CodecKind::Opus)
        };
        let mut raw = RawEncoder::new(rate, Channels::Mono, Application::Voip).map_err(init)?;
        raw.set_complexity(params.complexity.min(10))
            .map_err(init)?;
        let b = params
            .bitrate
            .unwrap_or_else(|| default_bitrate(params.pcm_rate));
        raw.set_bitrate(Bitrate::BitsPerSecond(b.clamp(6000, 510_000) as i32))
            .map_err(init)?;
        raw.set_inband_fec(params.inband_fec).map_err(init)?;
        raw.set_packet_loss_perc(params.expected_loss_percent.min(100))
            .map_err(init)?;
        raw.set_encoder_ctl_request(audiopus::ffi::OPUS_SET_DTX_REQUEST, i32::from(params.dtx))
            .map_err(init)?;
        Ok(Self { raw, params })
    }

    /// The parameters.
    pub fn params(&self) -> &OpusParams {
        &self.params
    }
}

impl AudioEncoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
    fn pcm_rate(&self) -> u32 {
        self.params.pcm_rate
    }
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        // libopus takes 2.5, 5, 10, 20, 40 or 60 ms.
        let ms_x2 = pcm.len() * 2000 / self.params.pcm_rate as usize;
        if !matches!(ms_x2, 5 | 10 | 20 | 40 | 80 | 120)
            || pcm.len() * 2000 % self.params.pcm_rate as usize != 0
        {
            return Err(CodecError::CorruptPayload);
        }
        self.raw.encode(pcm, out).map_err(|e| match map_err(e) {
            CodecError::BufferTooSmall { .. } => CodecError::BufferTooSmall {
                need: 1275,
                have: out.len(),
            },
            other => other,
        })
    }
}

/// Opus decoder (mono) at a fixed PCM rate.
#[derive(Debug)]
pub struct OpusDecoder {
    raw: RawDecoder,
    rate: SampleRate,
    pcm_rate: u32,
    /// Samples of the last decoded or concealed frame (the size a concealment takes).
    last_samples: usize,
}

impl OpusDecoder {
    /// Creates the decoder producing PCM at `pcm_rate`; call once per session.
    pub fn new(pcm_rate: u32) -> Result<Self, CodecError> {
        let rate = sample_rate(pcm_rate)?;
        let raw = RawDecoder::new(rate, Channels::Mono).map_err(|e| {
            tracing::warn!(error = %e, "opus decoder setup failed");
            CodecError::Unavailable(CodecKind::Opus)
        })?;
        Ok(Self {
            raw,
            rate,
            pcm_rate,
            last_samples: (pcm_rate / 50) as usize,
        })
    }

    /// Conceals one lost packet of `lost_samples` (0: the last packet's size) using the
    /// in-band FEC carried by `next` (the packet after the loss) when it has any, PLC
    /// otherwise. Returns samples written and whether FEC was used.
    pub fn recover(
        &mut self,
        next: Option<&[u8]>,
        lost_samples: usize,
        out: &mut [i16],
    ) -> Result<(usize, bool), CodecError> {
        let n = if lost_samples == 0 {
            self.last_samples
        } else {
            lost_samples
        };
        let have = out.len();
        let Some(out) = out.get_mut(..n) else {
            return Err(CodecError::BufferTooSmall { need: n, have });
        };
        if let Some(next) = next.filter(|p| has_fec(p)) {
            if let Ok(m) = self.raw.decode(Some(next), &mut *out, true) {
                if m > 0 {
                    return Ok((m, true));
                }
            }
        }
        let m = self
            .raw
            .decode(None::<&[u8]>, out, false)
            .map_err(map_err)?;
        Ok((m, false))
    }
}

/// Whether the first frame of `payload` carries LBRR (in-band FEC) data: SILK or hybrid
/// mode and the LBRR flag set in the first SILK frame (RFC 6716 §4.2.3). A cheap check
/// that spares a decode attempt on CELT-only packets.
pub fn has_fec(payload: &[u8]) -> bool {
    let Some(&toc) = payload.first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        return false; // CELT only
    }
    let code = toc & 0x03;
    // Frame data starts after the TOC (and the frame-count byte for code 3).
    let start = match code {
        0 | 1 => 1,
        2 => {
            // One or two length bytes for the first frame.
            match payload.get(1) {
                Some(&l) if l >= 252 => 3,
                Some(_) => 2,
                None => return false,
            }
        }
        _ => {
            let Some(&fc) = payload.get(1) else {
                return false;
            };
            let padding = fc & 0x40 != 0;
            let vbr = fc & 0x80 != 0;
            if padding || vbr {
                // Let libopus parse the complicated layouts.
                return true;
            }
            2
        }
    };
    let Some(&first) = payload.get(start) else {
        return false;
    };
    // 20 ms SILK frame: VAD flag then LBRR flag in the top two bits; 40/60 ms frames
    // have one VAD flag per 20 ms sub-frame before the LBRR flag.
    let frames_per = match config & 0x3 {
        2 => 2, // 40 ms SILK
        3 => 3, // 60 ms SILK
        _ => 1,
    };
    let frames_per = if config >= 12 { 1 } else { frames_per };
    first & (0x80 >> frames_per) != 0
}

impl AudioDecoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }
    fn pcm_rate(&self) -> u32 {
        self.pcm_rate
    }
    fn packet_samples(&self, payload: &[u8]) -> Result<usize, CodecError> {
        // Code 3 needs its frame-count byte, with 1..=48 frames (RFC 6716 §3.2.5).
        match payload {
            [] => return Err(CodecError::CorruptPayload),
            [toc, rest @ ..] if toc & 3 == 3 => match rest.first() {
                Some(c) if (1..=48).contains(&(c & 0x3f)) => {}
                _ => return Err(CodecError::CorruptPayload),
            },
            _ => {}
        }
        packet::nb_samples(payload, self.rate).map_err(|_| CodecError::CorruptPayload)
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::CorruptPayload);
        }
        let need = self.packet_samples(payload)?;
        if need > out.len() {
            return Err(CodecError::BufferTooSmall {
                need,
                have: out.len(),
            });
        }
        let n = self
            .raw
            .decode(Some(payload), &mut out[..need], false)
            .map_err(map_err)?;
        if n > 0 {
            self.last_samples = n;
        }
        Ok(n)
    }
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        self.recover(None, 0, out).map(|(n, _)| n)
    }
}

/// The `opus_decode` fuzz target: decodes `data` as one Opus payload at 48 kHz, as the
/// packet after a loss (FEC path) and through PLC; then splits it into packets
/// (`[len][bytes]...`) and decodes them in order at 8 kHz, rebuilding each from the next
/// one's FEC when its first byte is odd. Never panics.
pub fn fuzz_decode(data: &[u8]) {
    let mut out = vec![0i16; super::MAX_FRAME_SAMPLES];
    if let Ok(mut dec) = OpusDecoder::new(48000) {
        let _ = dec.packet_samples(data);
        let _ = dec.decode(data, &mut out);
        let _ = dec.recover(Some(data), 0, &mut out);
        let _ = dec.conceal(&mut out);
        let _ = has_fec(data);
    }
    let Ok(mut dec) = OpusDecoder::new(8000) else {
        return;
    };
    let mut packets = [&[][..]; 16];
    let mut count = 0;
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        if count == packets.len() {
            break;
        }
        let n = usize::from(*len).min(tail.len());
        packets[count] = &tail[..n];
        count += 1;
        rest = &tail[n..];
    }
    for i in 0..count {
        let p = packets[i];
        if p.first().is_some_and(|b| b & 1 == 1) {
            let _ = dec.recover(packets.get(i + 1).copied(), 0, &mut out);
        } else {
            let _ = dec.decode(p, &mut out[..960]);
        }
    }
}

#[cfg(test)]
#[path = "opus_tests.rs"]
mod tests;
