//! The one error type every speech provider returns.

/// A speech provider failed. The call layer maps every variant to the call-failure path
/// (say `call_failure_message`, transfer to `call_failure_sip_target`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpeechError {
    /// The service could not be reached (connection refused, DNS, TLS handshake).
    #[error("speech service unreachable: {0}")]
    Unreachable(String),
    /// No connection, first byte or next byte within the configured timeout.
    #[error("speech service timed out ({0})")]
    Timeout(&'static str),
    /// Credentials refused (HTTP 401/403, or the IAM token exchange failed).
    #[error("speech service refused the credentials: {0}")]
    Auth(String),
    /// The service answered with something that is not the protocol (bad JSON, bad status,
    /// wrong content type).
    #[error("bad response from speech service: {0}")]
    BadResponse(String),
    /// The connection closed before the stream finished.
    #[error("speech service closed the connection mid-stream")]
    ClosedMidStream,
    /// The request was refused as invalid (unknown voice or model, bad grammar, HTTP 400/404).
    #[error("speech request rejected: {0}")]
    Rejected(String),
    /// The audio format or rate is not supported.
    #[error("unsupported audio format: {0}")]
    UnsupportedAudio(String),
    /// The embedded engine failed (model missing, decoder error).
    #[error("speech engine failed: {0}")]
    Engine(String),
    /// The caller pushed audio faster than it could be consumed (bounded queue full).
    #[error("speech stream overloaded: audio queue full")]
    Overloaded,
    /// The stream was cancelled by the caller.
    #[error("speech stream cancelled")]
    Cancelled,
}
