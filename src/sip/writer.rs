//! Serialising requests and responses into a caller-owned `Vec<u8>`, copying header
//! values straight from a received request (no re-parse, no intermediate strings).

use std::fmt::Display;
use std::io::Write as _;

use super::header::HeaderName;
use super::message::{Method, Request};

/// The standard reason phrase for a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "",
    }
}

/// Writes one SIP message: start line, then headers, then [`MessageWriter::finish`]
/// adds Content-Length (and Content-Type) and the body.
#[derive(Debug)]
#[must_use = "a message is only complete after finish()"]
pub struct MessageWriter<'b> {
    out: &'b mut Vec<u8>,
}

/// Copies a (possibly folded) header value, turning folding line breaks into spaces.
fn put_value(out: &mut Vec<u8>, v: &str) {
    if v.contains(['\r', '\n']) {
        out.extend(
            v.bytes()
                .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

/// Strips CR/LF from values we are given, so a caller cannot inject header lines.
fn put_safe(out: &mut Vec<u8>, v: &str) {
    out.extend(v.bytes().filter(|c| *c != b'\r' && *c != b'\n'));
}

impl<'b> MessageWriter<'b> {
    /// Starts a request: `METHOD uri SIP/2.0`.
    pub fn request(out: &'b mut Vec<u8>, method: &Method, uri: &str) -> Self {
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        put_safe(out, uri);
        out.extend_from_slice(b" SIP/2.0\r\n");
        MessageWriter { out }
    }

    /// Starts a response with a status line only (`reason` None = standard phrase).
    pub fn response(out: &'b mut Vec<u8>, status: u16, reason: Option<&str>) -> Self {
        let _ = write!(out, "SIP/2.0 {status} ");
        put_safe(out, reason.unwrap_or(reason_phrase(status)));
        out.extend_from_slice(b"\r\n");
        MessageWriter { out }
    }

    /// Starts a response to `req` (RFC 3261 §8.2.6): copies every Via in order, From,
    /// To (adding `;tag=to_tag` when the To has no tag and the status is not 100),
    /// Call-ID, CSeq, and Record-Route for 101–299 responses to INVITE.
    pub fn response_to(
        out: &'b mut Vec<u8>,
        req: &Request,
        status: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Self {
        let mut w = MessageWriter::response(out, status, reason);
        let h = &req.headers;
        for v in h.get_all(HeaderName::Via) {
            w.header_copy("Via", v);
        }
        if let Some(v) = h.get(HeaderName::From) {
            w.header_copy("From", v);
        }
        if let Some(v) = h.get(HeaderName::To) {
            let has_tag = h.to().ok().and_then(|t| t.tag()).is_some();
            w.out.extend_from_slice(b"To: ");
            put_value(w.out, v);
            if let (false, Some(tag), true) = (has_tag, to_tag, status > 100) {
                w.out.extend_from_slice(b";tag=");
                put_safe(w.out, tag);
            }
            w.out.extend_from_slice(b"\r\n");
        }
        if let Some(v) = h.get(HeaderName::CallId) {
            w.header_copy("Call-ID", v);
        }
        if let Some(v) = h.get(HeaderName::CSeq) {
            w.header_copy("CSeq", v);
        }
        if req.method == Method::Invite && (101..300).contains(&status) {
            for v in h.get_all(HeaderName::RecordRoute) {
                w.header_copy("Record-Route", v);
            }
        }
        w
    }

    /// Adds our Via: `SIP/2.0/<transport> <sent_by>;branch=<branch>;rport` (RFC 3581).
    /// `branch` must start with the `z9hG4bK` magic cookie.
    pub fn via(&mut self, transport: &str, sent_by: &str, branch: &str) -> &mut Self {
        self.out.extend_from_slice(b"Via: SIP/2.0/");
        put_safe(self.out, transport);
        self.out.push(b' ');
        put_safe(self.out, sent_by);
        self.out.extend_from_slice(b";branch=");
        put_safe(self.out, branch);
        self.out.extend_from_slice(b";rport\r\n");
        self
    }

    /// Adds a header from a received value (folding collapsed).
    pub fn header_copy(&mut self, name: &str, value: &str) -> &mut Self {
        put_safe(self.out, name);
        self.out.extend_from_slice(b": ");
        put_value(self.out, value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Adds a header; CR/LF in the value are removed.
    pub fn header(&mut self, name: &str, value: impl Display) -> &mut Self {
        put_safe(self.out, name);
        self.out.extend_from_slice(b": ");
        let start = self.out.len();
        let _ = write!(self.out, "{value}");
        let mut i = start;
        while i < self.out.len() {
            if matches!(self.out[i], b'\r' | b'\n') {
                self.out.remove(i);
            } else {
                i += 1;
            }
        }
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Ends the header section with `Content-Length` (and `Content-Type` when a body
    /// is given), then the body. Returns the length of the output buffer.
    pub fn finish(self, body: Option<(&str, &[u8])>) -> usize {
        match body {
            Some((ctype, bytes)) => {
                self.out.extend_from_slice(b"Content-Type: ");
                put_safe(self.out, ctype);
                let _ = write!(self.out, "\r\nContent-Length: {}\r\n\r\n", bytes.len());
                self.out.extend_from_slice(bytes);
            }
            None => self.out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        }
        self.out.len()
    }
}
