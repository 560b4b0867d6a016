//! Transfers by REFER (RFC 3515): the request's extra headers and the outcome read
//! from NOTIFY message/sipfrag bodies.

/// Longest value of a custom header we put on a REFER, in bytes (seed limit).
pub const MAX_REFER_HEADER_VALUE: usize = 1024;

/// How a transfer went, as the NOTIFYs (or their absence) tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The REFER was accepted or a provisional sipfrag arrived.
    Trying,
    /// The transfer target answered (2xx sipfrag).
    Succeeded,
    /// The REFER was refused, or the target answered with this failure status.
    Failed(u16),
    /// No final outcome in time.
    TimedOut,
}

impl TransferOutcome {
    /// True for every outcome except `Trying`.
    pub fn is_final(self) -> bool {
        !matches!(self, TransferOutcome::Trying)
    }
}

/// A transfer the call layer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferRequest {
    /// The Refer-To URI (sip:, sips: or tel:).
    pub target: String,
    /// The Referred-By URI, if any.
    pub referred_by: Option<String>,
    /// Extra headers (name, value); values over 1,024 bytes are refused.
    pub headers: Vec<(String, String)>,
}

/// Why a REFER could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferError {
    /// A custom header value is too long or holds line breaks.
    #[error("header {0}: value over 1024 bytes or not a single line")]
    BadHeader(String),
    /// The target is not a sip:, sips: or tel: URI or holds characters that would
    /// break the header.
    #[error("Refer-To {0:?} is not a SIP or tel URI")]
    BadTarget(String),
    /// The Referred-By value is neither a URI nor a single name-addr.
    #[error("Referred-By {0:?} is not a URI or name-addr")]
    BadReferredBy(String),
}

impl ReferRequest {
    /// Checks the limits before anything is sent.
    pub fn validate(&self) -> Result<(), ReferError> {
        let t = self.target.to_ascii_lowercase();
        let scheme_ok = t.starts_with("sip:") || t.starts_with("sips:") || t.starts_with("tel:");
        if !scheme_ok
            || self
                .target
                .bytes()
                .any(|b| b < 0x21 || b == b'<' || b == b'>')
        {
            return Err(ReferError::BadTarget(self.target.clone()));
        }
        for (n, v) in &self.headers {
            let name_ok = !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b));
            if !name_ok
                || v.len() > MAX_REFER_HEADER_VALUE
                || v.bytes().any(|b| b == b'\r' || b == b'\n')
            {
                return Err(ReferError::BadHeader(n.clone()));
            }
        }
        Ok(())
    }
}

/// Reads the status code of a message/sipfrag body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let line = body.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..700).contains(c))
}

/// The outcome a sipfrag status means.
pub fn outcome_of(status: u16) -> TransferOutcome {
    match status {
        100..=199 => TransferOutcome::Trying,
        200..=299 => TransferOutcome::Succeeded,
        s => TransferOutcome::Failed(s),
    }
}

#[cfg(test)]
mod rfc3515 {
    use super::*;

    #[test]
    fn sipfrag_statuses_map_to_outcomes() {
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying\r\n"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 486 Busy Here\r\n"), Some(486));
        assert_eq!(
            sipfrag_status(b"SIP/2.0 2000 OK"),
            None,
            "tampered: four digits"
        );
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(outcome_of(183), TransferOutcome::Trying);
        assert_eq!(outcome_of(202), TransferOutcome::Succeeded);
        assert_eq!(outcome_of(603), TransferOutcome::Failed(603));
    }

    #[test]
    fn refer_headers_are_bounded() {
        let mut r = ReferRequest {
            target: "sip:agent@pbx.example.com".into(),
            referred_by: None,
            headers: vec![("X-Context".into(), "a".repeat(1024))],
        };
        assert_eq!(r.validate(), Ok(()));
        r.headers[0].1.push('a');
        assert!(matches!(r.validate(), Err(ReferError::BadHeader(_))));
        r.headers[0].1 = "x\r\nBYE".into();
        assert!(r.validate().is_err());
        r.headers.clear();
        r.target = "http://x".into();
        assert!(matches!(r.validate(), Err(ReferError::BadTarget(_))));
    }
}
