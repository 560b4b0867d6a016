//! Audio codecs and resampling.
//!
//! [`AudioEncoder`] / [`AudioDecoder`] are the codec interface: PCM at the codec's own
//! rate in, payload bytes out (and back), writing into caller buffers. The RTP clock rate
//! ([`CodecKind::rtp_clock_rate`]) is separate from the PCM rate, because Opus always
//! uses a 48 kHz RTP clock whatever rate it decodes at, and its packets carry a variable
//! number of samples ([`AudioDecoder::packet_samples`]). [`Encoder`] / [`Decoder`] are
//! the enum dispatch the media session uses (no boxing); Opus needs its negotiated
//! parameters, so it is built with [`Encoder::opus`] / [`Decoder::opus`] (or
//! [`Encoder::with_opus`] / [`Decoder::with_opus`]).

pub mod g711;
pub mod opus;
mod resample;

pub use opus::{OpusDecoder, OpusEncoder, OpusParams};

pub use resample::Resampler;

use thiserror::Error;

/// Largest number of PCM samples any codec produces or consumes per packet
/// (120 ms at 48 kHz, Opus' longest packet).
pub const MAX_FRAME_SAMPLES: usize = 5760;

/// A negotiated audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecKind {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus (RFC 7587).
    Opus,
}

impl CodecKind {
    /// RTP timestamp clock rate (RFC 3551; RFC 7587 fixes Opus at 48 kHz).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Opus => 48000,
        }
    }
    /// The static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Self::Pcmu => Some(0),
            Self::Pcma => Some(8),
            Self::Opus => None,
        }
    }
    /// The SDP encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::Opus => "opus",
        }
    }
    /// Looks up an SDP encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        [Self::Pcmu, Self::Pcma, Self::Opus]
            .into_iter()
            .find(|k| k.encoding_name().eq_ignore_ascii_case(name))
    }
}

/// Codec faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The codec is not built into this engine yet.
    #[error("codec {0:?} is not available in this build")]
    Unavailable(CodecKind),
    /// The output buffer cannot hold the result.
    #[error("output buffer too small: need {need}, have {have}")]
    BufferTooSmall {
        /// Units (bytes or samples) needed.
        need: usize,
        /// Units available.
        have: usize,
    },
    /// A resampling ratio that is not supported.
    #[error("unsupported resampling {from} Hz -> {to} Hz")]
    UnsupportedRate {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
    },
    /// The payload could not be decoded.
    #[error("corrupt payload")]
    CorruptPayload,
}

/// Encodes PCM at [`AudioEncoder::pcm_rate`] into one RTP payload.
pub trait AudioEncoder {
    /// The codec.
    fn kind(&self) -> CodecKind;
    /// Sample rate of the PCM this encoder takes.
    fn pcm_rate(&self) -> u32;
    /// Encodes `pcm` (one packet's worth) into `out`; returns payload bytes written.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;
}

/// Decodes RTP payloads to PCM at [`AudioDecoder::pcm_rate`].
pub trait AudioDecoder {
    /// The codec.
    fn kind(&self) -> CodecKind;
    /// Sample rate of the PCM this decoder produces.
    fn pcm_rate(&self) -> u32;
    /// Samples (at the PCM rate) a payload will decode to, without decoding it.
    fn packet_samples(&self, payload: &[u8]) -> Result<usize, CodecError>;
    /// Decodes `payload` into `out`; returns samples written.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError>;
    /// Fills `out` with a concealment of one lost packet (packet loss concealment);
    /// returns samples written.
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError>;
}

/// G.711 encoder (µ-law or A-law).
#[derive(Debug, Clone)]
pub struct G711Encoder {
    alaw: bool,
}

impl AudioEncoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        if self.alaw {
            CodecKind::Pcma
        } else {
            CodecKind::Pcmu
        }
    }
    fn pcm_rate(&self) -> u32 {
        8000
    }
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let Some(out) = out.get_mut(..pcm.len()) else {
            return Err(CodecError::BufferTooSmall {
                need: pcm.len(),
                have: out.len(),
            });
        };
        if self.alaw {
            for (o, &s) in out.iter_mut().zip(pcm) {
                *o = g711::alaw_encode(s);
            }
        } else {
            for (o, &s) in out.iter_mut().zip(pcm) {
                *o = g711::ulaw_encode(s);
            }
        }
        Ok(pcm.len())
    }
}

