//! Building the UA core's owned views from the parser's messages.

use bytes::Bytes;

use super::view::{RequestView, ResponseView, TopVia};
use crate::sip::header::Via;
use crate::sip::message::{Headers, Request, Response};
use crate::sip::uri::Scheme;
use crate::sip::ParseError;

fn via_text(v: &Via<'_>) -> String {
    let port = v.port.map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "SIP/{}/{} {}{port}{}",
        v.protocol_version.trim(),
        v.transport,
        v.host,
        v.params.as_str()
    )
}

fn top_via(v: &Via<'_>) -> TopVia {
    TopVia {
        transport: v.transport.to_ascii_uppercase(),
        host: v.host.to_string(),
        port: v.port,
        branch: v.branch().map(str::to_owned),
        rport: v.rport().is_some(),
        received: v.received().map(str::to_owned),
    }
}

fn content_type(h: &Headers) -> Option<String> {
    h.content_type()
        .ok()
        .flatten()
        .map(|m| format!("{}/{}", m.kind, m.subtype).to_ascii_lowercase())
}

fn trimmed(s: &str) -> String {
    Headers::unfolded(s).trim().to_owned()
}

impl RequestView {
    /// The view of a parsed request that passed `check_request`.
    pub fn from_request(req: &Request) -> Result<RequestView, ParseError> {
        let h = &req.headers;
        let vias = h.vias()?;
        let top = vias.first().ok_or(ParseError::Missing { header: "Via" })?;
        let from = h.from()?;
        let to = h.to()?;
        let cseq = h.cseq()?;
        let uri = req.uri()?;
        let scheme = match uri.scheme {
            Scheme::Sip => "sip".to_owned(),
            Scheme::Sips => "sips".to_owned(),
            Scheme::Tel => "tel".to_owned(),
            Scheme::Other(s) => s.to_ascii_lowercase(),
        };
        let contact = h
            .contacts()
            .ok()
            .and_then(|c| c.first().map(|na| na.uri.raw.to_owned()));
        let record_route = h
            .get_all(crate::sip::HeaderName::RecordRoute)
            .flat_map(|v| {
                crate::sip::params::split_commas(v)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, p)| p.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        let from_raw = trimmed(h.get(crate::sip::HeaderName::From).unwrap_or(""));
        let to_raw = trimmed(h.get(crate::sip::HeaderName::To).unwrap_or(""));
        Ok(RequestView {
            method: req.method.as_str().to_owned(),
            uri: req.uri_str().to_owned(),
            uri_scheme: scheme,
            uri_number: uri.telephone_number(),
            vias: vias.iter().map(via_text).collect(),
            top_via: top_via(top),
            from_tag: from.tag().map(str::to_owned),
            from: from_raw,
            to_tag: to.tag().map(str::to_owned),
            to_number: to.uri.telephone_number(),
            to: to_raw,
            call_id: h.call_id()?.to_owned(),
            cseq: cseq.seq,
            cseq_method: cseq.method.as_str().to_owned(),
            contact,
            record_route,
            content_type: content_type(h),
            body: req.body.clone(),
            headers: h.iter().map(|(n, v)| (n.to_owned(), trimmed(v))).collect(),
        })
    }
}

impl ResponseView {
    /// The view of a parsed response.
    pub fn from_response(resp: &Response) -> Result<ResponseView, ParseError> {
        let h = &resp.headers;
        let top = h.top_via()?;
        let to = h.to()?;
        let cseq = h.cseq()?;
        Ok(ResponseView {
            status: resp.status,
            branch: top.branch().map(str::to_owned),
            to_tag: to.tag().map(str::to_owned),
            to: trimmed(h.get(crate::sip::HeaderName::To).unwrap_or("")),
            call_id: h.call_id()?.to_owned(),
            cseq: cseq.seq,
            cseq_method: cseq.method.as_str().to_owned(),
            contact: h
                .contacts()
                .ok()
                .and_then(|c| c.first().map(|na| na.uri.raw.to_owned())),
            content_type: content_type(h),
            body: if resp.body.is_empty() {
                Bytes::new()
            } else {
                resp.body.clone()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::SipMessage;

    #[test]
    fn compact_folded_invite_becomes_a_view() {
        let msg = "INVITE sip:+19585550123@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;rport, SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKdef\r\nf: \"A\" <sip:+15550001@trunk>;tag=ft\r\nt: <tel:+19585550123>\r\ni: cid-1\r\nCSeq: 3 INVITE\r\nm: <sip:trunk@10.0.0.1:5070>\r\nX-Account:\r\n  42\r\nc: application/sdp\r\nl: 4\r\n\r\nv=0\n";
        let Ok(SipMessage::Request(r)) = crate::sip::parse(Bytes::from(msg)) else {
            panic!("parse")
        };
        let v = RequestView::from_request(&r).expect("view");
        assert_eq!(v.vias.len(), 2);
        assert_eq!(
            v.vias[0],
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKabc;rport"
        );
        assert!(v.top_via.rport);
        assert_eq!(v.top_via.sent_by(), "10.0.0.1:5070");
        assert_eq!(v.from_tag.as_deref(), Some("ft"));
        assert_eq!(v.to_number.as_deref(), Some("+19585550123"));
        assert_eq!(v.uri_number.as_deref(), Some("+19585550123"));
        assert_eq!(v.contact.as_deref(), Some("sip:trunk@10.0.0.1:5070"));
        assert_eq!(v.content_type.as_deref(), Some("application/sdp"));
        assert_eq!(v.header("X-Account", None), Some("42"));
        assert_eq!(&v.body[..], b"v=0\n");
    }
}
