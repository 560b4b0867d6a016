//! The seam between the UA core and the SDP module: reading an offer, writing our
//! answer or offer.

use std::net::SocketAddr;

use bytes::Bytes;

use super::media::{Answer, NegotiatedMedia, SdpReject};
use crate::sip::dialog::Direction;

/// What an offer proposes, enough for admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// RTP/SAVP with a=crypto.
    pub srtp: bool,
}

/// Reads an offer.
pub fn inspect(body: &[u8]) -> Result<OfferSummary, SdpReject> {
    let _ = body;
    Err(SdpReject::Malformed("SDP support not merged yet".into()))
}

/// Answers an offer for our RTP address.
pub fn answer(
    offer: &[u8],
    local_rtp: SocketAddr,
    session: (u64, u64),
    direction: Option<Direction>,
) -> Result<Answer, SdpReject> {
    let _ = (offer, local_rtp, session, direction);
    Err(SdpReject::Malformed("SDP support not merged yet".into()))
}

/// Our offer (re-INVITE) keeping the agreed codec, with `direction`.
pub fn offer(
    local_rtp: SocketAddr,
    session: (u64, u64),
    direction: Direction,
    media: &NegotiatedMedia,
) -> Bytes {
    let _ = (local_rtp, session, direction, media);
    Bytes::new()
}
