//! The media session's configuration, errors, events and statistics.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use crate::codec::{CodecError, CodecKind};
use crate::dtmf::DtmfError;

/// Samples a [`PcmFrame`] holds: 20 ms at 16 kHz.
pub const PCM_FRAME_SAMPLES: usize = 320;

/// What the negotiation (SDP offer/answer) decided for one audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our SSRC.
    pub local_ssrc: u32,
    /// The audio codec.
    pub codec: CodecKind,
    /// The audio payload type (both directions).
    pub payload_type: u8,
    /// The telephone-event (RFC 4733) payload type, if negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Packet duration in ms (10..=120; 20 is usual).
    pub ptime_ms: u16,
    /// Remote RTP address from the SDP; `None` learns it from the first valid packet.
    pub remote_rtp: Option<SocketAddr>,
    /// Remote RTCP address from the SDP (`a=rtcp`); `None` derives it (port + 1, or the
    /// RTP address with rtcp-mux) and follows the source of valid RTCP.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Rate of the PCM given to [`super::MediaSession::play`] and carried in
    /// [`SessionEvent::Audio`]: 8000 or 16000.
    pub pcm_rate: u32,
    /// Decoded caller audio is re-encoded and sent back (echo-test number, load bench);
    /// no [`SessionEvent::Audio`] events are produced then.
    pub echo: bool,
    /// [`SessionEvent::RtpTimeout`] after this long without valid RTP.
    pub no_rtp_timeout: Duration,
    /// SDES keys: when set, every packet in is SRTP/SRTCP-unprotected and every packet
    /// out protected (RFC 3711); packets that fail are dropped and counted.
    pub srtp: Option<SrtpKeys>,
    /// Opus encoder parameters (from the fmtp negotiation); used when `codec` is Opus.
    /// Its `pcm_rate` is ignored: Opus runs at [`SessionConfig::pcm_rate`].
    pub opus: crate::codec::OpusParams,
}

/// The two `a=crypto` attribute values (RFC 4568) of an SRTP session: ours (the key we
/// send with) and the peer's (the key we receive with). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// Our `a=crypto` value, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`.
    pub local: String,
    /// The peer's `a=crypto` value for the same suite.
    pub remote: String,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpKeys { <redacted> }")
    }
}

impl SessionConfig {
    /// A configuration with the usual defaults: 20 ms, 8 kHz PCM, no telephone-event,
    /// remote learned from the first packet, no rtcp-mux, 30 s RTP timeout.
    pub fn new(local_ssrc: u32, codec: CodecKind, payload_type: u8) -> Self {
        Self {
            local_ssrc,
            codec,
            payload_type,
            telephone_event_pt: None,
            ptime_ms: 20,
            remote_rtp: None,
            remote_rtcp: None,
            rtcp_mux: false,
            pcm_rate: 8000,
            echo: false,
            no_rtp_timeout: Duration::from_secs(30),
            srtp: None,
            opus: crate::codec::OpusParams::new(8000),
        }
    }
}

/// Media session faults (all are misuse or configuration faults; peer faults are counted
/// in [`SessionStats`], never returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The configuration is not usable.
    #[error("invalid session configuration: {0}")]
    InvalidConfig(&'static str),
    /// The codec cannot be set up.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// DTMF could not be sent.
    #[error(transparent)]
    Dtmf(#[from] DtmfError),
    /// No telephone-event payload type was negotiated.
    #[error("telephone-event was not negotiated")]
    NoTelephoneEvent,
}

/// Whether a datagram is RTP or RTCP (decides the socket/port with no rtcp-mux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// An RTP packet.
    Rtp,
    /// A (compound) RTCP packet.
    Rtcp,
}

/// A datagram to send, written at the start of the buffer given to
/// [`super::MediaSession::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes written.
    pub len: usize,
    /// Destination.
    pub dest: SocketAddr,
    /// RTP or RTCP.
    pub kind: PacketKind,
}

/// Decoded PCM, fixed-size so it crosses a lock-free queue without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcmFrame {
    /// Samples; only the first `len` are meaningful.
    pub samples: [i16; PCM_FRAME_SAMPLES],
    /// Valid samples.
    pub len: u16,
    /// Sample rate (the session's `pcm_rate`).
    pub rate: u32,
}

impl PcmFrame {
    /// The valid samples.
    pub fn pcm(&self) -> &[i16] {
        &self.samples[..usize::from(self.len).min(PCM_FRAME_SAMPLES)]
    }
}

/// Something the control side should know.
// Audio is deliberately inline (fixed-size, Copy): events cross a lock-free queue
// without allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// Caller audio (one playout step, split into frames of at most 320 samples).
    Audio(PcmFrame),
    /// A DTMF digit (reported once).
    Dtmf {
        /// The digit.
        digit: char,
        /// How long it was held.
        duration: Duration,
    },
    /// The caller started speaking (barge-in).
    SpeechStart,
    /// The caller stopped speaking.
    SpeechEnd,
    /// The first packet of queued audio after silence was written (the answer's first
    /// RTP packet leaves in the same batch).
    PlaybackStarted,
    /// The play queue became empty (played out, or stopped).
    PlaybackIdle,
    /// The remote RTP address was learned or changed (reported once per change).
    RemoteAddressLearned(SocketAddr),
    /// No valid RTP for `no_rtp_timeout` (reported once until RTP resumes).
    RtpTimeout,
}

/// Per-session counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    /// SRTP/SRTCP packets that failed authentication (dropped).
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP packets refused as replays (dropped).
    pub srtp_replayed: u64,
    /// Packets not sent because SRTP could not protect them (key lifetime exhausted).
    pub srtp_protect_failed: u64,
    /// Echo mode: decoded samples dropped because they were still queued when the next
    /// frame was played out (after a stall), so the echo delay does not grow.
    pub echo_dropped_samples: u64,
    /// Valid RTP packets received (audio and telephone-event).
    pub packets_in: u64,
    /// Bytes of those packets.
    pub bytes_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// Bytes of those packets.
    pub bytes_out: u64,
    /// RTCP packets received (valid compounds).
    pub rtcp_in: u64,
    /// RTCP packets sent.
    pub rtcp_out: u64,
    /// Malformed RTP/RTCP, unknown payload types, sequence-invalid packets.
    pub invalid_in: u64,
    /// Packets from an address other than the latched remote, dropped.
    pub foreign_in: u64,
    /// Packets lost (jitter buffer's view: missing at playout).
    pub lost: u64,
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Duplicate packets.
    pub duplicate: u64,
    /// Concealment frames played.
    pub concealed: u64,
    /// Lost packets rebuilt from the next packet's Opus in-band FEC.
    pub fec_recovered: u64,
    /// Opus DTX frames not sent (silence with discontinuous transmission).
    pub dtx_suppressed: u64,
    /// Packets discarded by the jitter buffer to shrink its delay.
    pub discarded: u64,
    /// Interarrival jitter (RFC 3550 A.8) in µs.
    pub jitter_us: u32,
    /// Jitter buffer target delay in ms.
    pub jitter_buffer_ms: u32,
    /// Round-trip time from RTCP (RFC 3550 6.4.1), once known.
    pub rtt: Option<Duration>,
    /// Cumulative loss the remote reports for our stream.
    pub remote_lost: i32,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// DTMF digits received.
    pub dtmf_in: u64,
}
