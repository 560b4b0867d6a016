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
/// Our codecs in preference order, Opus last (accepted when nothing else is common).
const CODECS: [Codec; 3] = [Codec::Pcmu, Codec::Pcma, Codec::Opus];
/// Our codecs in preference order when Opus is preferred.
const CODECS_OPUS_FIRST: [Codec; 3] = [Codec::Opus, Codec::Pcmu, Codec::Pcma];
/// PCM rate of the speech side (and of our Opus `maxplaybackrate`).
pub const SPEECH_PCM_RATE: u32 = 8000;

/// Whether and how we take Opus (configuration: `[sip] opus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpusPolicy {
    /// Never: G.711 only.
    Off,
    /// Accepted when the offer has no G.711 (G.711 preferred: no transcoding cost).
    #[default]
    Accept,
    /// Chosen over G.711 whenever offered (wideband trunks, lossy access networks).
    Prefer,
}

impl OpusPolicy {
    /// Parses `off` / `accept` / `prefer`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "no" | "false" => Some(Self::Off),
            "accept" | "on" | "yes" | "true" => Some(Self::Accept),
            "prefer" => Some(Self::Prefer),
            _ => None,
        }
    }
}

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
    opus: OpusPolicy,
) -> Result<Answer, SdpReject> {
    let sd = parse(offer)?;
    let crypto = pick_crypto(&sd, keep);
    let caps = LocalCapabilities {
        codecs: if opus == OpusPolicy::Prefer {
            &CODECS_OPUS_FIRST
        } else {
            &CODECS
        },
        telephone_event: true,
        allow_opus: opus != OpusPolicy::Off,
        opus_rate: SPEECH_PCM_RATE,
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
        opus: neg.opus,
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
    } else if media.codec.eq_ignore_ascii_case("opus") {
        Codec::Opus
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
        allow_opus: first == Codec::Opus,
        opus_rate: SPEECH_PCM_RATE,
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

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 111\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1;usedtx=1\r\na=ptime:20\r\n";

    fn codec(offer: &str, p: OpusPolicy) -> Result<NegotiatedMedia, SdpReject> {
        let local = SocketAddr::from(([127, 0, 0, 1], 30000));
        answer(offer.as_bytes(), local, (1, 1), None, None, p).map(|a| a.media)
    }

    #[test]
    fn opus_policy_decides() {
        assert_eq!(codec(OFFER, OpusPolicy::Accept).unwrap().codec, "PCMU");
        let m = codec(OFFER, OpusPolicy::Prefer).unwrap();
        assert_eq!((m.codec.as_str(), m.payload_type), ("opus", 111));
        let f = m.opus.unwrap();
        assert!(f.use_inband_fec && f.use_dtx);
        assert_eq!(m.clock_rate, 48000);
        assert_eq!(codec(OFFER, OpusPolicy::Off).unwrap().codec, "PCMU");
        let opus_only = OFFER.replace("RTP/AVP 0 111", "RTP/AVP 111");
        assert_eq!(codec(&opus_only, OpusPolicy::Accept).unwrap().codec, "opus");
        assert!(codec(&opus_only, OpusPolicy::Off).is_err());
        assert_eq!(OpusPolicy::parse("Prefer"), Some(OpusPolicy::Prefer));
        assert_eq!(OpusPolicy::parse("maybe"), None);
        // A hold re-offer keeps Opus.
        let m = codec(&opus_only, OpusPolicy::Accept).unwrap();
        let o = offer(
            SocketAddr::from(([127, 0, 0, 1], 30000)),
            (1, 2),
            Direction::SendOnly,
            &m,
        );
        let o = std::str::from_utf8(&o).unwrap();
        assert!(
            o.contains("opus/48000/2") && o.contains("useinbandfec=1"),
            "{o}"
        );
    }
}
