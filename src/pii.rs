//! Personal data in logs: every phone number and SIP URI that reaches a log line goes
//! through [`Pii`], which prints it according to the process-wide [`Redaction`] mode.
//!
//! ```
//! use voxgate::pii::{self, Pii, Redaction};
//! pii::set_redaction(Redaction::Partial);
//! assert_eq!(Pii("+19585550123").to_string(), "+1958555****");
//! pii::set_redaction(Redaction::None);
//! ```
//!
//! Modes: `none` prints the value; `partial` masks the last four digits (enough to tell
//! numbers apart by country and area, and to search by prefix); `hash` prints
//! `h:` + the first 16 hex digits of MD5(value), so log search by a full number still
//! works (the searcher hashes the query the same way, see [`search_needles`]).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// How phone numbers and SIP URIs are written to logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redaction {
    /// Written as is.
    #[default]
    None,
    /// Last four digits masked with `*`.
    Partial,
    /// Replaced by `h:` and 16 hex digits of the MD5 of the value.
    Hash,
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Sets the process-wide redaction mode (applies to log lines written from now on).
pub fn set_redaction(mode: Redaction) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// The process-wide redaction mode.
pub fn redaction() -> Redaction {
    match MODE.load(Ordering::Relaxed) {
        1 => Redaction::Partial,
        2 => Redaction::Hash,
        _ => Redaction::None,
    }
}

/// A phone number or SIP URI on its way into a log line. `Display` applies the
/// redaction mode; use it as a tracing field: `number = %Pii(&n)`.
#[derive(Clone, Copy)]
pub struct Pii<'a>(pub &'a str);

impl fmt::Display for Pii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_with(self.0, redaction()))
    }
}

impl fmt::Debug for Pii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_with(self.0, redaction()))
    }
}

/// `value` as it appears in logs under `mode`.
pub fn redact_with(value: &str, mode: Redaction) -> String {
    match mode {
        Redaction::None => value.to_owned(),
        Redaction::Partial => {
            // Mask the last four ASCII digits of the user part (before `@` in a URI).
            let (user, host) = match value.find('@') {
                Some(i) => value.split_at(i),
                None => (value, ""),
            };
            let mut out: Vec<char> = user.chars().collect();
            let mut left = 4;
            for c in out.iter_mut().rev() {
                if left == 0 {
                    break;
                }
                if c.is_ascii_digit() {
                    *c = '*';
                    left -= 1;
                }
            }
            let mut s: String = out.into_iter().collect();
            s.push_str(host);
            s
        }
        Redaction::Hash => {
            let digest = Md5::digest(value.as_bytes());
            format!("h:{}", &hex::encode(digest)[..16])
        }
    }
}

/// The strings a log search for `query` should look for: the query itself and, when
/// redaction is on, its redacted form (so searching a full number finds hashed lines).
pub fn search_needles(query: &str) -> Vec<String> {
    let mut needles = vec![query.to_owned()];
    let mode = redaction();
    if mode != Redaction::None {
        let r = redact_with(query, mode);
        if r != query {
            needles.push(r);
        }
    }
    needles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_masks_last_four_digits_only() {
        assert_eq!(
            redact_with("sip:+19585550123@10.0.0.1", Redaction::Partial),
            "sip:+1958555****@10.0.0.1"
        );
        assert_eq!(
            redact_with("+19585550123", Redaction::Partial),
            "+1958555****"
        );
    }

    #[test]
    fn hash_is_stable_and_hides_the_number() {
        let a = redact_with("+19585550123", Redaction::Hash);
        assert_eq!(a, redact_with("+19585550123", Redaction::Hash));
        assert!(!a.contains("5550123"));
        assert_ne!(a, redact_with("+19585550124", Redaction::Hash));
    }
}
