//! Stream framing for SIP over TCP and TLS (RFC 3261 §18.3): a message ends
//! Content-Length bytes after the blank line. Sans-IO: bytes in, whole messages (or a
//! typed fault) out. Leading CRLFs are keep-alives (RFC 5626 §4.4.1): a double CRLF
//! "ping" is answered with a single CRLF "pong".

/// Size limits applied before a message is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest start line + headers, in bytes.
    pub max_header: usize,
    /// Longest body, in bytes.
    pub max_body: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_header: 16 * 1024,
            max_body: 64 * 1024,
        }
    }
}

/// A stream that cannot be framed. The connection is answered (when the message was a
/// request) and then closed, since the next message's start is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// No blank line within `max_header` bytes: 513 Message Too Large.
    #[error("header section longer than {0} bytes")]
    HeaderTooLarge(usize),
    /// Content-Length above `max_body`: 413 Request Entity Too Large.
    #[error("body of {0} bytes is over the limit")]
    BodyTooLarge(usize),
    /// Content-Length missing on a stream transport: 400.
    #[error("Content-Length missing")]
    MissingContentLength,
    /// Content-Length not a number, negative, or given twice with different values: 400.
    #[error("Content-Length invalid")]
    BadContentLength,
}

impl FrameError {
    /// The SIP status that answers this fault.
    pub fn status(self) -> u16 {
        match self {
            FrameError::HeaderTooLarge(_) => 513,
            FrameError::BodyTooLarge(_) => 413,
            FrameError::MissingContentLength | FrameError::BadContentLength => 400,
        }
    }
}

/// What the framer found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// `n` bytes of CRLF keep-alive to discard; `pong` when a CRLFCRLF ping was seen.
    KeepAlive {
        /// Bytes to discard.
        consumed: usize,
        /// Answer with a single CRLF.
        pong: bool,
    },
    /// A whole message of `len` bytes starts at the front.
    Message {
        /// Length of the message, headers and body.
        len: usize,
    },
}

/// Looks at the front of `buf` for one frame.
pub fn next_frame(buf: &[u8], limits: FrameLimits) -> Result<Frame, FrameError> {
    let crlfs = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if crlfs > 0 {
        let pong = buf[..crlfs].windows(4).any(|w| w == b"\r\n\r\n");
        return Ok(Frame::KeepAlive {
            consumed: crlfs,
            pong,
        });
    }
    let Some((head_end, body_start)) = find_blank_line(buf, limits.max_header) else {
        if buf.len() > limits.max_header {
            return Err(FrameError::HeaderTooLarge(limits.max_header));
        }
        return Ok(Frame::Incomplete);
    };
    let body_len = content_length(&buf[..head_end])?;
    if body_len > limits.max_body {
        return Err(FrameError::BodyTooLarge(body_len));
    }
    let len = body_start + body_len;
    if buf.len() < len {
        return Ok(Frame::Incomplete);
    }
    Ok(Frame::Message { len })
}

/// Finds the blank line ending the headers: (end of headers, start of body).
fn find_blank_line(buf: &[u8], max: usize) -> Option<(usize, usize)> {
    let scan = &buf[..buf.len().min(max + 4)];
    let mut i = 0;
    while i < scan.len() {
        if scan[i] == b'\n' {
            if scan.get(i + 1) == Some(&b'\n') {
                return Some((i + 1, i + 2));
            }
            if scan.get(i + 1) == Some(&b'\r') && scan.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Reads Content-Length (or its compact form `l`) from a header block.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found: Option<usize> = None;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue; // folded continuation
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = value
            .iter()
            .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(FrameError::BadContentLength);
        }
        found = Some(n);
    }
    found.ok_or(FrameError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: FrameLimits = FrameLimits {
        max_header: 256,
        max_body: 16,
    };

    #[test]
    fn frames_two_pipelined_messages_by_content_length() {
        let a = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 4\r\n\r\nabcd";
        let b = b"BYE sip:a SIP/2.0\r\nl:0\r\n\r\n";
        let mut buf = a.to_vec();
        buf.extend_from_slice(b);
        assert_eq!(next_frame(&buf, L), Ok(Frame::Message { len: a.len() }));
        assert_eq!(
            next_frame(&buf[a.len()..], L),
            Ok(Frame::Message { len: b.len() })
        );
        assert_eq!(next_frame(&a[..a.len() - 1], L), Ok(Frame::Incomplete));
    }

    #[test]
    fn lf_only_and_spaced_colon_are_framed() {
        let m = b"BYE sip:a SIP/2.0\nContent-Length : 2\n\nok";
        assert_eq!(next_frame(m, L), Ok(Frame::Message { len: m.len() }));
    }

    #[test]
    fn keepalive_ping_gets_a_pong() {
        assert_eq!(
            next_frame(b"\r\n\r\nBYE", L),
            Ok(Frame::KeepAlive {
                consumed: 4,
                pong: true
            })
        );
        assert_eq!(
            next_frame(b"\r\n", L),
            Ok(Frame::KeepAlive {
                consumed: 2,
                pong: false
            })
        );
    }

    #[test]
    fn limits_and_bad_lengths_map_to_statuses() {
        let big = vec![b'a'; 300];
        assert_eq!(next_frame(&big, L).map_err(FrameError::status), Err(513));
        let body = b"INVITE sip:a SIP/2.0\r\nContent-Length: 17\r\n\r\n";
        assert_eq!(next_frame(body, L).map_err(FrameError::status), Err(413));
        let neg = b"INVITE sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(next_frame(neg, L), Err(FrameError::BadContentLength));
        let two = b"INVITE sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n";
        assert_eq!(next_frame(two, L), Err(FrameError::BadContentLength));
        let none = b"INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(next_frame(none, L), Err(FrameError::MissingContentLength));
    }
}
