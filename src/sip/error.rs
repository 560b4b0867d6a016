//! Parse faults of the SIP layer and the wire disposition each one calls for.

/// A fault found while reading a SIP message or one of its header values.
///
/// `at` is a byte offset into the datagram (or stream frame) the message was parsed
/// from, so a log line can point at the offending octet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but line breaks was received.
    #[error("empty message")]
    Empty,
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line at byte {at}")]
    StartLine {
        /// Offset of the fault.
        at: usize,
    },
    /// The status code of a response is not three digits in 100..=699.
    #[error("status code out of range at byte {at}")]
    StatusCode {
        /// Offset of the fault.
        at: usize,
    },
    /// A header line has no colon, an empty or non-token name, or a continuation line
    /// appears before the first header.
    #[error("malformed header line at byte {at}")]
    HeaderLine {
        /// Offset of the fault.
        at: usize,
    },
    /// The header section is not terminated by an empty line.
    #[error("header section not terminated (read {at} bytes)")]
    Incomplete {
        /// Bytes examined.
        at: usize,
    },
    /// The header section is not valid UTF-8.
    #[error("header section is not UTF-8 at byte {at}")]
    Utf8 {
        /// Offset of the fault.
        at: usize,
    },
    /// The header section exceeds the size or count limit.
    #[error("header section over the limit at byte {at}")]
    TooLarge {
        /// Offset where the limit was crossed.
        at: usize,
    },
    /// A typed header value does not follow its grammar.
    #[error("invalid {header} header at byte {at}")]
    Header {
        /// Canonical header name.
        header: &'static str,
        /// Offset of the fault.
        at: usize,
    },
    /// A header the request needs is absent.
    #[error("missing {header} header")]
    Missing {
        /// Canonical header name.
        header: &'static str,
    },
    /// A single-valued header appears more than once.
    #[error("{header} header appears more than once (second at byte {at})")]
    Duplicate {
        /// Canonical header name.
        header: &'static str,
        /// Offset of the second occurrence.
        at: usize,
    },
    /// A URI does not follow RFC 3261 §25 / RFC 3966.
    #[error("malformed URI at byte {at}")]
    Uri {
        /// Offset of the fault.
        at: usize,
    },
}

impl ParseError {
    /// Byte offset of the fault, when it has one.
    pub fn position(&self) -> Option<usize> {
        match *self {
            ParseError::Empty | ParseError::Missing { .. } => None,
            ParseError::StartLine { at }
            | ParseError::StatusCode { at }
            | ParseError::HeaderLine { at }
            | ParseError::Incomplete { at }
            | ParseError::Utf8 { at }
            | ParseError::TooLarge { at }
            | ParseError::Header { at, .. }
            | ParseError::Duplicate { at, .. }
            | ParseError::Uri { at } => Some(at),
        }
    }

    /// Moves the position by `base` (used when a value was parsed out of context).
    pub(crate) fn shifted(self, base: usize) -> Self {
        match self {
            ParseError::StartLine { at } => ParseError::StartLine { at: at + base },
            ParseError::StatusCode { at } => ParseError::StatusCode { at: at + base },
            ParseError::HeaderLine { at } => ParseError::HeaderLine { at: at + base },
            ParseError::Incomplete { at } => ParseError::Incomplete { at: at + base },
            ParseError::Utf8 { at } => ParseError::Utf8 { at: at + base },
            ParseError::TooLarge { at } => ParseError::TooLarge { at: at + base },
            ParseError::Header { header, at } => ParseError::Header {
                header,
                at: at + base,
            },
            ParseError::Duplicate { header, at } => ParseError::Duplicate {
                header,
                at: at + base,
            },
            ParseError::Uri { at } => ParseError::Uri { at: at + base },
            other => other,
        }
    }

    /// What a UAS does with a message that failed to parse with this fault.
    ///
    /// `input` is the received datagram: a broken *response* is always dropped
    /// (RFC 3261 §8.1.3.1, RFC 4475 §3.1.2.19); a broken request gets 400, or 513 when
    /// the header section is over the limit. Only a request whose Via, From, To,
    /// Call-ID and CSeq could be read can actually be answered; the transport drops
    /// the rest (and counts them).
    pub fn disposition(&self, input: &[u8]) -> Disposition {
        let start = input
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(input.len());
        let rest = &input[start..];
        if rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"SIP/") {
            return Disposition::Drop;
        }
        match self {
            ParseError::Empty => Disposition::Drop,
            ParseError::TooLarge { .. } => Disposition::Respond(513),
            _ => Disposition::Respond(400),
        }
    }
}

/// What the transaction user must do with a received message that it cannot process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answer with this status code (statelessly if no transaction exists yet).
    Respond(u16),
    /// Discard silently (count it).
    Drop,
}
