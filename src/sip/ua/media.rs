//! The UA core's view of SDP offer/answer: what an offer asks for and what we agreed.
//! The SDP text itself is read and written by `crate::sip::sdp`.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::sip::dialog::Direction;

/// What was agreed for a call's audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Where the trunk wants RTP (None when the offer holds with 0.0.0.0 / port 0).
    pub remote_rtp: Option<SocketAddr>,
    /// Payload type of the chosen codec.
    pub payload_type: u8,
    /// Codec name (`PCMU`, `PCMA`, `opus`).
    pub codec: String,
    /// Clock rate of the codec.
    pub clock_rate: u32,
    /// RFC 4733 telephone-event payload type, if both sides have it.
    pub telephone_event: Option<u8>,
    /// Packetisation time in ms.
    pub ptime_ms: u32,
    /// Our direction in the answer.
    pub direction: Direction,
    /// RTCP multiplexed on the RTP port.
    pub rtcp_mux: bool,
    /// SDES keying: the suite and both `a=crypto` values.
    pub srtp: Option<SrtpKeys>,
    /// The trunk's Opus fmtp parameters, when Opus was agreed.
    pub opus: Option<crate::sip::sdp::OpusFmtp>,
}

/// SDES (RFC 4568) keying of one call: the two `a=crypto` values as agreed.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// Crypto suite, e.g. `AEAD_AES_128_GCM`.
    pub suite: String,
    /// Our `a=crypto` value as sent in the answer (tag, suite, `inline:` key||salt,
    /// KDR when the trunk asked for one).
    pub local: String,
    /// The trunk's accepted `a=crypto` value as offered, whole: its lifetime, MKI and
    /// session parameters key its packets too.
    pub remote: String,
}

impl std::fmt::Debug for SrtpKeys {
    /// Never prints a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .field("local", &"<redacted>")
            .field("remote", &"<redacted>")
            .finish()
    }
}

/// An offer we cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpReject {
    /// Nothing acceptable (codec, transport): 488 with this Warning text.
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    /// The body is not SDP we can read: 400.
    #[error("malformed SDP: {0}")]
    Malformed(String),
}

impl SdpReject {
    /// Status for the response.
    pub fn status(&self) -> u16 {
        match self {
            SdpReject::NotAcceptable(_) => 488,
            SdpReject::Malformed(_) => 400,
        }
    }
}

/// An answer: the SDP body and what it means.
#[derive(Clone)]
pub struct Answer {
    /// SDP body (with SRTP it holds our key: never log it).
    pub body: Bytes,
    /// The agreement.
    pub media: NegotiatedMedia,
}

impl std::fmt::Debug for Answer {
    /// The body's length only: an SRTP answer carries our key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("body_len", &self.body.len())
            .field("media", &self.media)
            .finish()
    }
}
