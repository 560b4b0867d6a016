//! The message parser: start line, header lines (folding, compact names, `Name : value`,
//! LF-only line ends), Content-Length framing. Bounds-checked, allocation: one `Vec` of
//! header spans per message.

use bytes::Bytes;

use super::error::ParseError;
use super::header::{parse_u32, HeaderName};
use super::message::{
    FramingFault, HeaderField, Headers, Method, Request, Response, SipMessage, Span,
};
use super::params::is_token;

/// Largest header section accepted (bytes).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 256;

/// End of the line starting at `i`: (index of CR/LF that ends it, index after LF).
fn line_at(b: &[u8], i: usize) -> Result<(usize, usize), ParseError> {
    match memchr::memchr(b'\n', &b[i..]) {
        Some(n) => {
            let lf = i + n;
            let end = if lf > i && b[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            Ok((end, lf + 1))
        }
        None => Err(ParseError::Incomplete { at: b.len() }),
    }
}

fn trim_end_ws(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    end
}

/// Parses one SIP message from `buf` (a UDP datagram, or one frame cut from a stream
/// with [`frame_len`]). Bytes after Content-Length are ignored (RFC 3261 §18.3).
///
/// Only structural faults fail here; header grammar is checked by the typed accessors
/// and [`super::check`], so a malformed but framed request can still be answered.
pub fn parse(buf: Bytes) -> Result<SipMessage, ParseError> {
    let b: &[u8] = &buf;
    let mut pos = 0;
    while pos < b.len() && matches!(b[pos], b'\r' | b'\n') {
        pos += 1;
    }
    if pos == b.len() {
        return Err(ParseError::Empty);
    }
    let (sl_end, mut cur) = line_at(b, pos)?;
    let mut fields = Vec::with_capacity(16);
    let body_start = loop {
        if cur - pos > MAX_HEAD_BYTES {
            return Err(ParseError::TooLarge { at: cur });
        }
        let (le, nx) = line_at(b, cur)?;
        if le == cur {
            break nx;
        }
        if matches!(b[cur], b' ' | b'\t') {
            let last: &mut HeaderField = fields
                .last_mut()
                .ok_or(ParseError::HeaderLine { at: cur })?;
            let end = trim_end_ws(b, cur, le);
            if last.value.start == last.value.end {
                let mut s = cur;
                while s < end && matches!(b[s], b' ' | b'\t') {
                    s += 1;
                }
                last.value = Span::new(s, end.max(s));
            } else if end > cur {
                last.value.end = end as u32;
            }
        } else {
            let colon = memchr::memchr(b':', &b[cur..le])
                .map(|c| c + cur)
                .ok_or(ParseError::HeaderLine { at: cur })?;
            let name_end = trim_end_ws(b, cur, colon);
            if name_end == cur || !b[cur..name_end].iter().all(|&c| is_token(c)) {
                return Err(ParseError::HeaderLine { at: cur });
            }
            let mut vs = colon + 1;
            while vs < le && matches!(b[vs], b' ' | b'\t') {
                vs += 1;
            }
            let ve = trim_end_ws(b, vs, le);
            if fields.len() >= MAX_HEADERS {
                return Err(ParseError::TooLarge { at: cur });
            }
            fields.push(HeaderField {
                name: HeaderName::from_bytes(&b[cur..name_end]),
                raw_name: Span::new(cur, name_end),
                value: Span::new(vs, ve),
            });
        }
        cur = nx;
    };
    if let Err(e) = std::str::from_utf8(&b[pos..body_start]) {
        return Err(ParseError::Utf8 {
            at: pos + e.valid_up_to(),
        });
    }

    // Framing by Content-Length.
    let available = b.len() - body_start;
    let mut framing = None;
    let mut declared: Option<u32> = None;
    for f in fields
        .iter()
        .filter(|f| f.name == HeaderName::ContentLength)
    {
        let v = &b[f.value.start as usize..f.value.end as usize];
        let v = std::str::from_utf8(v).unwrap_or("");
        match parse_u32(v.trim_matches([' ', '\t', '\r', '\n'])) {
            None => framing = Some(FramingFault::Invalid),
            Some(n) => match declared {
                Some(d) if d != n => framing = framing.or(Some(FramingFault::Conflict)),
                _ => declared = Some(n),
            },
        }
    }
    let body_len = match declared {
        Some(n) if n as usize > available => {
            framing = framing.or(Some(FramingFault::Truncated));
            available
        }
        Some(n) if framing.is_none() => n as usize,
        _ => available,
    };
    let body = buf.slice(body_start..body_start + body_len);

    let line = &b[pos..sl_end];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        let sp = memchr::memchr(b' ', line).ok_or(ParseError::StartLine { at: sl_end })?;
        let code = &line[sp + 1..];
        let digits = code.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits != 3 || (code.len() > 3 && code[3] != b' ') {
            return Err(ParseError::StatusCode { at: pos + sp + 1 });
        }
        let status = u16::from(code[0] - b'0') * 100
            + u16::from(code[1] - b'0') * 10
            + u16::from(code[2] - b'0');
        if !(100..=699).contains(&status) {
            return Err(ParseError::StatusCode { at: pos + sp + 1 });
        }
        let rs = (pos + sp + 5).min(sl_end);
        return Ok(SipMessage::Response(Response {
            status,
            reason: Span::new(rs, sl_end.max(rs)),
            version: Span::new(pos, pos + sp),
            headers: Headers {
                buf: buf.clone(),
                fields,
            },
            body,
            framing,
        }));
    }
    let end = trim_end_ws(b, pos, sl_end);
    let line = &b[pos..end];
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine { at: pos })?;
    let sp2 = memchr::memrchr(b' ', line).ok_or(ParseError::StartLine { at: pos })?;
    if sp1 == 0 || sp2 <= sp1 || !line[..sp1].iter().all(|&c| is_token(c)) {
        return Err(ParseError::StartLine { at: pos });
    }
    let version = &line[sp2 + 1..];
    if version.len() < 5 || !version[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(ParseError::StartLine { at: pos + sp2 + 1 });
    }
    let mut us = sp1 + 1;
    let mut ue = sp2;
    while us < ue && line[us] == b' ' {
        us += 1;
    }
    while ue > us && line[ue - 1] == b' ' {
        ue -= 1;
    }
    if us == ue {
        return Err(ParseError::StartLine { at: pos + sp1 });
    }
    let method = std::str::from_utf8(&line[..sp1]).unwrap_or("");
    Ok(SipMessage::Request(Request {
        method: Method::from_token(method),
        uri: Span::new(pos + us, pos + ue),
        version: Span::new(pos + sp2 + 1, end),
        headers: Headers {
            buf: buf.clone(),
            fields,
        },
        body,
        framing,
    }))
}

