//! Credentials for the Watson services and the connect/first-byte/idle timeouts.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::SpeechError;

/// IBM Cloud IAM token endpoint.
pub const DEFAULT_IAM_URL: &str = "https://iam.cloud.ibm.com/identity/token";

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    None,
    /// A fixed bearer token.
    Bearer(String),
    /// HTTP basic.
    Basic {
        /// User name (`apikey` for Watson API keys used directly).
        username: String,
        /// Password.
        password: String,
    },
    /// An IBM Cloud API key, exchanged at `iam_url` for a bearer token that is cached and
    /// refreshed before it expires.
    IamApiKey {
        /// The API key.
        api_key: String,
        /// The token endpoint (normally [`DEFAULT_IAM_URL`]).
        iam_url: String,
    },
}

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

#[derive(Debug, Deserialize)]
struct IamToken {
    access_token: String,
    expires_in: Option<u64>,
}

/// Produces the `Authorization` header value, caching IAM tokens.
#[derive(Debug)]
pub(crate) struct Authorizer {
    creds: Credentials,
    http: reqwest::Client,
    timeouts: Timeouts,
    cached: Mutex<Option<(String, Instant)>>,
}

impl Authorizer {
    pub(crate) fn new(creds: Credentials, http: reqwest::Client, timeouts: Timeouts) -> Self {
        Authorizer {
            creds,
            http,
            timeouts,
            cached: Mutex::new(None),
        }
    }

    /// The header value, or `None` for no authentication.
    pub(crate) async fn header(&self) -> Result<Option<String>, SpeechError> {
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
                let tok = self.exchange(api_key, iam_url).await?;
                let lifetime = Duration::from_secs(tok.expires_in.unwrap_or(3600));
                // Refresh when 80% of the lifetime has passed (and at least 10 s early).
                let early = (lifetime / 5).max(Duration::from_secs(10)).min(lifetime);
                *cached = Some((tok.access_token.clone(), Instant::now() + lifetime - early));
                Ok(Some(format!("Bearer {}", tok.access_token)))
            }
        }
    }

    /// Forget a cached token (after a 401 the next call fetches a fresh one).
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn exchange(&self, api_key: &str, iam_url: &str) -> Result<IamToken, SpeechError> {
        let fut = self
            .http
            .post(iam_url)
            .header("Accept", "application/json")
            .form(&[
                ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                ("apikey", api_key),
            ])
            .send();
        let resp = tokio::time::timeout(self.timeouts.first_byte, fut)
            .await
            .map_err(|_| SpeechError::Timeout("IAM token"))?
            .map_err(|e| classify(&e, "IAM token"))?;
        let status = resp.status();
        if status == 400 || status == 401 || status == 403 {
            return Err(SpeechError::Auth(format!(
                "IAM token exchange: HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(SpeechError::BadResponse(format!(
                "IAM token exchange: HTTP {status}"
            )));
        }
        let body = tokio::time::timeout(self.timeouts.idle, resp.bytes())
            .await
            .map_err(|_| SpeechError::Timeout("IAM token body"))?
            .map_err(|e| classify(&e, "IAM token body"))?;
        serde_json::from_slice(&body)
            .map_err(|e| SpeechError::BadResponse(format!("IAM token: {e}")))
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