impl G711Encoder {
    /// The code word of a zero sample (what [`AudioEncoder::encode`] makes of silence).
    pub fn silence_code(&self) -> u8 {
        if self.alaw {
            g711::ALAW_SILENCE
        } else {
            g711::ULAW_SILENCE
        }
    }
}

/// Longest frame the G.711 concealment remembers (60 ms at 8 kHz).
const G711_PLC_MAX: usize = 480;

/// G.711 decoder with a simple packet loss concealment: the last frame is repeated,
/// attenuated by half for each consecutive loss. It keeps the last frame's code words
/// (half the bytes of its PCM, copied on every decode) and decodes them again when
/// concealing, which is rare.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    alaw: bool,
    last: [u8; G711_PLC_MAX],
    last_len: usize,
    concealed_run: u32,
}

impl AudioDecoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        if self.alaw {
            CodecKind::Pcma
        } else {
            CodecKind::Pcmu
        }
    }
    fn pcm_rate(&self) -> u32 {
        8000
    }
    fn packet_samples(&self, payload: &[u8]) -> Result<usize, CodecError> {
        Ok(payload.len())
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let Some(out) = out.get_mut(..payload.len()) else {
            return Err(CodecError::BufferTooSmall {
                need: payload.len(),
                have: out.len(),
            });
        };
        if self.alaw {
            for (o, &c) in out.iter_mut().zip(payload) {
                *o = g711::alaw_decode(c);
            }
        } else {
            for (o, &c) in out.iter_mut().zip(payload) {
                *o = g711::ulaw_decode(c);
            }
        }
        let keep = payload.len().min(G711_PLC_MAX);
        self.last[..keep].copy_from_slice(&payload[..keep]);
        self.last_len = keep;
        self.concealed_run = 0;
        Ok(out.len())
    }
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        let n = if self.last_len == 0 {
            out.len().min(160)
        } else {
            self.last_len
        };
        let Some(out) = out.get_mut(..n) else {
            return Err(CodecError::BufferTooSmall {
                need: n,
                have: out.len(),
            });
        };
        self.concealed_run = self.concealed_run.saturating_add(1);
        let shift = self.concealed_run.min(15);
        let decode = if self.alaw {
            g711::alaw_decode
        } else {
            g711::ulaw_decode
        };
        for (o, &c) in out.iter_mut().zip(&self.last[..self.last_len]) {
            *o = decode(c) >> shift;
        }
        if self.last_len == 0 {
            out.fill(0);
        }
        Ok(n)
    }
}

/// Encoder dispatch for the media session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Encoder {
    /// G.711 µ-law or A-law.
    G711(G711Encoder),
    /// Opus.
    Opus(OpusEncoder),
}

impl Encoder {
    /// Creates the encoder for `kind`; Opus gets [`OpusParams::default`] (16 kHz).
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Self::with_opus(kind, OpusParams::default())
    }
    /// Creates the encoder for `kind`, with `opus` used when `kind` is Opus.
    pub fn with_opus(kind: CodecKind, opus: OpusParams) -> Result<Self, CodecError> {
        match kind {
            CodecKind::Pcmu => Ok(Self::G711(G711Encoder { alaw: false })),
            CodecKind::Pcma => Ok(Self::G711(G711Encoder { alaw: true })),
            CodecKind::Opus => Self::opus(opus),
        }
    }
    /// Creates an Opus encoder.
    pub fn opus(params: OpusParams) -> Result<Self, CodecError> {
        Ok(Self::Opus(OpusEncoder::new(params)?))
    }
}

impl AudioEncoder for Encoder {
    fn kind(&self) -> CodecKind {
        match self {
            Self::G711(e) => e.kind(),
            Self::Opus(e) => e.kind(),
        }
    }
    fn pcm_rate(&self) -> u32 {
        match self {
            Self::G711(e) => e.pcm_rate(),
            Self::Opus(e) => e.pcm_rate(),
        }
    }
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        match self {
            Self::G711(e) => e.encode(pcm, out),
            Self::Opus(e) => e.encode(pcm, out),
        }
    }
}

