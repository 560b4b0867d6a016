//! Credentials for the Watson-compatible services (speech to text, text to speech and
//! the assistant), and the one place that turns them into an `Authorization` header:
//! a fixed bearer token, HTTP basic, or an IBM Cloud API key exchanged for an IAM token
//! that is cached and refreshed before it expires (and dropped after a 401).
//!
//! Secrets never reach a log: the `Debug` output names the scheme, not the secret.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

/// IBM Cloud IAM token endpoint.
pub const IBM_IAM_URL: &str = "https://iam.cloud.ibm.com/identity/token";

/// How to authenticate to a service.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header (a local `voxgate speech-server` or `assistant-server`).
    None,
    /// A fixed bearer token.
    Bearer(String),
    /// HTTP basic (`apikey` as the user name for Watson API keys used directly).
    Basic {
        /// User name.
        username: String,
        /// Password or API key.
        password: String,
    },
    /// An IBM Cloud API key, exchanged at `iam_url` for a bearer token.
    IamApiKey {
        /// The API key.
        api_key: String,
        /// The token endpoint (normally [`IBM_IAM_URL`]).
        iam_url: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => write!(f, "None"),
            Credentials::Bearer(_) => write!(f, "Bearer(<redacted>)"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IamApiKey { iam_url, .. } => write!(f, "IamApiKey({iam_url})"),
        }
    }
}

/// Why no `Authorization` header could be made: only the IAM exchange can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The token endpoint refused the API key (HTTP 400/401/403).
    #[error("IAM token exchange refused: HTTP {0}")]
    Refused(u16),
    /// The token endpoint could not be reached.
    #[error("IAM token endpoint unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within the exchange timeout.
    #[error("IAM token exchange timed out")]
    Timeout,
    /// Another status, or an answer that is not a token.
    #[error("IAM token exchange: {0}")]
    BadResponse(String),
}

#[derive(Debug, Deserialize)]
struct IamToken {
    access_token: String,
    expires_in: Option<u64>,
}

/// Produces the `Authorization` header value for one client, caching IAM tokens.
#[derive(Debug)]
pub struct Authorizer {
    creds: Credentials,
    http: reqwest::Client,
    exchange_timeout: Duration,
    cached: Mutex<Option<(String, Instant)>>,
}

impl Authorizer {
    /// `exchange_timeout` bounds one IAM token exchange, answer body included.
    pub fn new(creds: Credentials, http: reqwest::Client, exchange_timeout: Duration) -> Self {
        Authorizer {
            creds,
            http,
            exchange_timeout,
            cached: Mutex::new(None),
        }
    }

    /// Whether a 401 from the service is worth one retry with a fresh token.
    pub fn refreshable(&self) -> bool {
        matches!(self.creds, Credentials::IamApiKey { .. })
    }

    /// The header value, or `None` for no authentication.
    pub async fn header(&self) -> Result<Option<String>, CredentialError> {
        use base64::Engine as _;
        match &self.creds {
            Credentials::None => Ok(None),
            Credentials::Bearer(t) => Ok(Some(format!("Bearer {t}"))),
            Credentials::Basic { username, password } => Ok(Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ))),
            Credentials::IamApiKey { api_key, iam_url } => {
                let mut cached = self.cached.lock().await;
                if let Some((tok, refresh_at)) = cached.as_ref() {
                    if Instant::now() < *refresh_at {
                        return Ok(Some(format!("Bearer {tok}")));
                    }
                }
                let tok =
                    tokio::time::timeout(self.exchange_timeout, self.exchange(api_key, iam_url))
                        .await
                        .map_err(|_| CredentialError::Timeout)??;
                let lifetime = Duration::from_secs(tok.expires_in.unwrap_or(3600));
                // Refresh when 80% of the lifetime has passed (and at least 10 s early).
                let early = (lifetime / 5).max(Duration::from_secs(10)).min(lifetime);
                *cached = Some((tok.access_token.clone(), Instant::now() + lifetime - early));
                Ok(Some(format!("Bearer {}", tok.access_token)))
            }
        }
    }

    /// Forgets a cached token (after a 401 the next call fetches a fresh one).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn exchange(&self, api_key: &str, iam_url: &str) -> Result<IamToken, CredentialError> {
        let resp = self
            .http
            .post(iam_url)
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                ("apikey", api_key),
            ])
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    CredentialError::Timeout
                } else {
                    CredentialError::Unreachable(e.to_string())
                }
            })?;
        let status = resp.status().as_u16();
        if matches!(status, 400 | 401 | 403) {
            return Err(CredentialError::Refused(status));
        }
        if !resp.status().is_success() {
            return Err(CredentialError::BadResponse(format!("HTTP {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| CredentialError::BadResponse(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| CredentialError::BadResponse(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret() {
        let all = [
            Credentials::Bearer("s3cret-token".into()),
            Credentials::Basic {
                username: "apikey".into(),
                password: "s3cret-pass".into(),
            },
            Credentials::IamApiKey {
                api_key: "s3cret-key".into(),
                iam_url: IBM_IAM_URL.into(),
            },
        ];
        for c in all {
            let shown = format!("{c:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[tokio::test]
    async fn static_schemes_need_no_exchange() {
        let http = reqwest::Client::new();
        let t = Duration::from_secs(1);
        let none = Authorizer::new(Credentials::None, http.clone(), t);
        assert_eq!(none.header().await, Ok(None));
        let bearer = Authorizer::new(Credentials::Bearer("abc".into()), http.clone(), t);
        assert_eq!(bearer.header().await, Ok(Some("Bearer abc".into())));
        assert!(!bearer.refreshable());
        let basic = Authorizer::new(
            Credentials::Basic {
                username: "apikey".into(),
                password: "pw".into(),
            },
            http,
            t,
        );
        // base64("apikey:pw")
        assert_eq!(basic.header().await, Ok(Some("Basic YXBpa2V5OnB3".into())));
    }
}
