//! The phone integration's settings: the seed's "Advanced options" tab, the plan, and the
//! speech choices. One type shared by SIP admission, the call loop, storage and the
//! admin API, so every layer reads the same field for the same option.

use serde::{Deserialize, Serialize};

/// Longest transfer-failure message the seed allows, in characters.
pub const MAX_TRANSFER_FAILURE_MESSAGE: usize = 1024;

/// Concurrent-call limits of the seed's plans, or an explicit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// 5 concurrent calls.
    Trial,
    /// 100 concurrent calls.
    Plus,
    /// 1,000 concurrent calls.
    Enterprise,
    /// An explicit cap.
    Custom(u32),
}

impl Plan {
    /// How many calls may be up at once under this plan.
    pub fn max_concurrent_calls(self) -> u32 {
        match self {
            Plan::Trial => 5,
            Plan::Plus => 100,
            Plan::Enterprise => 1000,
            Plan::Custom(n) => n,
        }
    }
}

/// How an INVITE over the concurrent-call cap is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BusyResponse {
    /// `486 Busy Here`.
    BusyHere,
    /// `503 Service Unavailable` with `Retry-After: seconds`.
    ServiceUnavailable {
        /// Value of the Retry-After header, in seconds.
        retry_after_secs: u32,
    },
}

/// SIP digest credentials the trunk must present when SIP authentication is on.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipCredentials {
    /// Digest user name.
    pub username: String,
    /// Digest password (never logged).
    pub password: String,
}

impl std::fmt::Debug for SipCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Every advanced option of the seed's phone integration, plus plan and speech choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationSettings {
    /// SIP URI the caller is transferred to when the call fails (speech or assistant down).
    pub call_failure_sip_target: Option<String>,
    /// Said to the caller before that transfer.
    pub call_failure_message: String,
    /// Said when a transfer to an agent fails (at most 1,024 characters).
    pub transfer_failure_message: String,
    /// Hang up after the transfer-failure message (default on).
    pub disconnect_on_transfer_failure: bool,
    /// Require SRTP (RTP/SAVP with SDES `a=crypto`); plain RTP offers get 488.
    pub force_secure_trunking: bool,
    /// Require SIP digest authentication (and TLS) on every inbound request.
    pub sip_auth: Option<SipCredentials>,
    /// INVITE header names copied into the assistant context.
    pub invite_headers_to_extract: Vec<String>,
    /// Do not send `180 Ringing`.
    pub disable_ringing: bool,
    /// Do not put the caller on hold (re-INVITE sendonly) before a REFER.
    pub no_hold_on_transfer: bool,
    /// Concurrent-call cap.
    pub plan: Plan,
    /// How INVITEs over the cap are refused.
    pub busy_response: BusyResponse,
    /// Speech-to-text model, e.g. `en-US_NarrowbandModel`; `None` = the assistant's language.
    pub stt_model: Option<String>,
    /// Speech-to-text custom language model id.
    pub stt_customization_id: Option<String>,
    /// Text-to-speech voice, e.g. `en-US_AllisonV3Voice`; `None` = the assistant's language.
    pub tts_voice: Option<String>,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        Self {
            call_failure_sip_target: None,
            call_failure_message: "Sorry, something went wrong. Let me transfer you to an agent."
                .to_owned(),
            transfer_failure_message:
                "Sorry, the transfer to an agent did not go through. Please call again later."
                    .to_owned(),
            disconnect_on_transfer_failure: true,
            force_secure_trunking: false,
            sip_auth: None,
            invite_headers_to_extract: Vec::new(),
            disable_ringing: false,
            no_hold_on_transfer: false,
            plan: Plan::Plus,
            busy_response: BusyResponse::BusyHere,
            stt_model: None,
            stt_customization_id: None,
            tts_voice: None,
        }
    }
}