/// Decoder dispatch for the media session. (The G.711 variant carries its concealment
/// frame inline; the enum lives once per session, so the size gap costs nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum Decoder {
    /// G.711 µ-law or A-law.
    G711(G711Decoder),
    /// Opus.
    Opus(OpusDecoder),
}

impl Decoder {
    /// Creates the decoder for `kind`; Opus decodes at 16 kHz.
    pub fn new(kind: CodecKind) -> Result<Self, CodecError> {
        Self::with_opus(kind, 16000)
    }
    /// Creates an Opus decoder producing PCM at `pcm_rate`.
    pub fn opus(pcm_rate: u32) -> Result<Self, CodecError> {
        Ok(Self::Opus(OpusDecoder::new(pcm_rate)?))
    }
    /// Conceals one lost packet, from the in-band FEC of `next` (the packet after the
    /// loss, when the jitter buffer holds it) where the codec has FEC, by PLC otherwise.
    /// Returns samples written and whether FEC was used.
    pub fn recover(
        &mut self,
        next: Option<&[u8]>,
        out: &mut [i16],
    ) -> Result<(usize, bool), CodecError> {
        match self {
            Self::G711(d) => d.conceal(out).map(|n| (n, false)),
            Self::Opus(d) => d.recover(next, 0, out),
        }
    }
    /// Creates the decoder for `kind`; Opus decodes at `opus_pcm_rate`.
    pub fn with_opus(kind: CodecKind, opus_pcm_rate: u32) -> Result<Self, CodecError> {
        let d = |alaw| G711Decoder {
            alaw,
            last: [0; G711_PLC_MAX],
            last_len: 0,
            concealed_run: 0,
        };
        match kind {
            CodecKind::Pcmu => Ok(Self::G711(d(false))),
            CodecKind::Pcma => Ok(Self::G711(d(true))),
            CodecKind::Opus => Self::opus(opus_pcm_rate),
        }
    }
}

impl AudioDecoder for Decoder {
    fn kind(&self) -> CodecKind {
        match self {
            Self::G711(d) => d.kind(),
            Self::Opus(d) => d.kind(),
        }
    }
    fn pcm_rate(&self) -> u32 {
        match self {
            Self::G711(d) => d.pcm_rate(),
            Self::Opus(d) => d.pcm_rate(),
        }
    }
    fn packet_samples(&self, payload: &[u8]) -> Result<usize, CodecError> {
        match self {
            Self::G711(d) => d.packet_samples(payload),
            Self::Opus(d) => d.packet_samples(payload),
        }
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            Self::G711(d) => d.decode(payload, out),
            Self::Opus(d) => d.decode(payload, out),
        }
    }
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            Self::G711(d) => d.conceal(out),
            Self::Opus(d) => d.conceal(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(CodecKind::from_encoding_name("pcmu"), Some(CodecKind::Pcmu));
        assert_eq!(CodecKind::from_encoding_name("OPUS"), Some(CodecKind::Opus));
        assert_eq!(CodecKind::from_encoding_name("G729"), None);
        assert_eq!(CodecKind::Opus.rtp_clock_rate(), 48000);
        assert_eq!(Encoder::new(CodecKind::Opus).unwrap().pcm_rate(), 16000);
    }

    #[test]
    fn encode_decode_frame_and_conceal() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
            .collect();
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut enc = Encoder::new(kind).unwrap();
            let mut dec = Decoder::new(kind).unwrap();
            let mut payload = [0u8; 160];
            assert_eq!(enc.encode(&pcm, &mut payload).unwrap(), 160);
            assert!(matches!(
                enc.encode(&pcm, &mut [0u8; 10]),
                Err(CodecError::BufferTooSmall { .. })
            ));
            let mut out = [0i16; 320];
            assert_eq!(dec.decode(&payload, &mut out).unwrap(), 160);
            for (a, b) in pcm.iter().zip(&out) {
                assert!((a - b).abs() < 300, "{kind:?}");
            }
            let mut plc = [0i16; 320];
            assert_eq!(dec.conceal(&mut plc).unwrap(), 160);
            for i in 0..160 {
                assert_eq!(plc[i], out[i] >> 1, "{kind:?} sample {i}");
            }
            dec.conceal(&mut plc).unwrap();
            for i in 0..160 {
                assert_eq!(plc[i], out[i] >> 2, "{kind:?} sample {i}");
            }
        }
    }
}
