//! Entry points for the fuzz targets: parse, then touch every accessor a transaction
//! user would, so a panic anywhere in the read path is found.

use bytes::Bytes;

use super::check::{check_request, check_response, UasPolicy};
use super::header::HeaderName;
use super::message::SipMessage;
use super::sdp::{self, Codec, Direction, LocalCapabilities, SessionDescription};
use super::writer::MessageWriter;

/// Parses a datagram and exercises typed access, classification and the writer.
pub fn sip_message(data: &[u8]) {
    let _ = super::parse::frame_len(data);
    let msg = match super::parse::parse(Bytes::copy_from_slice(data)) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.disposition(data);
            return;
        }
    };
    let h = msg.headers();
    if let Ok(vias) = h.vias() {
        for v in &vias {
            let _ = (
                v.branch(),
                v.rport(),
                v.received(),
                v.rfc3261_branch(),
                v.maddr(),
            );
        }
    }
    for na in [h.from(), h.to(), h.refer_to()].into_iter().flatten() {
        let _ = (
            na.display_name(),
            na.tag(),
            na.uri.user_unescaped(),
            na.uri.telephone_number(),
        );
    }
    let _ = (
        h.call_id(),
        h.cseq(),
        h.max_forwards(),
        h.contacts(),
        h.routes(),
        h.record_routes(),
    );
    let _ = (
        h.content_type(),
        h.accept(),
        h.event(),
        h.subscription_state(),
        h.session_expires(),
    );
    let _ = (
        h.referred_by(),
        h.content_length(),
        super::auth::credentials(h, false),
    );
    let _ = h.tokens(HeaderName::Require).count();
    if let Ok(c) = h.contacts() {
        for w in c.windows(2) {
            let _ = w[0].uri.equivalent(&w[1].uri);
        }
    }
    match &msg {
        SipMessage::Request(r) => {
            let _ = r.called_number();
            let mut out = Vec::new();
            match check_request(r, &UasPolicy::GATEWAY) {
                Ok(()) => {
                    let _ =
                        MessageWriter::response_to(&mut out, r, 180, None, Some("t")).finish(None);
                }
                Err(rej) => {
                    let _ = rej.write_response(r, Some("t"), &mut out);
                }
            }
        }
        SipMessage::Response(r) => {
            let _ = check_response(r);
        }
    }
}

/// Parses an SDP body, answers it, and re-parses what it serialises.
pub fn sdp(data: &[u8]) {
    let Ok(offer) = SessionDescription::parse(data) else {
        return;
    };
    let again = SessionDescription::parse(offer.to_string().as_bytes());
    assert!(again.is_ok(), "serialised SDP must parse again");
    let caps = LocalCapabilities {
        codecs: &[Codec::Pcmu, Codec::Pcma, Codec::Opus],
        telephone_event: true,
        allow_opus: true,
        opus_rate: 8000,
        address: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        port: 30000,
        require_srtp: false,
        crypto: Some("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"),
        ptime: 20,
        direction: Direction::SendRecv,
        session_id: 1,
        session_version: 1,
    };
    if let Ok((ans, _)) = sdp::answer(&offer, &caps) {
        assert!(SessionDescription::parse(ans.to_string().as_bytes()).is_ok());
    }
}
