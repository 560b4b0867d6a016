//! Writing the responses and requests the UA sends (RFC 3261 §8.2.6, §12.2.1.1).

use std::fmt::Write as _;

use bytes::Bytes;
use rand::RngCore;

use super::view::{Flow, RequestView};

/// Methods this UA accepts (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY";

/// Warning on the 503 of a draining node (OPTIONS and new INVITEs). A proxy tells it
/// from a capacity 503 by this text: deploy/kamailio/kamailio.cfg takes the node out of
/// its set only for this one.
pub const DRAINING_WARNING: &str = "399 voxgate \"draining\"";

/// Extensions this UA supports.
pub const SUPPORTED: &str = "timer, replaces, norefersub";
/// Product token.
pub const USER_AGENT: &str = concat!("voxgate/", env!("CARGO_PKG_VERSION"));

/// The reason phrase for a status code: the standard phrase, else the class's.
pub fn reason(status: u16) -> &'static str {
    match crate::sip::writer::reason_phrase(status) {
        "" => match status / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
        phrase => phrase,
    }
}

/// Ends a message whose start line and headers are in `s`: Content-Type and
/// Content-Length, the blank line, then the body.
pub fn with_body(mut s: String, body: Option<(&str, &[u8])>) -> Bytes {
    let mut bytes = match body {
        Some((ct, b)) => {
            let _ = write!(
                s,
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                b.len()
            );
            let mut v = s.into_bytes();
            v.extend_from_slice(b);
            v
        }
        None => {
            s.push_str("Content-Length: 0\r\n\r\n");
            s.into_bytes()
        }
    };
    bytes.shrink_to_fit();
    Bytes::from(bytes)
}

/// A random token for tags and branches (64 bits, hex).
pub fn token() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A new RFC 3261 branch.
pub fn branch() -> String {
    format!("z9hG4bK{}", token())
}

/// The top Via with `received` and a filled `rport` (RFC 3581 §4) for the packet's
/// source.
pub fn stamped_via(raw: &str, flow: &Flow, rport: bool, host: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 40);
    for (i, part) in raw.split(';').enumerate() {
        if i > 0 {
            let name = part.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("rport") || name.eq_ignore_ascii_case("received") {
                continue;
            }
            out.push(';');
        }
        out.push_str(part.trim_end());
    }
    let ip = flow.remote.ip();
    let host_is_source = host.trim_matches(|c| c == '[' || c == ']') == ip.to_string();
    if !host_is_source || rport {
        let _ = write!(out, ";received={ip}");
    }
    if rport {
        let _ = write!(out, ";rport={}", flow.remote.port());
    }
    out
}

/// Builds a response to `req`. `to_tag` is added to To when it has none.
pub fn response(
    req: &RequestView,
    flow: &Flow,
    status: u16,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Bytes {
    let mut s = String::with_capacity(512 + body.map_or(0, |b| b.1.len()));
    let _ = write!(s, "SIP/2.0 {status} {}\r\n", reason(status));
    for (i, v) in req.vias.iter().enumerate() {
        if i == 0 {
            let v = stamped_via(v, flow, req.top_via.rport, &req.top_via.host);
            let _ = write!(s, "Via: {v}\r\n");
        } else {
            let _ = write!(s, "Via: {v}\r\n");
        }
    }
    let _ = write!(s, "From: {}\r\n", req.from);
    match (to_tag, &req.to_tag) {
        (Some(t), None) if status != 100 => {
            let _ = write!(s, "To: {};tag={t}\r\n", req.to);
        }
        _ => {
            let _ = write!(s, "To: {}\r\n", req.to);
        }
    }
    let _ = write!(s, "Call-ID: {}\r\n", req.call_id);
    let _ = write!(s, "CSeq: {} {}\r\n", req.cseq, req.cseq_method);
    // RFC 3261 §12.1.1: a UAS copies Record-Route into responses that can create a
    // dialog, so the caller routes ACK/BYE back through the proxy (Kamailio) too.
    if (101..300).contains(&status) && req.cseq_method == "INVITE" {
        for rr in &req.record_route {
            let _ = write!(s, "Record-Route: {rr}\r\n");
        }
    }
    for (n, v) in extra {
        let _ = write!(s, "{n}: {v}\r\n");
    }
    let _ = write!(s, "Server: {USER_AGENT}\r\n");
    with_body(s, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::ua::view::{TopVia, Transport};

    fn req() -> RequestView {
        RequestView {
            method: "INVITE".into(),
            vias: vec![
                "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport".into(),
                "SIP/2.0/UDP p.example.com;branch=z9hG4bKy".into(),
            ],
            top_via: TopVia {
                transport: "UDP".into(),
                host: "10.0.0.1".into(),
                port: Some(5070),
                branch: Some("z9hG4bKx".into()),
                rport: true,
                received: None,
            },
            from: "<sip:a@b>;tag=1".into(),
            to: "<sip:+19585550123@gw>".into(),
            call_id: "c1".into(),
            cseq: 7,
            cseq_method: "INVITE".into(),
            ..Default::default()
        }
    }

    #[test]
    fn response_copies_dialog_headers_and_stamps_rport() {
        let flow = Flow {
            transport: Transport::Udp,
            remote: "192.0.2.9:40000".parse().unwrap(),
            conn: None,
        };
        let r = response(&req(), &flow, 180, Some("abc"), &[], None);
        let t = std::str::from_utf8(&r).unwrap();
        assert!(t.starts_with("SIP/2.0 180 Ringing\r\n"));
        assert!(
            t.contains(
                "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;received=192.0.2.9;rport=40000\r\n"
            ),
            "{t}"
        );
        assert!(t.contains("Via: SIP/2.0/UDP p.example.com;branch=z9hG4bKy\r\n"));
        assert!(t.contains("To: <sip:+19585550123@gw>;tag=abc\r\n"));
        assert!(t.contains("CSeq: 7 INVITE\r\n"));
        assert!(t.ends_with("Content-Length: 0\r\n\r\n"));
        // 100 Trying carries no To tag.
        let r = response(&req(), &flow, 100, Some("abc"), &[], None);
        assert!(std::str::from_utf8(&r)
            .unwrap()
            .contains("To: <sip:+19585550123@gw>\r\n"));
    }
}
