//! Offer/answer tests (RFC 3264 behaviour the trunks rely on).

use std::net::IpAddr;

use super::super::{Direction, SessionDescription};
use super::*;

const TRUNK_OFFER: &str = "v=0\r\n\
o=- 1732 1 IN IP4 203.0.113.10\r\n\
s=-\r\n\
c=IN IP4 203.0.113.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn caps() -> LocalCapabilities<'static> {
    LocalCapabilities {
        codecs: &[Codec::Pcmu, Codec::Pcma, Codec::Opus],
        telephone_event: true,
        allow_opus: false,
        opus_rate: 8000,
        address: "127.0.0.1".parse().unwrap(),
        port: 30000,
        require_srtp: false,
        crypto: None,
        ptime: 20,
        direction: Direction::SendRecv,
        session_id: 42,
        session_version: 1,
    }
}

fn sdp(s: &str) -> SessionDescription {
    SessionDescription::parse(s.as_bytes()).unwrap()
}

#[test]
fn trunk_offer_gets_pcmu_and_telephone_event() {
    let (ans, n) = answer(&sdp(TRUNK_OFFER), &caps()).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event),
        (Codec::Pcmu, 0, Some(101))
    );
    assert_eq!(n.remote, Some("203.0.113.10:40000".parse().unwrap()));
    assert_eq!(n.direction, Direction::SendRecv);
    let text = ans.to_string();
    assert!(text.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{text}");
    assert!(
        text.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{text}"
    );
    assert!(text.contains("c=IN IP4 127.0.0.1\r\n"), "{text}");
    assert!(text.contains("a=ptime:20\r\n"), "{text}");
    assert_eq!(
        SessionDescription::parse(text.as_bytes()).unwrap(),
        ans,
        "round trip"
    );
}

#[test]
fn local_preference_picks_among_offered() {
    let mut c = caps();
    c.codecs = &[Codec::Pcma, Codec::Pcmu];
    let (_, n) = answer(&sdp(TRUNK_OFFER), &c).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
}

#[test]
fn hold_directions_are_mirrored() {
    for (offered, want) in [
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
        ("sendrecv", Direction::SendRecv),
    ] {
        let o = TRUNK_OFFER.replace("a=sendrecv", &format!("a={offered}"));
        let (ans, n) = answer(&sdp(&o), &caps()).unwrap();
        assert_eq!(n.direction, want, "offer {offered}");
        assert!(ans
            .to_string()
            .contains(&format!("a={}\r\n", want.as_str())));
    }
    let o = TRUNK_OFFER.replace("c=IN IP4 203.0.113.10", "c=IN IP4 0.0.0.0");
    let (_, n) = answer(&sdp(&o), &caps()).unwrap();
    assert_eq!(
        (n.remote, n.direction),
        (None, Direction::RecvOnly),
        "RFC 2543 hold"
    );
    let mut c = caps();
    c.direction = Direction::SendOnly;
    let (_, n) = answer(&sdp(TRUNK_OFFER), &c).unwrap();
    assert_eq!(n.direction, Direction::SendOnly, "we hold");
}

