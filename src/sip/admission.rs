//! The phone integration's admission rules for inbound INVITEs (seed "Advanced
//! options"): configured numbers, force secure trunking, the concurrent-call cap, and
//! the INVITE headers copied for the assistant. Pure functions over settings.

use std::collections::HashSet;

use crate::settings::{BusyResponse, IntegrationSettings};

/// Longest copied header value, in bytes.
pub const MAX_COPIED_HEADER_VALUE: usize = 1024;
/// Most headers copied from one INVITE.
pub const MAX_COPIED_HEADERS: usize = 32;

/// Why an INVITE is refused, with the response that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The called number is not one of ours: 403.
    #[error("called number not configured")]
    UnknownNumber,
    /// SRTP is required and the offer is plain RTP: 488.
    #[error("SRTP required")]
    SrtpRequired,
    /// Over the concurrent-call cap: 486, or 503 with Retry-After.
    #[error("concurrent-call cap of {cap} reached")]
    Busy {
        /// The cap.
        cap: u32,
    },
}

impl Refusal {
    /// The status and any extra header for the refusal under `settings`.
    pub fn response(self, settings: &IntegrationSettings) -> (u16, Option<(&'static str, String)>) {
        match self {
            Refusal::UnknownNumber => (403, None),
            Refusal::SrtpRequired => (
                488,
                Some((
                    "Warning",
                    "399 voxgate \"SRTP (RTP/SAVP) required\"".to_owned(),
                )),
            ),
            Refusal::Busy { .. } => match settings.busy_response {
                BusyResponse::BusyHere => (486, None),
                BusyResponse::ServiceUnavailable { retry_after_secs } => {
                    (503, Some(("Retry-After", retry_after_secs.to_string())))
                }
            },
        }
    }
}

/// Normalises a dialled number to E.164 (`+` and 1–15 digits), dropping visual
/// separators. A number without `+` is taken as already international.
pub fn e164(s: &str) -> Option<String> {
    let mut digits = String::with_capacity(16);
    for (i, c) in s.trim().chars().enumerate() {
        match c {
            '+' if i == 0 => {}
            '0'..='9' => digits.push(c),
            '-' | '.' | ' ' | '(' | ')' => {}
            _ => return None,
        }
    }
    (1..=15)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

/// The called number: the Request-URI's, else the To URI's.
pub fn called_number(uri_number: Option<&str>, to_number: Option<&str>) -> Option<String> {
    uri_number
        .and_then(e164)
        .or_else(|| to_number.and_then(e164))
}

/// Applies the rules in order: number (403), SRTP (488), cap (486/503).
pub fn admit(
    settings: &IntegrationSettings,
    numbers: &HashSet<String>,
    called: Option<&str>,
    offer_is_srtp: bool,
    active_calls: usize,
) -> Result<(), Refusal> {
    match called {
        Some(n) if numbers.contains(n) => {}
        _ => return Err(Refusal::UnknownNumber),
    }
    if settings.force_secure_trunking && !offer_is_srtp {
        return Err(Refusal::SrtpRequired);
    }
    let cap = settings.plan.max_concurrent_calls();
    if active_calls >= cap as usize {
        return Err(Refusal::Busy { cap });
    }
    Ok(())
}

/// Copies the configured headers from an INVITE: names as configured, values with
/// control characters replaced by spaces, trimmed, and cut to
/// [`MAX_COPIED_HEADER_VALUE`] bytes at a character boundary.
pub fn copy_headers(
    settings: &IntegrationSettings,
    headers: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for wanted in settings
        .invite_headers_to_extract
        .iter()
        .take(MAX_COPIED_HEADERS)
    {
        let Some((_, v)) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(wanted)) else {
            continue;
        };
        let clean: String = v
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut clean = clean.trim().to_owned();
        if clean.len() > MAX_COPIED_HEADER_VALUE {
            let mut end = MAX_COPIED_HEADER_VALUE;
            while !clean.is_char_boundary(end) {
                end -= 1;
            }
            clean.truncate(end);
        }
        out.push((wanted.clone(), clean));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Plan;

    fn numbers() -> HashSet<String> {
        ["+19585550123".to_owned()].into_iter().collect()
    }

    #[test]
    fn called_number_is_compared_in_e164() {
        assert_eq!(e164("+1 958 555-0123").as_deref(), Some("+19585550123"));
        assert_eq!(e164("19585550123").as_deref(), Some("+19585550123"));
        assert_eq!(e164("alice"), None);
        assert_eq!(e164("+1234567890123456"), None, "16 digits");
        let c = called_number(None, Some("19585550123"));
        assert_eq!(
            admit(
                &IntegrationSettings::default(),
                &numbers(),
                c.as_deref(),
                false,
                0
            ),
            Ok(())
        );
        let c = called_number(Some("+19585550124"), Some("+19585550123"));
        assert_eq!(
            admit(
                &IntegrationSettings::default(),
                &numbers(),
                c.as_deref(),
                false,
                0
            ),
            Err(Refusal::UnknownNumber)
        );
    }

    #[test]
    fn srtp_and_cap_refusals_map_to_configured_statuses() {
        let mut s = IntegrationSettings {
            force_secure_trunking: true,
            plan: Plan::Trial,
            ..Default::default()
        };
        let n = Some("+19585550123");
        let r = admit(&s, &numbers(), n, false, 0).unwrap_err();
        assert_eq!(r.response(&s).0, 488);
        assert_eq!(admit(&s, &numbers(), n, true, 4), Ok(()));
        let r = admit(&s, &numbers(), n, true, 5).unwrap_err();
        assert_eq!(r, Refusal::Busy { cap: 5 });
        assert_eq!(r.response(&s), (486, None));
        s.busy_response = BusyResponse::ServiceUnavailable {
            retry_after_secs: 30,
        };
        assert_eq!(
            r.response(&s),
            (503, Some(("Retry-After", "30".to_owned())))
        );
    }

    #[test]
    fn copied_headers_are_sanitised_and_bounded() {
        let s = IntegrationSettings {
            invite_headers_to_extract: vec![
                "X-Account".into(),
                "X-Missing".into(),
                "X-Long".into(),
            ],
            ..Default::default()
        };
        let h = vec![
            ("x-account".to_owned(), " 12\u{7}345 ".to_owned()),
            ("X-Long".to_owned(), "é".repeat(600)),
        ];
        let out = copy_headers(&s, &h);
        assert_eq!(out[0], ("X-Account".to_owned(), "12 345".to_owned()));
        assert_eq!(out.len(), 2);
        assert!(out[1].1.len() <= MAX_COPIED_HEADER_VALUE && out[1].1.len() >= 1022);
    }
}
