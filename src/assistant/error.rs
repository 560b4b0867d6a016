//! Errors of the assistant layer.

/// Why an assistant turn failed. The call layer maps every variant to its call-failure
/// path; the variants say what to log and whether retrying could help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssistantError {
    /// The service could not be reached (connection refused, DNS, reset).
    #[error("assistant unreachable: {0}")]
    Unreachable(String),
    /// The service did not answer in time.
    #[error("assistant timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Credentials were refused (HTTP 401/403 or the IAM token exchange failed).
    #[error("assistant authentication failed: {0}")]
    Auth(String),
    /// The session is unknown to the service (HTTP 404 on a session URL, or expired).
    #[error("assistant session not found: {0}")]
    SessionNotFound(String),
    /// The service answered with a non-success status.
    #[error("assistant HTTP {status}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The service's error text, if any.
        message: String,
    },
    /// The service answered 2xx with a body that is not a v2 message response.
    #[error("assistant sent a bad response: {0}")]
    BadResponse(String),
    /// The dialog skill could not be loaded.
    #[error(transparent)]
    Skill(#[from] SkillError),
    /// The request was rejected before it was sent (bad URL, bad input).
    #[error("invalid assistant request: {0}")]
    InvalidRequest(String),
}

impl AssistantError {
    /// The HTTP status this error carries, if it came from an HTTP answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            AssistantError::Http { status, .. } => Some(*status),
            AssistantError::Auth(_) => Some(401),
            AssistantError::SessionNotFound(_) => Some(404),
            _ => None,
        }
    }
}

/// Why a dialog-skill export could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SkillError {
    /// The JSON is malformed or does not match the workspace schema.
    #[error("skill JSON invalid at `{path}`: {message}")]
    Json {
        /// JSON path of the fault, e.g. `dialog_nodes[3].next_step.behavior`.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The JSON parses but is inconsistent (dangling node reference, bad regex, ...).
    #[error("skill invalid at `{path}`: {message}")]
    Invalid {
        /// JSON path of the fault.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The skill file could not be read.
    #[error("cannot read skill file {path}: {message}")]
    Io {
        /// File path.
        path: String,
        /// OS error text.
        message: String,
    },
}
