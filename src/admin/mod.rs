//! The admin HTTP API (axum), on its own listener (127.0.0.1:8080 by default).
//!
//! Every route except `GET /healthz` needs `Authorization: Bearer <token>` (401
//! otherwise; compared in constant time). Routes:
//!
//! | route | does |
//! | --- | --- |
//! | `GET  /v1/integration` | settings (SIP auth password shown as `********`) |
//! | `PUT  /v1/integration` | replace settings; 400 names each bad field; `********` keeps the stored password |
//! | `GET  /v1/numbers` | the list |
//! | `POST /v1/numbers` | add `{"number", "description"?}`; 400 invalid, 409 duplicate |
//! | `PUT  /v1/numbers` | `text/csv` replaces the list atomically; 400 lists every bad row |
//! | `DELETE /v1/numbers/{e164}` | remove one; 404 when absent |
//! | `GET  /v1/usage/mau?month=YYYY-MM` | monthly active users (default: this month) |
//! | `GET  /v1/calls?from&to&number&outcome&limit` | call records, newest first |
//! | `GET  /v1/logs?q=&limit=` | recent log lines matching a number, call ID, instance ID |
//! | `GET  /metrics` | Prometheus text |
//! | `GET  /healthz` | 200 when ready, 503 when draining or the store is down |
//! | `GET  /v1/speech/voices` | voices of the configured text-to-speech provider (503 before it is built) |
//! | `GET  /v1/speech/models` | models of the configured speech-to-text provider (503 before it is built) |
//! | `POST /v1/speech/sample` | `{"voice"?, "text"?}` → `audio/wav` (8 kHz, 16-bit mono) from that provider |
//! | `GET  /v1/overview` | SIP listeners (UDP, TCP, TLS) and the TLS certificate, plan and its cap, active calls, health |
//! | `GET  /v1/calls/live` | calls up now (records with no end yet), with duration so far; this node's calls with their current state and turn |
//! | `GET  /`, `/console/*` | the admin console (single-page app, embedded assets, no data): it calls the API above with the token typed into it, kept in `sessionStorage` |
//!
//! Changes to settings and numbers are stored first, then published to
//! [`LiveState`], so new calls see them without a restart.

mod console;
mod error;
mod routes;
mod speech;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::Router;
use subtle::ConstantTimeEq;

pub use error::{ApiError, FieldError};

use crate::live::LiveState;
use crate::logs::LogRing;
use crate::store::StoreHandle;

/// Largest request body (CSV uploads), bytes.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Durable state.
    pub store: StoreHandle,
    /// What new calls read.
    pub live: LiveState,
    /// Recent logs.
    pub logs: LogRing,
    /// Bearer token.
    pub token: Arc<str>,
    /// Media cores (for per-core metric series).
    pub media_cores: usize,
    /// The configured text-to-speech provider, when built (voices and samples).
    pub tts: Arc<std::sync::OnceLock<Arc<dyn crate::speech::TextToSpeech>>>,
    /// The SIP listeners, once bound.
    pub sip_listeners: Arc<std::sync::OnceLock<crate::sip::ua::LocalAddrs>>,
    /// The TLS listener's certificate, once the SIP listeners are up.
    pub tls_certificate: Arc<std::sync::OnceLock<crate::sip::transport::tls::CertificateInfo>>,
    /// The configured speech-to-text provider, when built (its models).
    pub stt: Arc<std::sync::OnceLock<Arc<dyn crate::speech::SpeechToText>>>,
    /// This node's calls while they are up (state and turn so far).
    pub live_calls: crate::live_calls::LiveCalls,
}

async fn require_token(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme name is case-insensitive (RFC 7235 §2.1).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim);
    let ok = presented.is_some_and(|p| {
        !state.token.is_empty() && bool::from(p.as_bytes().ct_eq(state.token.as_bytes()))
    });
    if ok {
        next.run(req).await
    } else {
        axum::response::IntoResponse::into_response(ApiError::Unauthorized)
    }
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let protected = Router::new()
        .route(
            "/v1/integration",
            get(routes::get_integration).put(routes::put_integration),
        )
        .route(
            "/v1/numbers",
            get(routes::list_numbers)
                .post(routes::add_number)
                .put(routes::replace_numbers),
        )
        .route("/v1/numbers/{e164}", delete(routes::delete_number))
        .route("/v1/usage/mau", get(routes::mau))
        .route("/v1/calls", get(routes::calls))
        .route("/v1/calls/live", get(routes::calls_live))
        .route("/v1/overview", get(routes::overview))
        .route("/v1/logs", get(routes::logs))
        .route("/v1/speech/voices", get(speech::voices))
        .route("/v1/speech/models", get(speech::models))
        .route("/v1/speech/sample", axum::routing::post(speech::sample))
        .route("/metrics", get(routes::metrics_text))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/", get(console::index))
        .route("/console/{asset}", get(console::asset))
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
