//! The seam between the UA core and the SDP module (`crate::sip::sdp`): reading an
//! offer, answering it for our RTP address, and writing our own offers (hold).

use std::net::SocketAddr;

use base64::Engine as _;
use bytes::Bytes;
use rand::TryRngCore;

use super::media::{Answer, NegotiatedMedia, SdpReject, SrtpKeys};
use crate::sip::dialog::Direction;
use crate::sip::sdp::{self, Codec, LocalCapabilities, SessionDescription};

/// SDES suites we key (RFC 4568).
const SUITES: [&str; 2] = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"];
/// Our codecs in preference order.
const CODECS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

/// What an offer proposes, enough for admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// RTP/SAVP with a=crypto on an audio stream.
    pub srtp: bool,
}

fn to_sdp(d: Direction) -> sdp::Direction {
    match d {
        Direction::SendRecv => sdp::Direction::SendRecv,
        Direction::SendOnly => sdp::Direction::SendOnly,
        Direction::RecvOnly => sdp::Direction::RecvOnly,
        Direction::Inactive => sdp::Direction::Inactive,
    }
}

fn from_sdp(d: sdp::Direction) -> Direction {
    match d {
        sdp::Direction::SendRecv => Direction::SendRecv,
        sdp::Direction::SendOnly => Direction::SendOnly,
        sdp::Direction::RecvOnly => Direction::RecvOnly,
        sdp::Direction::Inactive => Direction::Inactive,
    }
}

fn parse(body: &[u8]) -> Result<SessionDescription, SdpReject> {
    SessionDescription::parse(body).map_err(|e| SdpReject::Malformed(e.to_string()))
}

/// Reads an offer.
pub fn inspect(body: &[u8]) -> Result<OfferSummary, SdpReject> {
    let sd = parse(body)?;
    let srtp = sd.media.iter().any(|m| {
        m.media == "audio"
            && m.port != 0
            && m.proto.eq_ignore_ascii_case("RTP/SAVP")
            && m.crypto().next().is_some()
    });
    Ok(OfferSummary { srtp })
}

/// Our crypto line for the first offered suite we support: (line, suite, key, their key).
/// `keep`: our key from an earlier answer in this dialog, reused when the suite is the
/// same (the media session was keyed with it; a new key would need a new session).
fn pick_crypto(sd: &SessionDescription, keep: Option<&SrtpKeys>) -> Option<(String, SrtpKeys)> {
    let m = sd
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/SAVP"))?;
    m.crypto().find_map(|c| {
        let mut it = c.split_ascii_whitespace();
        let tag = it.next()?;
        let suite = it.next()?;
        let params = it.next()?;
        if !SUITES.contains(&suite) {
            return None;
        }
        let remote_key = params
            .strip_prefix("inline:")?
            .split('|')
            .next()?
            .to_owned();
        let local_key = match keep.filter(|k| k.suite == suite) {
            Some(k) => k.local_key.clone(),
            None => {
                let mut raw = [0u8; 30];
                rand::rngs::OsRng.try_fill_bytes(&mut raw).ok()?;
                base64::engine::general_purpose::STANDARD.encode(raw)
            }
        };
        Some((
            format!("{tag} {suite} inline:{local_key}"),
            SrtpKeys {
                suite: suite.to_owned(),
                local_key,
                remote_key,
            },
        ))
    })
}

/// Answers an offer for our RTP address; `direction` caps ours (SendRecv by default).
pub fn answer(
    offer: &[u8],
    local_rtp: SocketAddr,
    session: (u64, u64),
    direction: Option<Direction>,
    keep: Option<&SrtpKeys>,
) -> Result<Answer, SdpReject> {
    let sd = parse(offer)?;
    let crypto = pick_crypto(&sd, keep);
    let caps = LocalCapabilities {
        codecs: &CODECS,
        telephone_event: true,
        allow_opus: false,
        address: local_rtp.ip(),
        port: local_rtp.port(),
        require_srtp: false,
        crypto: crypto.as_ref().map(|(l, _)| l.as_str()),
        ptime: 20,
        direction: to_sdp(direction.unwrap_or_default()),
        session_id: session.0,
        session_version: session.1,
    };
    let (asd, neg) =
        sdp::answer(&sd, &caps).map_err(|e| SdpReject::NotAcceptable(e.to_string()))?;
    let media = NegotiatedMedia {
        remote_rtp: neg.remote,
        payload_type: neg.payload_type,
        codec: neg.codec.encoding().to_owned(),
        clock_rate: neg.codec.clock_rate(),
        telephone_event: neg.telephone_event,
        ptime_ms: neg.ptime,
        direction: from_sdp(neg.direction),
        rtcp_mux: neg.rtcp_mux,
        srtp: if neg.srtp {
            crypto.map(|(_, k)| k)
        } else {
            None
        },
    };
    Ok(Answer {
        body: Bytes::from(asd.to_string()),
        media,
    })
}

/// Our offer (re-INVITE) with the agreed codec first, with `direction`.
pub fn offer(
    local_rtp: SocketAddr,
    session: (u64, u64),
    direction: Direction,
    media: &NegotiatedMedia,
) -> Bytes {
    let first = if media.codec.eq_ignore_ascii_case("PCMA") {
        Codec::Pcma
    } else {
        Codec::Pcmu
    };
    let codecs = [first];
    let crypto = media
        .srtp
        .as_ref()
        .map(|k| format!("1 {} inline:{}", k.suite, k.local_key));
    let caps = LocalCapabilities {
        codecs: &codecs,
        telephone_event: media.telephone_event.is_some(),
        allow_opus: false,
        address: local_rtp.ip(),
        port: local_rtp.port(),
        require_srtp: false,
        crypto: crypto.as_deref(),
        ptime: media.ptime_ms,
        direction: to_sdp(direction),
        session_id: session.0,
        session_version: session.1,
    };
    Bytes::from(sdp::offer(&caps).to_string())
}
