//! Watson Assistant v2 client: sessions and the `/message` API over HTTPS (reqwest,
//! rustls). Auth: IAM API key (token exchanged, cached until shortly before expiry,
//! refreshed on a 401), bearer token, or basic. Every failure is a typed
//! [`AssistantError`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use super::actions;
use super::context::Context;
use super::error::AssistantError;
use super::input::TurnInput;
use super::{Assistant, AssistantSession, Reply};
use crate::credentials::{Authorizer, CredentialError};

/// API version date sent as `?version=` unless configured otherwise.
pub const DEFAULT_VERSION: &str = "2021-11-27";

/// How the client authenticates: the credentials the speech clients use too.
pub use crate::credentials::{Credentials as Auth, IBM_IAM_URL};

/// Where and how to reach the assistant.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Service URL, e.g. `https://api.us-south.assistant.watson.cloud.ibm.com/instances/ID`
    /// or `http://127.0.0.1:9002`.
    pub base_url: String,
    /// Assistant (environment) ID.
    pub assistant_id: String,
    /// API version date.
    pub version: String,
    /// Credentials.
    pub auth: Auth,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// A configuration with the default version and timeouts (5 s request, 2 s connect).
    pub fn new(
        base_url: impl Into<String>,
        assistant_id: impl Into<String>,
        auth: Auth,
    ) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            assistant_id: assistant_id.into(),
            version: DEFAULT_VERSION.into(),
            auth,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// A Watson Assistant v2 client; cheap to clone (shares the connection pool and token).
#[derive(Debug, Clone)]
pub struct WatsonClient {
    http: reqwest::Client,
    cfg: Arc<ClientConfig>,
    auth: Arc<Authorizer>,
}

fn transport_error(e: reqwest::Error, timeout: Duration) -> AssistantError {
    if e.is_timeout() {
        AssistantError::Timeout(timeout)
    } else if e.is_connect() {
        AssistantError::Unreachable(e.to_string())
    } else if e.is_decode() {
        AssistantError::BadResponse(e.to_string())
    } else {
        AssistantError::Unreachable(e.to_string())
    }
}

async fn error_from(resp: reqwest::Response, session_url: bool) -> AssistantError {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or(body);
    match status {
        401 | 403 => AssistantError::Auth(format!("HTTP {status}: {message}")),
        404 if session_url => AssistantError::SessionNotFound(message),
        _ => AssistantError::Http { status, message },
    }
}

impl WatsonClient {
    /// Builds a client (no request is made).
    pub fn new(cfg: ClientConfig) -> Result<WatsonClient, AssistantError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .build()
            .map_err(|e| AssistantError::InvalidRequest(e.to_string()))?;
        let auth = Arc::new(Authorizer::new(cfg.auth.clone(), http.clone(), cfg.timeout));
        Ok(WatsonClient {
            http,
            cfg: Arc::new(cfg),
            auth,
        })
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/v2/assistants/{}/sessions{}?version={}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.assistant_id,
            tail,
            self.cfg.version
        )
    }

    async fn authed(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, AssistantError> {
        let header = self.auth.header().await.map_err(|e| match e {
            CredentialError::Unreachable(m) => AssistantError::Unreachable(m),
            CredentialError::Timeout => AssistantError::Timeout(self.cfg.timeout),
            other => AssistantError::Auth(other.to_string()),
        })?;
        Ok(match header {
            Some(h) => rb.header(reqwest::header::AUTHORIZATION, h),
            None => rb,
        })
    }

    /// Sends a request; with IAM auth, a 401 drops the cached token and retries once.
    async fn send(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        session_url: bool,
    ) -> Result<reqwest::Response, AssistantError> {
        for attempt in 0..2 {
            let resp = self
                .authed(make())
                .await?
                .send()
                .await
                .map_err(|e| transport_error(e, self.cfg.timeout))?;
            if resp.status().as_u16() == 401 && self.auth.refreshable() && attempt == 0 {
                self.auth.invalidate().await;
                continue;
            }
            if !resp.status().is_success() {
                return Err(error_from(resp, session_url).await);
            }
            return Ok(resp);
        }
        Err(AssistantError::Auth("token refused after refresh".into()))
    }

    /// Creates a session and returns its ID.
    pub async fn create_session(&self) -> Result<String, AssistantError> {
        let url = self.url("");
        let resp = self
            .send(|| self.http.post(&url).json(&json!({})), false)
            .await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| AssistantError::BadResponse(e.to_string()))?;
        v.get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AssistantError::BadResponse("no session_id in answer".into()))
    }

    /// Deletes a session.
    pub async fn delete_session(&self, session_id: &str) -> Result<(), AssistantError> {
        let url = self.url(&format!("/{session_id}"));
        self.send(|| self.http.delete(&url), true).await.map(drop)
    }

    /// Sends one turn; returns the v2 `output` object and the returned context (the sent
    /// context when the service returns none).
    pub async fn message(
        &self,
        session_id: &str,
        input: &TurnInput,
        context: &Context,
    ) -> Result<(Value, Context), AssistantError> {
        let url = self.url(&format!("/{session_id}/message"));
        let mut ctx = context.clone();
        input.apply_legacy(&mut ctx);
        let body = json!({ "input": input.to_v2_json(), "context": ctx.to_json() });
        let resp = self.send(|| self.http.post(&url).json(&body), true).await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| AssistantError::BadResponse(e.to_string()))?;
        let output = v
            .get("output")
            .filter(|o| o.is_object())
            .cloned()
            .ok_or_else(|| AssistantError::BadResponse("no output object in answer".into()))?;
        let context = match v.get("context") {
            Some(c) if c.is_object() => Context::from_json(c.clone()),
            _ => ctx,
        };
        Ok((output, context))
    }

    /// Sends one turn and turns the answer into voice actions.
    pub async fn message_reply(
        &self,
        session_id: &str,
        input: &TurnInput,
        context: &Context,
    ) -> Result<Reply, AssistantError> {
        let (output, mut context) = self.message(session_id, input, context).await?;
        let actions = actions::from_response(&output, &mut context);
        Ok(Reply { actions, context })
    }
}

/// A session on a Watson Assistant service.
#[derive(Debug)]
pub struct WatsonSession {
    client: WatsonClient,
    session_id: String,
}

impl WatsonSession {
    /// The service's session ID.
    pub fn id(&self) -> &str {
        &self.session_id
    }
}

impl Assistant for WatsonClient {
    fn open_session(&self) -> BoxFuture<'_, Result<Box<dyn AssistantSession>, AssistantError>> {
        Box::pin(async move {
            let session_id = self.create_session().await?;
            let s: Box<dyn AssistantSession> = Box::new(WatsonSession {
                client: self.clone(),
                session_id,
            });
            Ok(s)
        })
    }
}

impl AssistantSession for WatsonSession {
    fn message(
        &mut self,
        input: TurnInput,
        context: Context,
    ) -> BoxFuture<'_, Result<Reply, AssistantError>> {
        Box::pin(async move {
            self.client
                .message_reply(&self.session_id, &input, &context)
                .await
        })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<(), AssistantError>> {
        Box::pin(async move { self.client.delete_session(&self.session_id).await })
    }
}
