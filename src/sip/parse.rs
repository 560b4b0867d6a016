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
