//! Credentials for the Watson services and the connect/first-byte/idle timeouts.

use std::time::Duration;

use super::SpeechError;

use crate::credentials::CredentialError;
pub use crate::credentials::{Credentials, IBM_IAM_URL as DEFAULT_IAM_URL};

/// Network timeouts. Each is a bound after which the operation fails with
/// [`SpeechError::Timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP/TLS/WebSocket connection established.
    pub connect: Duration,
    /// From request sent to the first byte (HTTP headers / first WebSocket message).
    pub first_byte: Duration,
    /// Between two pieces of a response once it has started, and while waiting for results
    /// after the end of audio.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            first_byte: Duration::from_secs(5),
            idle: Duration::from_secs(5),
        }
    }
}

impl Timeouts {
    /// The bound on one IAM token exchange: its first byte and then its body.
    pub(crate) fn token_exchange(&self) -> std::time::Duration {
        self.first_byte + self.idle
    }
}

impl From<CredentialError> for SpeechError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Refused(_) => SpeechError::Auth(e.to_string()),
            CredentialError::Unreachable(m) => SpeechError::Unreachable(format!("IAM token: {m}")),
            CredentialError::Timeout => SpeechError::Timeout("IAM token"),
            _ => SpeechError::BadResponse(e.to_string()),
        }
    }
}

/// Map a reqwest error onto the typed error.
pub(crate) fn classify(e: &reqwest::Error, what: &'static str) -> SpeechError {
    if e.is_timeout() {
        SpeechError::Timeout(what)
    } else if e.is_connect() {
        SpeechError::Unreachable(format!("{what}: {e}"))
    } else if e.is_body() || e.is_decode() {
        SpeechError::ClosedMidStream
    } else if e.is_request() {
        SpeechError::Unreachable(format!("{what}: {e}"))
    } else {
        SpeechError::BadResponse(format!("{what}: {e}"))
    }
}

/// Map an HTTP status onto the typed error (for non-success statuses).
pub(crate) fn status_error(status: reqwest::StatusCode, body: &str) -> SpeechError {
    let detail = format!(
        "HTTP {status}: {}",
        body.chars().take(200).collect::<String>()
    );
    match status.as_u16() {
        401 | 403 => SpeechError::Auth(detail),
        400 | 404 | 406 | 415 => SpeechError::Rejected(detail),
        _ => SpeechError::BadResponse(detail),
    }
}

/// A client with the connect timeout applied.
pub(crate) fn http_client(t: &Timeouts) -> Result<reqwest::Client, SpeechError> {
    reqwest::Client::builder()
        .connect_timeout(t.connect)
        .build()
        .map_err(|e| SpeechError::Engine(format!("http client: {e}")))
}