/// A fault in the settings, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SettingsError {
    /// The settings field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl IntegrationSettings {
    /// Checks the limits the seed states; SIP URI syntax is checked by the SIP layer's parser.
    pub fn validate(&self) -> Result<(), Vec<SettingsError>> {
        let mut errors = Vec::new();
        let n = self.transfer_failure_message.chars().count();
        if n > MAX_TRANSFER_FAILURE_MESSAGE {
            errors.push(SettingsError {
                field: "transfer_failure_message",
                reason: format!("{n} characters, at most {MAX_TRANSFER_FAILURE_MESSAGE} allowed"),
            });
        }
        if let Some(auth) = &self.sip_auth {
            if auth.username.is_empty() || auth.password.is_empty() {
                errors.push(SettingsError {
                    field: "sip_auth",
                    reason: "user name and password are both required".to_owned(),
                });
            }
        }
        if let Plan::Custom(0) = self.plan {
            errors.push(SettingsError {
                field: "plan",
                reason: "a cap of 0 concurrent calls refuses every call".to_owned(),
            });
        }
        if let Some(t) = &self.call_failure_sip_target {
            if let Err(reason) = check_transfer_target(t) {
                errors.push(SettingsError {
                    field: "call_failure_sip_target",
                    reason,
                });
            }
        }
        for h in &self.invite_headers_to_extract {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b))
            {
                errors.push(SettingsError {
                    field: "invite_headers_to_extract",
                    reason: format!("{h:?} is not a SIP header name"),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A transfer target must be a SIP, SIPS or tel URI (the seed: "a SIP or telephone
/// URI") that the project's own parser reads whole, since it is sent as Refer-To.
fn check_transfer_target(t: &str) -> Result<(), String> {
    let uri = crate::sip::Uri::parse(t).map_err(|e| format!("{t:?} is not a URI: {e}"))?;
    match uri.scheme {
        crate::sip::Scheme::Sip | crate::sip::Scheme::Sips | crate::sip::Scheme::Tel => Ok(()),
        crate::sip::Scheme::Other(s) => Err(format!(
            "{t:?} is a {s}: URI; a sip:, sips: or tel: URI is required"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_failure_target_must_be_a_sip_or_tel_uri() {
        for good in [
            "sip:queue@10.0.0.5",
            "sips:agent@pbx.example.com:5061;transport=tls",
            "sip:+15551230000@[2001:db8::1]",
            "tel:+1-555-123-0000",
        ] {
            let s = IntegrationSettings {
                call_failure_sip_target: Some(good.into()),
                ..Default::default()
            };
            assert_eq!(s.validate(), Ok(()), "{good}");
        }
        for bad in [
            "",
            "queue@10.0.0.5",
            "http://pbx.example.com/queue",
            "<sip:queue@10.0.0.5>",
            "sip:queue@10.0.0.5 extra",
            "sip:queue@10.0.0.5\r\nBYE sip:x SIP/2.0",
            "sip:",
            "sip:queue@",
        ] {
            let s = IntegrationSettings {
                call_failure_sip_target: Some(bad.into()),
                ..Default::default()
            };
            let errs = s.validate().expect_err(bad);
            assert_eq!(errs.len(), 1, "{bad:?}: {errs:?}");
            assert_eq!(errs[0].field, "call_failure_sip_target", "{bad:?}");
        }
    }

    #[test]
    fn plan_caps_match_the_seed() {
        assert_eq!(Plan::Trial.max_concurrent_calls(), 5);
        assert_eq!(Plan::Plus.max_concurrent_calls(), 100);
        assert_eq!(Plan::Enterprise.max_concurrent_calls(), 1000);
        assert_eq!(Plan::Custom(7).max_concurrent_calls(), 7);
    }

    #[test]
    fn transfer_failure_message_limit_is_enforced() {
        let mut s = IntegrationSettings {
            transfer_failure_message: "a".repeat(1024),
            ..Default::default()
        };
        assert!(s.validate().is_ok());
        s.transfer_failure_message.push('a');
        let errs = s.validate().unwrap_err();
        assert_eq!(errs[0].field, "transfer_failure_message");
    }

    #[test]
    fn bad_header_names_are_named() {
        let s = IntegrationSettings {
            invite_headers_to_extract: vec!["X-Account".into(), "bad header".into()],
            ..Default::default()
        };
        let errs = s.validate().unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].reason.contains("bad header"));
    }

    #[test]
    fn credentials_are_redacted_in_debug() {
        let c = SipCredentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
