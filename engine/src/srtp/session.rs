//! `SrtpSession`: the inbound/outbound context pair of one media stream.

use super::context::SrtpContext;
use super::sdes::{self, CryptoAttribute, SdesError};

/// The two SRTP contexts of a media stream: `outbound` protects what we send (keyed by
/// our `a=crypto` line), `inbound` unprotects what the peer sends (keyed by the peer's).
#[derive(Debug, Clone)]
pub struct SrtpSession {
    /// Unprotects received SRTP/SRTCP.
    pub inbound: SrtpContext,
    /// Protects SRTP/SRTCP to send.
    pub outbound: SrtpContext,
}

impl SrtpSession {
    /// Builds the pair from our `a=crypto` line and the peer's (same suite).
    pub fn from_sdes(
        local: &CryptoAttribute,
        remote: &CryptoAttribute,
    ) -> Result<SrtpSession, SdesError> {
        sdes::session_from_sdes(local, remote)
    }
}
