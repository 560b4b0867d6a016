//! What a UAS must answer to a request it cannot process (RFC 3261 §8.2, RFC 4475),
//! and which received responses a UAC must discard. One table, one place.

use super::error::{Disposition, ParseError};
use super::header::HeaderName;
use super::message::{Method, Request, Response};
use super::uri::Scheme;
use super::writer::{reason_phrase, MessageWriter};

/// What this UAS supports: the input to [`check_request`].
#[derive(Debug, Clone, Copy)]
pub struct UasPolicy<'a> {
    /// Methods we process (others get 405 if known, 501 if not).
    pub allowed: &'a [Method],
    /// Option tags we support (a Require naming another gets 420).
    pub supported: &'a [&'a str],
    /// Body media types we accept as (type, subtype).
    pub accept: &'a [(&'a str, &'a str)],
    /// Our host name for Warning headers.
    pub warn_agent: &'a str,
    /// Largest body accepted (a larger one gets 413).
    pub max_body: usize,
}

impl UasPolicy<'static> {
    /// The gateway's UAS: calls, in-dialog requests, transfers, no registrar.
    pub const GATEWAY: UasPolicy<'static> = UasPolicy {
        allowed: &[
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Options,
            Method::Refer,
            Method::Notify,
            Method::Info,
            Method::Update,
            Method::Prack,
        ],
        supported: &["timer", "replaces", "norefersub", "100rel"],
        accept: &[
            ("application", "sdp"),
            ("message", "sipfrag"),
            ("application", "dtmf-relay"),
            ("application", "dtmf"),
        ],
        warn_agent: "voxgate",
        max_body: 16 * 1024,
    };
}

/// A request refused before any transaction-user processing: the status to send, the
/// extra headers it must carry, and the fault for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code.
    pub status: u16,
    /// Extra headers (Allow, Unsupported, Accept, Accept-Encoding, Warning).
    pub headers: Vec<(&'static str, String)>,
    /// The parse fault behind a 400, if any.
    pub fault: Option<ParseError>,
}

impl Rejection {
    fn new(status: u16) -> Self {
        Rejection {
            status,
            headers: Vec::new(),
            fault: None,
        }
    }

    fn bad(fault: ParseError) -> Self {
        Rejection {
            status: 400,
            headers: Vec::new(),
            fault: Some(fault),
        }
    }

    /// Writes the response to `req` into `out` (statelessly).
    pub fn write_response(&self, req: &Request, to_tag: Option<&str>, out: &mut Vec<u8>) -> usize {
        let reason = match &self.fault {
            Some(f) => format!("{} ({f})", reason_phrase(self.status)),
            None => reason_phrase(self.status).to_owned(),
        };
        let mut w = MessageWriter::response_to(out, req, self.status, Some(&reason), to_tag);
        for (n, v) in &self.headers {
            w.header(n, v);
        }
        w.finish(None)
    }
}

fn allow_list(policy: &UasPolicy<'_>) -> String {
    let v: Vec<&str> = policy.allowed.iter().map(Method::as_str).collect();
    v.join(", ")
}