#[test]
fn srtp_rules() {
    let mut c = caps();
    c.require_srtp = true;
    let e = answer(&sdp(TRUNK_OFFER), &c).unwrap_err();
    assert_eq!(e, NegotiationError::SrtpRequired);
    assert_eq!(e.status(), 488);
    assert!(e.warning("gw").starts_with("302 gw \""));

    let savp = TRUNK_OFFER.replace("RTP/AVP", "RTP/SAVP").replace(
        "a=ptime:20\r\n",
        "a=ptime:20\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
    );
    assert_eq!(
        answer(&sdp(&savp), &c).unwrap_err(),
        NegotiationError::NoCrypto,
        "no local crypto"
    );
    c.crypto = Some("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
    let (ans, n) = answer(&sdp(&savp), &c).unwrap();
    assert!(n.srtp);
    assert_eq!(n.remote_crypto.len(), 1);
    let text = ans.to_string();
    assert!(text.contains("m=audio 30000 RTP/SAVP 0 101"), "{text}");
    assert!(
        text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1u"),
        "{text}"
    );
    let nocrypto = TRUNK_OFFER.replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(
        answer(&sdp(&nocrypto), &c).unwrap_err(),
        NegotiationError::NoCrypto
    );
}

#[test]
fn nothing_acceptable_is_488_with_warning() {
    let o = TRUNK_OFFER.replace("RTP/AVP 0 8 18 101", "RTP/AVP 18");
    let e = answer(&sdp(&o), &caps()).unwrap_err();
    assert_eq!(e, NegotiationError::NoCommonCodec);
    assert!(e.warning("voxgate").starts_with("305 voxgate"));
    let o = TRUNK_OFFER.replace("m=audio", "m=video");
    assert_eq!(
        answer(&sdp(&o), &caps()).unwrap_err(),
        NegotiationError::NoAudio
    );
    let o = TRUNK_OFFER.replace("RTP/AVP", "UDP/TLS/RTP/SAVP");
    assert!(matches!(
        answer(&sdp(&o), &caps()),
        Err(NegotiationError::Transport(_))
    ));
}

#[test]
fn opus_only_when_allowed() {
    let o = TRUNK_OFFER
        .replace("RTP/AVP 0 8 18 101", "RTP/AVP 111 0 101")
        .replace(
            "a=rtpmap:0 PCMU",
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU",
        );
    let mut c = caps();
    c.codecs = &[Codec::Opus, Codec::Pcmu];
    assert_eq!(answer(&sdp(&o), &c).unwrap().1.codec, Codec::Pcmu);
    c.allow_opus = true;
    let (ans, n) = answer(&sdp(&o), &c).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Opus, 111));
    assert_eq!(
        n.telephone_event, None,
        "telephone-event/8000 does not pair with 48 kHz"
    );
    // We answer what we do: 8 kHz speech side, mono, FEC decoded.
    assert!(ans.to_string().contains(
        "a=fmtp:111 maxplaybackrate=8000;sprop-maxcapturerate=8000;stereo=0;sprop-stereo=0;useinbandfec=1;usedtx=0;minptime=10"
    ));
    // No fmtp in the offer: RFC 7587 defaults (no FEC, no DTX asked for).
    assert_eq!(n.opus, Some(crate::sip::sdp::OpusFmtp::default()));
    // The offer's fmtp is what we encode for.
    let o2 = o.replace(
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1;usedtx=1;maxaveragebitrate=16000",
    );
    let (_, n) = answer(&sdp(&o2), &c).unwrap();
    let f = n.opus.unwrap();
    assert!(f.use_inband_fec && f.use_dtx);
    assert_eq!(f.max_average_bitrate, Some(16000));
    // G.711 chosen: no Opus parameters.
    c.codecs = &[Codec::Pcmu, Codec::Opus];
    assert_eq!(answer(&sdp(&o2), &c).unwrap().1.opus, None);
}

#[test]
fn ipv6_and_rejected_streams() {
    let o = TRUNK_OFFER.replace("c=IN IP4 203.0.113.10", "c=IN IP6 2001:db8::10")
        + "m=video 5000 RTP/AVP 31\r\n";
    let mut c = caps();
    c.address = "::1".parse::<IpAddr>().unwrap();
    let (ans, n) = answer(&sdp(&o), &c).unwrap();
    assert_eq!(n.remote, Some("[2001:db8::10]:40000".parse().unwrap()));
    assert_eq!(ans.media.len(), 2);
    assert_eq!(ans.media[1].port, 0);
    assert!(ans.to_string().contains("c=IN IP6 ::1\r\n"));
}

#[test]
fn our_hold_offer() {
    let mut c = caps();
    c.direction = Direction::SendOnly;
    let o = offer(&c);
    let text = o.to_string();
    assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
    assert!(text.contains("a=sendonly\r\n"), "{text}");
    assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), o);
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(SessionDescription::parse(b"o=- 1 1 IN IP4 1.2.3.4\r\n").is_err());
    assert!(SessionDescription::parse(b"v=0\r\n").is_err());
    assert!(SessionDescription::parse(
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm =audio 1 RTP/AVP 0\r\n"
    )
    .is_err());
    assert!(
        SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n")
            .is_err()
    );
    assert!(SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP9 x\r\n").is_err());
}
