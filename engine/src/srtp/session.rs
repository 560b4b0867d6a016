//! `SrtpSession`: the inbound/outbound context pair of one media stream.

use super::context::SrtpContext;

/// The two SRTP contexts of a media stream: `outbound` protects what we send (keyed by
/// the key we offered/answered), `inbound` unprotects what the peer sends (keyed by the
/// peer's key). Built from SDES by [`super::sdes::session_from_sdes`].
#[derive(Debug, Clone)]
pub struct SrtpSession {
    /// Unprotects received SRTP/SRTCP.
    pub inbound: SrtpContext,
    /// Protects SRTP/SRTCP to send.
    pub outbound: SrtpContext,
}