/// Validates a received request at the parser+classification level, in RFC 3261 §8.2
/// order: version (505), framing (400), mandatory headers (400), Request-URI (400/416),
/// method (405/501), CSeq method (400), Require (420), body size (413),
/// Content-Encoding and Content-Type (415), Accept (406). `Ok` means hand it to the transaction layer.
pub fn check_request(req: &Request, policy: &UasPolicy<'_>) -> Result<(), Rejection> {
    if !req.version().eq_ignore_ascii_case("SIP/2.0") {
        return Err(Rejection::new(505));
    }
    let h = &req.headers;
    if req.framing.is_some() {
        let at = h.position(HeaderName::ContentLength);
        return Err(Rejection::bad(ParseError::Header {
            header: "Content-Length",
            at,
        }));
    }
    let vias = h.vias().map_err(Rejection::bad)?;
    if vias.is_empty() {
        return Err(Rejection::bad(ParseError::Missing { header: "Via" }));
    }
    h.from().map_err(Rejection::bad)?;
    let to = h.to().map_err(Rejection::bad)?;
    h.call_id().map_err(Rejection::bad)?;
    let cseq = h.cseq().map_err(Rejection::bad)?;
    h.max_forwards().map_err(Rejection::bad)?;
    h.contacts().map_err(Rejection::bad)?;
    h.routes().map_err(Rejection::bad)?;
    h.record_routes().map_err(Rejection::bad)?;
    let uri = req.uri().map_err(Rejection::bad)?;
    if let Scheme::Other(_) = uri.scheme {
        return Err(Rejection::new(416));
    }
    if !policy.allowed.contains(&req.method) {
        let status = if matches!(req.method, Method::Extension(_)) {
            501
        } else {
            405
        };
        let mut r = Rejection::new(status);
        r.headers.push(("Allow", allow_list(policy)));
        return Err(r);
    }
    if cseq.method != req.method {
        return Err(Rejection::bad(ParseError::Header {
            header: "CSeq",
            at: h.position(HeaderName::CSeq),
        }));
    }
    if req.method == Method::Register && !to.uri.is_sip() {
        return Err(Rejection::bad(ParseError::Header {
            header: "To",
            at: h.position(HeaderName::To),
        }));
    }
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<&str> = h
            .tokens(HeaderName::Require)
            .filter(|t| !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            let mut r = Rejection::new(420);
            r.headers.push(("Unsupported", unsupported.join(", ")));
            return Err(r);
        }
    }
    if req.body.len() > policy.max_body {
        return Err(Rejection::new(413));
    }
    if !req.body.is_empty() {
        if h.tokens(HeaderName::ContentEncoding)
            .any(|e| !e.eq_ignore_ascii_case("identity"))
        {
            let mut r = Rejection::new(415);
            r.headers.push(("Accept-Encoding", "identity".into()));
            return Err(r);
        }
        let ct = h
            .content_type()
            .map_err(Rejection::bad)?
            .ok_or(Rejection::bad(ParseError::Missing {
                header: "Content-Type",
            }))?;
        if !policy.accept.iter().any(|(k, s)| ct.is(k, s)) {
            let mut r = Rejection::new(415);
            let v: Vec<String> = policy
                .accept
                .iter()
                .map(|(k, s)| format!("{k}/{s}"))
                .collect();
            r.headers.push(("Accept", v.join(", ")));
            return Err(r);
        }
    }
    if req.method == Method::Invite {
        if let Some(acc) = h.accept() {
            let acc = acc.map_err(Rejection::bad)?;
            let ok = acc.iter().any(|m| {
                (m.kind == "*" || m.kind.eq_ignore_ascii_case("application"))
                    && (m.subtype == "*" || m.subtype.eq_ignore_ascii_case("sdp"))
            });
            if !ok {
                let mut r = Rejection::new(406);
                r.headers.push((
                    "Warning",
                    format!(
                        "399 {} \"only application/sdp answers are produced\"",
                        policy.warn_agent
                    ),
                ));
                return Err(r);
            }
        }
    }
    Ok(())
}

/// Validates a received response for a UAC (RFC 3261 §8.1.3): exactly one Via,
/// readable From/To/Call-ID/CSeq (CSeq ≤ 2^32-1), sane framing. Failures are dropped.
pub fn check_response(resp: &Response) -> Result<(), Disposition> {
    let h = &resp.headers;
    if resp.framing.is_some() || !resp.version().eq_ignore_ascii_case("SIP/2.0") {
        return Err(Disposition::Drop);
    }
    match h.vias() {
        Ok(v) if v.len() == 1 => {}
        _ => return Err(Disposition::Drop),
    }
    if h.from().is_err() || h.to().is_err() || h.call_id().is_err() || h.cseq().is_err() {
        return Err(Disposition::Drop);
    }
    Ok(())
}
