//! SRTP errors.

use std::fmt;

/// Why a packet index was refused by the replay protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayKind {
    /// The index was already accepted (or, when protecting, already used).
    Duplicate,
    /// The index is older than the replay window.
    TooOld,
}

impl fmt::Display for ReplayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayKind::Duplicate => "duplicate",
            ReplayKind::TooOld => "older than the replay window",
        })
    }
}

/// Errors from SRTP/SRTCP protection, unprotection and context set-up.
///
/// Peer faults (`TooShort`, `Malformed`, `AuthenticationFailed`, `Replay`, `UnknownMki`)
/// mean "drop and count the packet"; `BufferTooSmall` and the set-up errors are misuse;
/// `KeyLifetimeExhausted` means the call needs new keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The packet is shorter than its header, trailer and tag.
    #[error("packet too short")]
    TooShort,
    /// The packet is not RTP/RTCP version 2 or its header lengths are inconsistent.
    #[error("malformed RTP/RTCP header")]
    Malformed,
    /// The authentication tag did not verify.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The packet index was refused by the replay protection.
    #[error("replayed packet index {index}: {kind}")]
    Replay {
        /// The (extended) packet index.
        index: u64,
        /// Duplicate or too old.
        kind: ReplayKind,
    },
    /// The MKI in the packet is not the one of this context.
    #[error("unknown MKI")]
    UnknownMki,
    /// The master key has reached its lifetime; re-key the call.
    #[error("master key lifetime exhausted")]
    KeyLifetimeExhausted,
    /// The output buffer has no room for the trailer and tag.
    #[error("buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The plaintext length given to protect exceeds the buffer.
    #[error("length {len} exceeds the buffer ({available} bytes)")]
    LengthOutOfRange {
        /// The length given.
        len: usize,
        /// The buffer size.
        available: usize,
    },
    /// The packet exceeds what the cipher can process in one message.
    #[error("packet too long")]
    TooLong,
    /// The master key has the wrong length for the suite.
    #[error("master key must be {expected} bytes, got {got}")]
    InvalidKeyLength {
        /// Length the suite needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The master salt has the wrong length for the suite.
    #[error("master salt must be {expected} bytes, got {got}")]
    InvalidSaltLength {
        /// Length the suite needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The MKI is empty or longer than 128 bytes.
    #[error("MKI must be 1..=128 bytes, got {0}")]
    InvalidMki(usize),
    /// The key derivation rate is not 0 or a power of two up to 2^24.
    #[error("key derivation rate must be 0 or a power of two up to 2^24, got {0}")]
    InvalidKeyDerivationRate(u64),
}

impl SrtpError {
    /// True when the packet is at fault (drop it and count it against the peer):
    /// too short, malformed, failed authentication, replayed, unknown MKI.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            SrtpError::TooShort
                | SrtpError::Malformed
                | SrtpError::AuthenticationFailed
                | SrtpError::Replay { .. }
                | SrtpError::UnknownMki
                | SrtpError::TooLong
        )
    }
}
