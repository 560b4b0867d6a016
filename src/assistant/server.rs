//! `voxgate assistant-server`: the Watson Assistant v2 API served from the embedded
//! dialog engine, so the v2 client is tested over real HTTP and a skill can run on
//! another machine.
//!
//! Routes: `POST /v2/assistants/{id}/sessions`, `DELETE /v2/assistants/{id}/sessions/{sid}`,
//! `POST /v2/assistants/{id}/sessions/{sid}/message`, all with `?version=`; and, when an
//! API key is set, `POST /identity/token` (IAM API-key exchange) with every v2 route then
//! requiring `Authorization: Bearer <issued token>` or `Basic apikey:<key>`. Errors are
//! Watson-shaped JSON: `{"error": "...", "code": N}`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Context;
use super::engine::{DialogSession, DialogSkill};
use super::input::TurnInput;

struct Session {
    dialog: DialogSession,
    context: Context,
    last_used: Instant,
}

/// Idle time after which a session expires (Watson's default for the lite plan).
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Most sessions held at once; creating more answers `429`.
pub const MAX_SESSIONS: usize = 10_000;

struct Shared {
    skill: DialogSkill,
    api_key: Option<String>,
    token_lifetime_secs: u64,
    idle_timeout: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    tokens: Mutex<HashSet<String>>,
    tokens_issued: AtomicU64,
}

/// The v2 API server over one dialog skill.
#[derive(Clone)]
pub struct AssistantServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AssistantServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssistantServer")
            .field("skill", &self.shared.skill.name())
            .finish()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "code": status.as_u16()})),
    )
        .into_response()
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill(&mut b);
    hex::encode(b)
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    apikey: String,
}

impl AssistantServer {
    /// A server for `skill`, without authentication.
    pub fn new(skill: DialogSkill) -> AssistantServer {
        AssistantServer::build(skill, None, 3600)
    }

    /// Requires credentials derived from `api_key` (IAM exchange or basic `apikey:KEY`).
    /// `token_lifetime_secs` is the `expires_in` of issued tokens.
    pub fn with_api_key(
        skill: DialogSkill,
        api_key: String,
        token_lifetime_secs: u64,
    ) -> AssistantServer {
        AssistantServer::build(skill, Some(api_key), token_lifetime_secs)
    }

    fn build(
        skill: DialogSkill,
        api_key: Option<String>,
        token_lifetime_secs: u64,
    ) -> AssistantServer {
        AssistantServer {
            shared: Arc::new(Shared {
                skill,
                api_key,
                token_lifetime_secs,
                idle_timeout: SESSION_IDLE_TIMEOUT,
                sessions: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashSet::new()),
                tokens_issued: AtomicU64::new(0),
            }),
        }
    }

    /// Changes the idle time after which sessions expire (default [`SESSION_IDLE_TIMEOUT`]).
    pub fn with_idle_timeout(self, idle: Duration) -> AssistantServer {
        let shared = &self.shared;
        AssistantServer {
            shared: Arc::new(Shared {
                skill: shared.skill.clone(),
                api_key: shared.api_key.clone(),
                token_lifetime_secs: shared.token_lifetime_secs,
                idle_timeout: idle,
                sessions: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashSet::new()),
                tokens_issued: AtomicU64::new(0),
            }),
        }
    }

    /// How many IAM tokens were issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.tokens_issued.load(Ordering::Relaxed)
    }

    /// Invalidates every issued token (clients must exchange their key again).
    pub fn revoke_tokens(&self) {
        self.shared
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The axum router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/identity/token", post(issue_token))
            .route("/v2/assistants/{aid}/sessions", post(create_session))
            .route(
                "/v2/assistants/{aid}/sessions/{sid}",
                delete(delete_session),
            )
            .route("/v2/assistants/{aid}/sessions/{sid}/message", post(message))
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped or the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    fn check(
        &self,
        headers: &HeaderMap,
        q: &VersionQuery,
    ) -> Result<(), (StatusCode, &'static str)> {
        if q.version.as_deref().is_none_or(str::is_empty) {
            return Err((
                StatusCode::BAD_REQUEST,
                "Missing required query parameter `version`",
            ));
        }
        let Some(key) = &self.shared.api_key else {
            return Ok(());
        };
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = if let Some(token) = auth.strip_prefix("Bearer ") {
            self.shared
                .tokens
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(token)
        } else if let Some(b) = auth.strip_prefix("Basic ") {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .is_some_and(|s| s == format!("apikey:{key}"))
        } else {
            false
        };
        if ok {
            Ok(())
        } else {
            Err((StatusCode::UNAUTHORIZED, "Unauthorized"))
        }
    }
}

async fn issue_token(State(s): State<AssistantServer>, Form(f): Form<TokenForm>) -> Response {
    let Some(key) = &s.shared.api_key else {
        return error(StatusCode::NOT_FOUND, "No API key configured");
    };
    if f.grant_type != "urn:ibm:params:oauth:grant-type:apikey" {
        return error(StatusCode::BAD_REQUEST, "Unsupported grant_type");
    }
    if &f.apikey != key {
        return error(
            StatusCode::BAD_REQUEST,
            "Provided API key could not be found",
        );
    }
    let token = random_id();
    s.shared
        .tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token.clone());
    s.shared.tokens_issued.fetch_add(1, Ordering::Relaxed);
    let lifetime = s.shared.token_lifetime_secs;
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}))
        .into_response()
}

async fn create_session(
    State(s): State<AssistantServer>,
    Path(_aid): Path<String>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = s.check(&headers, &q) {
        return error(status, message);
    }
    let id = random_id();
    let now = Instant::now();
    let session = Session {
        dialog: s.shared.skill.session(),
        context: Context::new(),
        last_used: now,
    };
    let mut sessions = s
        .shared
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let idle = s.shared.idle_timeout;
    sessions.retain(|_, v| now.duration_since(v.last_used) < idle);
    if sessions.len() >= MAX_SESSIONS {
        return error(StatusCode::TOO_MANY_REQUESTS, "Too many sessions");
    }
    sessions.insert(id.clone(), session);
    drop(sessions);
    (StatusCode::CREATED, Json(json!({"session_id": id}))).into_response()
}

async fn delete_session(
    State(s): State<AssistantServer>,
    Path((_aid, sid)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, message)) = s.check(&headers, &q) {
        return error(status, message);
    }
    match s
        .shared
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&sid)
    {
        Some(_) => Json(json!({})).into_response(),
        None => error(StatusCode::NOT_FOUND, "Invalid Session"),
    }
}

async fn message(
    State(s): State<AssistantServer>,
    Path((_aid, sid)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err((status, message)) = s.check(&headers, &q) {
        return error(status, message);
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Request body must be a JSON object",
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Invalid JSON: {e}")),
    };
    let input = TurnInput::from_v2_json(req.get("input").unwrap_or(&Value::Null));
    let mut sessions = s
        .shared
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let idle = s.shared.idle_timeout;
    let Some(session) = sessions
        .get_mut(&sid)
        .filter(|v| now.duration_since(v.last_used) < idle)
    else {
        sessions.remove(&sid);
        return error(StatusCode::NOT_FOUND, "Invalid Session");
    };
    session.last_used = now;
    let context = match req.get("context") {
        Some(c) if c.is_object() => Context::from_json(c.clone()),
        _ => session.context.clone(),
    };
    let (output, context) = session.dialog.turn(&input, context);
    session.context = context.clone();
    Json(json!({"output": output, "context": context.to_json()})).into_response()
}
