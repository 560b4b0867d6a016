//! The seam between the UA core and the SDP module (`crate::sip::sdp`): reading an
//! offer, answering it for our RTP address, and writing our own offers (hold).

use std::net::SocketAddr;

use bytes::Bytes;
use voxgate_engine::srtp::sdes::{self, CryptoAttribute};

use super::media::{Answer, NegotiatedMedia, SdpReject, SrtpKeys};
use crate::sip::dialog::Direction;
use crate::sip::sdp::{self, Codec, LocalCapabilities, SessionDescription};

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

/// Our crypto line for the offer's audio stream, and the keys. A first answer takes
/// the strongest acceptable line (RFC 4568 §6.1 via the engine's SDES code: a line with
/// an unknown suite, a bad key or a session parameter we cannot honour is skipped, not
/// half-used) with a fresh key. `keep`: our keying from an earlier answer in this
/// dialog. The media session's outbound context was built from it and stays, so only a
/// line of the same suite and KDR can be answered, with our same key; an offer without
/// one is not acceptable (a re-INVITE refused with 488 leaves the call on its keying).
fn pick_crypto(sd: &SessionDescription, keep: Option<&SrtpKeys>) -> Option<(String, SrtpKeys)> {
    let m = sd
        .media
        .iter()
        .find(|m| m.media == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/SAVP"))?;
    let (theirs, ours) = match keep {
        Some(k) => {
            let mut ours = CryptoAttribute::parse(&k.local).ok()?;
            let theirs = m
                .crypto()
                .filter_map(|line| CryptoAttribute::parse(line).ok())
                .find(|a| a.suite == ours.suite && a.kdr == ours.kdr)?;
            ours.tag = theirs.tag;
            (theirs, ours)
        }
        None => sdes::answer(m.crypto()).ok()?,
    };
    let remote = m
        .crypto()
        .find(|line| CryptoAttribute::parse(line).is_ok_and(|a| a == theirs))?
        .trim()
        .to_owned();
    let local = ours.to_sdp_value();
    Some((
        local.clone(),
        SrtpKeys {
            suite: theirs.suite.sdes_name().to_owned(),
            local,
            remote,
        },
    ))
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
    let crypto = media.srtp.as_ref().map(|k| k.local.clone());
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

    const SAVP_HEAD: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n\
t=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n";

    /// An offer whose audio stream carries `lines` as its `a=crypto` values.
    fn savp_offer(lines: &[String]) -> String {
        let mut o = SAVP_HEAD.to_owned();
        for l in lines {
            o.push_str(&format!("a=crypto:{l}\r\n"));
        }
        o
    }

    /// A fresh offer line for `suite` with `tag`, with `extra` appended to its key
    /// parameter (`|2^31|7:4`) and `params` after it (` UNENCRYPTED_SRTP`).
    fn line(tag: u32, suite: voxgate_engine::srtp::SrtpSuite, extra: &str, params: &str) -> String {
        let a = CryptoAttribute::generate(tag, suite).expect("rng");
        format!("{}{extra}{params}", a.to_sdp_value())
    }

    fn answer_savp(offer: &str, keep: Option<&SrtpKeys>) -> Result<Answer, SdpReject> {
        let local = SocketAddr::from(([127, 0, 0, 1], 30000));
        answer(
            offer.as_bytes(),
            local,
            (1, 1),
            None,
            keep,
            OpusPolicy::Accept,
        )
    }

    /// The crypto value of an answer body's audio stream.
    fn answered_crypto(a: &Answer) -> String {
        let body = std::str::from_utf8(&a.body).expect("utf-8");
        let start = body.find("a=crypto:").expect("a crypto line") + "a=crypto:".len();
        body[start..]
            .lines()
            .next()
            .expect("line")
            .trim()
            .to_owned()
    }

    /// One packet from `from` through `to`: protected, then unprotected to the same bytes.
    fn keys_match(from: &str, to: &str) -> bool {
        let mut tx = CryptoAttribute::parse(from).unwrap().context().unwrap();
        let mut rx = CryptoAttribute::parse(to).unwrap().context().unwrap();
        let mut pkt = [0u8; 256];
        let rtp = [0x80, 0, 0, 7, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
        pkt[..12].copy_from_slice(&rtp);
        pkt[12..172].fill(0xd5);
        let sent = pkt;
        let n = tx.protect_rtp(&mut pkt, 172).unwrap();
        matches!(rx.unprotect_rtp(&mut pkt[..n]), Ok(172)) && pkt[..172] == sent[..172]
    }

    #[test]
    fn srtp_answer_takes_the_strongest_acceptable_line_whole() {
        use voxgate_engine::srtp::SrtpSuite;
        let sha32 = line(1, SrtpSuite::AesCm128HmacSha1_32, "", "");
        // The strongest, but with a session parameter we cannot honour: unacceptable.
        let gcm_unencrypted = line(2, SrtpSuite::AeadAes128Gcm, "", " UNENCRYPTED_SRTP");
        // Lifetime and MKI: both key the trunk's packets.
        let sha80_mki = line(3, SrtpSuite::AesCm128HmacSha1_80, "|2^31|7:4", "");
        let unknown =
            "4 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm".to_owned();
        let offer = savp_offer(&[sha32, gcm_unencrypted, sha80_mki.clone(), unknown]);
        let a = answer_savp(&offer, None).expect("an acceptable line");
        let keys = a.media.srtp.clone().expect("keyed");
        assert_eq!(keys.suite, "AES_CM_128_HMAC_SHA1_80");
        assert_eq!(keys.remote, sha80_mki, "the trunk's line is kept whole");
        let ours = answered_crypto(&a);
        assert_eq!(ours, keys.local);
        assert!(
            ours.starts_with("3 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{ours}"
        );
        assert!(!ours.contains(
            sha80_mki
                .split('|')
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
        ));
        // The trunk's packets (keyed with its MKI) open with what the session is given,
        // and ours open with the line we answered.
        assert!(keys_match(&sha80_mki, &keys.remote));
        assert!(keys_match(&keys.local, &ours));
        // Without its MKI the trunk's packets would not authenticate.
        let bare = sha80_mki.split('|').next().unwrap();
        assert!(!keys_match(&sha80_mki, bare));
    }

    #[test]
    fn srtp_answer_prefers_gcm_and_refuses_an_offer_with_nothing_acceptable() {
        use voxgate_engine::srtp::SrtpSuite;
        let offer = savp_offer(&[
            line(1, SrtpSuite::AesCm128HmacSha1_80, "", ""),
            line(2, SrtpSuite::AeadAes128Gcm, "", ""),
        ]);
        let a = answer_savp(&offer, None).expect("acceptable");
        assert_eq!(a.media.srtp.as_ref().unwrap().suite, "AEAD_AES_128_GCM");
        assert!(answered_crypto(&a).starts_with("2 AEAD_AES_128_GCM inline:"));

        let none = savp_offer(&[
            line(1, SrtpSuite::AesCm128HmacSha1_80, "", " FEC_ORDER=FEC_SRTP"),
            "2 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_owned(),
        ]);
        let e = answer_savp(&none, None).unwrap_err();
        assert_eq!(e.status(), 488, "{e}");
    }

    #[test]
    fn srtp_reanswer_keeps_our_key_for_the_same_suite_only() {
        use voxgate_engine::srtp::SrtpSuite;
        let first = answer_savp(
            &savp_offer(&[line(1, SrtpSuite::AesCm128HmacSha1_80, "", "")]),
            None,
        )
        .unwrap();
        let kept = first.media.srtp.clone().unwrap();
        // A re-INVITE: same suite under another tag, new trunk key.
        let again = answer_savp(
            &savp_offer(&[line(5, SrtpSuite::AesCm128HmacSha1_80, "", "")]),
            Some(&kept),
        )
        .unwrap();
        let again = again.media.srtp.unwrap();
        assert!(again.local.starts_with("5 "), "{}", again.local);
        assert!(keys_match(&kept.local, &again.local), "same key");
        // A re-offer that adds a stronger suite: answered in the kept one, same key
        // (the session's outbound context stays as it was keyed).
        let stronger = answer_savp(
            &savp_offer(&[
                line(1, SrtpSuite::AeadAes128Gcm, "", ""),
                line(2, SrtpSuite::AesCm128HmacSha1_80, "", ""),
            ]),
            Some(&kept),
        )
        .unwrap();
        let stronger = stronger.media.srtp.unwrap();
        assert_eq!(stronger.suite, "AES_CM_128_HMAC_SHA1_80");
        assert!(keys_match(&kept.local, &stronger.local));
        // Only another suite, or the same suite with another KDR: refused (488), the
        // call stays on its keying.
        for other in [
            line(1, SrtpSuite::AesCm128HmacSha1_32, "", ""),
            line(1, SrtpSuite::AesCm128HmacSha1_80, "", " KDR=10"),
        ] {
            let e =
                answer_savp(&savp_offer(std::slice::from_ref(&other)), Some(&kept)).unwrap_err();
            assert_eq!(e.status(), 488, "{other}: {e}");
        }
        // A first answer to the same offers takes them.
        let first32 = answer_savp(
            &savp_offer(&[line(1, SrtpSuite::AesCm128HmacSha1_32, "", "")]),
            None,
        )
        .unwrap();
        assert_eq!(first32.media.srtp.unwrap().suite, "AES_CM_128_HMAC_SHA1_32");
        // Keys never show in Debug output, not even the answer's SDP body.
        let shown = format!("{kept:?} {first:?}");
        let key = kept.local.split("inline:").nth(1).unwrap();
        assert!(!shown.contains(key), "{shown}");
    }
}