/// Length of the first complete message in a stream buffer (TCP/TLS framing,
/// RFC 3261 §18.3): `Ok(None)` while the header section or body is still incomplete.
/// A missing Content-Length counts as 0. Leading CR LF keep-alives are included in the
/// length so the caller can consume them.
pub fn frame_len(b: &[u8]) -> Result<Option<usize>, ParseError> {
    let mut pos = 0;
    while pos < b.len() && matches!(b[pos], b'\r' | b'\n') {
        pos += 1;
    }
    let mut cur = pos;
    let mut len: Option<u32> = None;
    loop {
        if cur - pos > MAX_HEAD_BYTES {
            return Err(ParseError::TooLarge { at: cur });
        }
        let (le, nx) = match line_at(b, cur) {
            Ok(x) => x,
            Err(_) => return Ok(None),
        };
        if le == cur {
            if cur == pos {
                return Ok(None);
            }
            let total = nx + len.unwrap_or(0) as usize;
            return Ok((total <= b.len()).then_some(total));
        }
        let line = &b[cur..le];
        if let Some(c) = memchr::memchr(b':', line) {
            let name = &line[..trim_end_ws(line, 0, c)];
            if HeaderName::from_bytes(name) == HeaderName::ContentLength {
                let v = std::str::from_utf8(&line[c + 1..]).unwrap_or("");
                let n = parse_u32(v.trim_matches([' ', '\t'])).ok_or(ParseError::Header {
                    header: "Content-Length",
                    at: cur + c + 1,
                })?;
                if len.is_some_and(|l| l != n) {
                    return Err(ParseError::Duplicate {
                        header: "Content-Length",
                        at: cur,
                    });
                }
                len = Some(n);
            }
        }
        cur = nx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{check_request, HeaderName, Host, MessageWriter, UasPolicy};

    const TRUNK: &str = "INVITE sip:+19585550123@gw.example.com;user=phone SIP/2.0\n\
v: SIP/2.0/UDP [2001:db8::7]:5062;branch=z9hG4bKx1;rport\n\
f: \"Caller\" <sip:+15551230000@trunk.example.net>;tag=a1\n\
t: <tel:+1-958-555-0123>\n\
i: call-1@trunk\n\
CSeq : 1\n INVITE\n\
m: <sip:trunk@[2001:db8::7]:5062>\n\
k: timer, replaces\n\
x: 1800;refresher=uac\n\
Max-Forwards: 70\n\
c: application/sdp\n\
l: 4\n\
\n\
v=0\ntrailing";

    fn req(s: &str) -> Request {
        match parse(Bytes::copy_from_slice(s.as_bytes())) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lf_only_compact_folded_ipv6_tel() {
        let r = req(TRUNK);
        let h = &r.headers;
        let v = h.top_via().unwrap();
        assert_eq!(v.host, Host::Ipv6("2001:db8::7".parse().unwrap()));
        assert_eq!(
            (v.port, v.rport(), v.rfc3261_branch()),
            (Some(5062), Some(None), Some("z9hG4bKx1"))
        );
        assert_eq!(
            h.to().unwrap().uri.telephone_number().as_deref(),
            Some("+19585550123")
        );
        assert_eq!(h.from().unwrap().display_name().unwrap(), "Caller");
        assert_eq!(h.call_id().unwrap(), "call-1@trunk");
        assert_eq!(h.cseq().unwrap().seq, 1);
        assert_eq!(h.session_expires().unwrap(), Some((1800, Some("uac"))));
        assert_eq!(
            h.tokens(HeaderName::Supported).collect::<Vec<_>>(),
            ["timer", "replaces"]
        );
        assert_eq!(&r.body[..], b"v=0\n", "body limited to Content-Length");
        assert_eq!(r.called_number().as_deref(), Some("+19585550123"));
        assert!(check_request(&r, &UasPolicy::GATEWAY).is_ok());
        let tight = UasPolicy {
            max_body: 3,
            ..UasPolicy::GATEWAY
        };
        assert_eq!(check_request(&r, &tight).unwrap_err().status, 413);
    }

    #[test]
    fn structural_faults_have_positions() {
        let e = parse(Bytes::from_static(
            b"INVITE sip:a@b SIP/2.0\r\nNoColonHere\r\n\r\n",
        ))
        .unwrap_err();
        assert_eq!(e, ParseError::HeaderLine { at: 24 });
        assert_eq!(
            e.disposition(b"INVITE"),
            crate::sip::Disposition::Respond(400)
        );
        let e = parse(Bytes::from_static(b"SIP/2.0 4294967301 x\r\n\r\n")).unwrap_err();
        assert_eq!(
            e.disposition(b"SIP/2.0 4294967301 x"),
            crate::sip::Disposition::Drop
        );
        assert!(matches!(
            parse(Bytes::from_static(b"\r\n\r\n")),
            Err(ParseError::Empty)
        ));
        assert!(matches!(
            parse(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n")),
            Err(ParseError::Incomplete { .. })
        ));
        assert!(matches!(
            parse(Bytes::from_static(b" OPTIONS sip:a@b SIP/2.0\r\n\r\n")),
            Err(ParseError::StartLine { .. })
        ));
        assert!(matches!(
            parse(Bytes::from_static(
                b"OPTIONS sip:a@b SIP/2.0\r\n x: y\r\n\r\n"
            )),
            Err(ParseError::HeaderLine { .. })
        ));
        assert!(matches!(
            parse(Bytes::from_static(
                b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n"
            )),
            Err(ParseError::Utf8 { at: 28 })
        ));
    }

    #[test]
    fn stream_framing() {
        let one = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";
        let mut two = b"\r\n\r\n".to_vec();
        two.extend_from_slice(one);
        two.extend_from_slice(b"NEXT");
        assert_eq!(frame_len(&two).unwrap(), Some(4 + one.len()));
        assert_eq!(frame_len(&one[..one.len() - 1]).unwrap(), None);
        assert_eq!(frame_len(b"OPTIONS sip:a@b SIP/2.0\r\n").unwrap(), None);
        assert!(frame_len(b"X a SIP/2.0\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(frame_len(b"X a SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\n").is_err());
    }

    #[test]
    fn response_to_request_round_trips() {
        let r = req(TRUNK);
        let mut out = Vec::new();
        let mut w = MessageWriter::response_to(&mut out, &r, 200, None, Some("gw1"));
        w.header("Contact", "<sip:gw@127.0.0.1:5060>");
        w.finish(Some(("application/sdp", b"v=0\r\n")));
        let resp = match parse(Bytes::from(out)) {
            Ok(SipMessage::Response(resp)) => resp,
            other => panic!("{other:?}"),
        };
        assert_eq!((resp.status, resp.reason()), (200, "OK"));
        let h = &resp.headers;
        assert_eq!(h.to().unwrap().tag(), Some("gw1"));
        assert_eq!(h.from().unwrap().tag(), Some("a1"));
        assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bKx1"));
        assert_eq!(
            h.cseq().unwrap().method,
            Method::Invite,
            "folded CSeq unfolded"
        );
        assert_eq!(&resp.body[..], b"v=0\r\n");
        assert!(crate::sip::check_response(&resp).is_ok());

        let mut out = Vec::new();
        let mut w = MessageWriter::request(
            &mut out,
            &Method::Refer,
            "sip:+15551230000@trunk.example.net",
        );
        w.via("UDP", "[::1]:5060", "z9hG4bKref1");
        w.header("Refer-To", "<sip:agent@pbx.example.com>")
            .header("Evil", "a\r\nInjected: 1");
        w.finish(None);
        let r2 = req(std::str::from_utf8(&out).unwrap());
        assert_eq!(r2.method, Method::Refer);
        let v = r2.headers.top_via().unwrap();
        assert_eq!(
            (v.rfc3261_branch(), v.rport(), v.port),
            (Some("z9hG4bKref1"), Some(None), Some(5060))
        );
        assert_eq!(r2.headers.refer_to().unwrap().uri.user, Some("agent"));
        assert_eq!(r2.headers.get_named("Injected").count(), 0);
    }
}
