//! `voxgate speech-server`: the Watson STT (WebSocket and POST `/v1/recognize`,
//! `GET /v1/models`) and TTS (`POST /v1/synthesize`, `GET /v1/voices`) APIs served from the
//! embedded engines, plus an
//! IAM-style token endpoint (`POST /identity/token`) when an API key is configured.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{
    pcm_from_le_bytes, EspeakTts, PocketSphinxStt, RecognitionEvent, RecognitionStream,
    RecognizeOptions, SampleRate, SpeechError, SynthesisEncoding, SynthesisRequest, Transcript,
};

/// What the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The embedded recogniser (its default grammar serves requests without `grammar_name`).
    pub stt: PocketSphinxStt,
    /// The embedded synthesizer.
    pub tts: EspeakTts,
    /// Require this API key (Basic `apikey:KEY`, or a Bearer token from `/identity/token`).
    pub api_key: Option<String>,
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
}

/// Shared server state.
#[derive(Debug)]
pub struct ServerState {
    cfg: ServerConfig,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
}

impl ServerState {
    /// State for `cfg`.
    pub fn new(cfg: ServerConfig) -> Arc<Self> {
        Arc::new(ServerState {
            cfg,
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
        })
    }

    /// Tokens issued by `/identity/token` so far.
    pub fn issued_tokens(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    fn authorised(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        use base64::Engine as _;
        let Some(key) = &self.cfg.api_key else {
            return true;
        };
        let now = Instant::now();
        let token_ok = |t: &str| {
            self.tokens
                .lock()
                .map(|m| m.get(t).is_some_and(|exp| *exp > now))
                .unwrap_or(false)
        };
        if query_token.is_some_and(token_ok) {
            return true;
        }
        let Some(h) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        if let Some(t) = h.strip_prefix("Bearer ") {
            return token_ok(t.trim());
        }
        if let Some(b) = h.strip_prefix("Basic ") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
                return false;
            };
            return raw == format!("apikey:{key}").as_bytes();
        }
        false
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "code": status.as_u16(), "error": msg.into() })),
    )
        .into_response()
}

fn unauthorised() -> Response {
    error(StatusCode::UNAUTHORIZED, "Unauthorized")
}

fn speech_status(e: &SpeechError) -> StatusCode {
    match e {
        SpeechError::Rejected(_) => StatusCode::BAD_REQUEST,
        SpeechError::UnsupportedAudio(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        SpeechError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The HTTP/WebSocket routes.
pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v1/voices", get(voices))
        .route("/v1/models", get(models))
        .route("/v1/voices/{name}", get(voice))
        .route("/v1/synthesize", post(synthesize))
        .route("/v1/recognize", post(recognize_post).get(recognize_ws))
        .route("/identity/token", post(token))
        .with_state(state)
}

/// Serve on `listener` until the task is dropped. Sockets get TCP_NODELAY: audio chunks
/// must not wait for Nagle/delayed-ACK (that cost ~40 ms per first chunk).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("speech-server: TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(state)).await
}

/// Bind `addr` and serve.
pub async fn run(addr: SocketAddr, state: Arc<ServerState>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve(listener, state).await
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    apikey: String,
}

async fn token(State(st): State<Arc<ServerState>>, Form(f): Form<TokenForm>) -> Response {
    let Some(key) = &st.cfg.api_key else {
        return error(StatusCode::NOT_FOUND, "no API key configured");
    };
    if f.grant_type != "urn:ibm:params:oauth:grant-type:apikey" || &f.apikey != key {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found"})),
        )
            .into_response();
    }
    let tok = hex::encode(rand::random::<[u8; 16]>());
    let ttl = st.cfg.token_ttl;
    if let Ok(mut m) = st.tokens.lock() {
        let now = Instant::now();
        m.retain(|_, exp| *exp > now);
        m.insert(tok.clone(), now + ttl);
    }
    st.issued.fetch_add(1, Ordering::Relaxed);
    Json(json!({"access_token": tok, "token_type": "Bearer", "expires_in": ttl.as_secs()}))
        .into_response()
}

async fn voices(State(st): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if !st.authorised(&headers, None) {
        return unauthorised();
    }
    Json(json!({ "voices": EspeakTts::voice_list() })).into_response()
}

async fn models(State(st): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if !st.authorised(&headers, None) {
        return unauthorised();
    }
    Json(json!({ "models": PocketSphinxStt::model_list() })).into_response()
}

async fn voice(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if !st.authorised(&headers, None) {
        return unauthorised();
    }
    match EspeakTts::voice_list().into_iter().find(|v| v.name == name) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("Model {name} not found")),
    }
}

/// `audio/l16;rate=8000` → rate.
fn l16_rate(ctype: &str) -> Result<SampleRate, SpeechError> {
    let mut parts = ctype.split(';').map(str::trim);
    let media = parts.next().unwrap_or("").to_ascii_lowercase();
    if media != "audio/l16" {
        return Err(SpeechError::UnsupportedAudio(format!(
            "{media:?} (audio/l16 only)"
        )));
    }
    for p in parts {
        if let Some(r) = p.strip_prefix("rate=") {
            let hz = r
                .parse::<u32>()
                .map_err(|_| SpeechError::UnsupportedAudio(format!("rate {r:?}")))?;
            return SampleRate::from_hz(hz);
        }
    }
    Err(SpeechError::UnsupportedAudio(
        "audio/l16 needs rate=".into(),
    ))
}

#[derive(Deserialize)]
struct SynthQuery {
    voice: Option<String>,
    accept: Option<String>,
}

#[derive(Deserialize)]
struct SynthBody {
    text: String,
}

async fn synthesize(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(q): Query<SynthQuery>,
    body: Bytes,
) -> Response {
    if !st.authorised(&headers, None) {
        return unauthorised();
    }
    let accept = q
        .accept
        .or_else(|| {
            headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "audio/l16;rate=8000".into());
    let accept = if accept.trim() == "*/*" {
        "audio/l16;rate=8000".to_string()
    } else {
        accept
    };
    let (rate, encoding) = match l16_rate(&accept) {
        Ok(r) => (r, SynthesisEncoding::Linear16),
        Err(_) if accept.to_ascii_lowercase().starts_with("audio/mulaw") => {
            if accept.contains("rate=") && !accept.contains("rate=8000") {
                return error(StatusCode::NOT_ACCEPTABLE, "audio/mulaw is 8 kHz only");
            }
            (SampleRate::Hz8000, SynthesisEncoding::Mulaw)
        }
        Err(e) => return error(StatusCode::NOT_ACCEPTABLE, e.to_string()),
    };
    let text = match serde_json::from_slice::<SynthBody>(&body) {
        Ok(b) => b.text,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let ssml = text.trim_start().starts_with('<');
    let req = SynthesisRequest {
        text,
        ssml,
        voice: q.voice,
        sample_rate: rate,
        encoding,
        extra_query: Vec::new(),
    };
    let stream = match st.cfg.tts.start(req) {
        Ok(s) => s,
        Err(SpeechError::Rejected(m)) => return error(StatusCode::NOT_FOUND, m),
        Err(e) => return error(speech_status(&e), e.to_string()),
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        match s.next_chunk().await {
            Some(Ok(super::AudioChunk::Pcm(p))) => Some((
                Ok::<Bytes, std::io::Error>(Bytes::from(super::pcm_to_le_bytes(&p))),
                s,
            )),
            Some(Ok(super::AudioChunk::Mulaw(b))) => Some((Ok(Bytes::from(b)), s)),
            Some(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), s)),
            None => None,
        }
    });
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            match encoding {
                SynthesisEncoding::Mulaw => "audio/mulaw;rate=8000".to_string(),
                _ => format!("audio/l16;rate={};endianness=little-endian", rate.hz()),
            },
        )
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

#[derive(Deserialize, Default)]
struct RecognizeQuery {
    model: Option<String>,
    language_customization_id: Option<String>,
    customization_id: Option<String>,
    grammar_name: Option<String>,
    access_token: Option<String>,
}

fn result_json(events: &[(bool, Transcript)], index: u32) -> serde_json::Value {
    let results: Vec<_> = events
        .iter()
        .map(|(fin, t)| {
            let mut alt = json!({ "transcript": t.text });
            if let Some(c) = t.confidence {
                alt["confidence"] = json!(c);
            }
            json!({ "final": fin, "alternatives": [alt] })
        })
        .collect();
    json!({ "result_index": index, "results": results })
}

async fn recognize_post(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(q): Query<RecognizeQuery>,
    body: Bytes,
) -> Response {
    if !st.authorised(&headers, q.access_token.as_deref()) {
        return unauthorised();
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let rate = match l16_rate(ctype) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string()),
    };
    let opts = RecognizeOptions {
        sample_rate: rate,
        model: q.model,
        customization_id: q.language_customization_id.or(q.customization_id),
        grammar_name: q.grammar_name,
        interim_results: false,
        inactivity_timeout: None,
        ..RecognizeOptions::default()
    };
    let mut stream = match st.cfg.stt.start(opts).await {
        Ok(s) => s,
        Err(e) => return error(speech_status(&e), e.to_string()),
    };
    let pcm = pcm_from_le_bytes(&body);
    let frame = rate.hz() as usize / 50;
    for c in pcm.chunks(frame.max(1)) {
        if let Err(e) = stream.send(c.to_vec()).await {
            return error(speech_status(&e), e.to_string());
        }
    }
    if let Err(e) = stream.finish().await {
        return error(speech_status(&e), e.to_string());
    }
    let mut finals = Vec::new();
    while let Some(ev) = stream.next_event().await {
        match ev {
            Ok(RecognitionEvent::Final(t)) => finals.push((true, t)),
            Ok(_) => {}
            Err(e) => return error(speech_status(&e), e.to_string()),
        }
    }
    Json(result_json(&finals, 0)).into_response()
}

async fn recognize_ws(
    State(st): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(q): Query<RecognizeQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !st.authorised(&headers, q.access_token.as_deref()) {
        return unauthorised();
    }
    if let Some(m) = &q.model {
        if !m.starts_with("en-") {
            return error(StatusCode::NOT_FOUND, format!("Model {m} not found"));
        }
    }
    ws.on_upgrade(move |socket| recognize_session(socket, st, q))
}

#[derive(Deserialize)]
struct StartMessage {
    action: String,
    #[serde(rename = "content-type")]
    content_type: Option<String>,
    interim_results: Option<bool>,
    inactivity_timeout: Option<i64>,
    smart_formatting: Option<bool>,
    grammar_name: Option<String>,
}

async fn send_json(socket: &mut WebSocket, v: serde_json::Value) -> bool {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .is_ok()
}

async fn recognize_session(mut socket: WebSocket, st: Arc<ServerState>, q: RecognizeQuery) {
    let mut opts = RecognizeOptions {
        model: q.model,
        customization_id: q.language_customization_id.or(q.customization_id),
        grammar_name: q.grammar_name,
        ..RecognizeOptions::default()
    };
    let mut current: Option<RecognitionStream> = None;
    let mut started = false;
    let mut index_base = 0u32;
    let mut max_index = 0u32;
    loop {
        let next_event = async {
            match current.as_mut() {
                Some(s) => s.next_event().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = next_event => match ev {
                Some(Ok(RecognitionEvent::Interim(t))) => {
                    let i = index_base + t.result_index;
                    if !send_json(&mut socket, result_json(&[(false, t)], i)).await { return; }
                }
                Some(Ok(RecognitionEvent::Final(t))) => {
                    let i = index_base + t.result_index;
                    max_index = max_index.max(i + 1);
                    if !send_json(&mut socket, result_json(&[(true, t)], i)).await { return; }
                }
                Some(Err(e)) => {
                    let msg = match e {
                        SpeechError::Timeout("inactivity") => format!(
                            "Session timed out due to inactivity after {} seconds.",
                            opts.inactivity_timeout.map(|d| d.as_secs()).unwrap_or(0)
                        ),
                        other => other.to_string(),
                    };
                    let _ = send_json(&mut socket, json!({ "error": msg })).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                None => {
                    // Stream ended after stop: all results sent.
                    current = None;
                    index_base = max_index;
                    if !send_json(&mut socket, json!({"state": "listening"})).await { return; }
                }
            },
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { return };
                match msg {
                    Message::Text(txt) => {
                        let start: StartMessage = match serde_json::from_str(&txt) {
                            Ok(s) => s,
                            Err(e) => {
                                let _ = send_json(&mut socket, json!({"error": format!("bad message: {e}")})).await;
                                let _ = socket.send(Message::Close(None)).await;
                                return;
                            }
                        };
                        match start.action.as_str() {
                            "start" => {
                                let rate = match start.content_type.as_deref().map(l16_rate) {
                                    Some(Ok(r)) => r,
                                    Some(Err(e)) => {
                                        let _ = send_json(&mut socket, json!({"error": e.to_string()})).await;
                                        let _ = socket.send(Message::Close(None)).await;
                                        return;
                                    }
                                    None => {
                                        let _ = send_json(&mut socket, json!({"error": "content-type required"})).await;
                                        let _ = socket.send(Message::Close(None)).await;
                                        return;
                                    }
                                };
                                opts.sample_rate = rate;
                                opts.interim_results = start.interim_results.unwrap_or(false);
                                opts.smart_formatting = start.smart_formatting.unwrap_or(false);
                                opts.inactivity_timeout = match start.inactivity_timeout {
                                    Some(n) if n < 0 => None,
                                    Some(n) => Some(Duration::from_secs(n as u64)),
                                    None => Some(Duration::from_secs(30)),
                                };
                                if start.grammar_name.is_some() {
                                    opts.grammar_name = start.grammar_name;
                                }
                                match st.cfg.stt.start(opts.clone()).await {
                                    Ok(s) => current = Some(s),
                                    Err(e) => {
                                        let _ = send_json(&mut socket, json!({"error": e.to_string()})).await;
                                        let _ = socket.send(Message::Close(None)).await;
                                        return;
                                    }
                                }
                                started = true;
                                if !send_json(&mut socket, json!({"state": "listening"})).await { return; }
                            }
                            "stop" => {
                                if let Some(s) = current.as_mut() {
                                    let _ = s.finish().await;
                                } else if !send_json(&mut socket, json!({"state": "listening"})).await {
                                    return;
                                }
                            }
                            other => {
                                let _ = send_json(&mut socket, json!({"error": format!("unknown action {other:?}")})).await;
                            }
                        }
                    }
                    Message::Binary(b) => {
                        if current.is_none() && started {
                            match st.cfg.stt.start(opts.clone()).await {
                                Ok(s) => current = Some(s),
                                Err(e) => {
                                    let _ = send_json(&mut socket, json!({"error": e.to_string()})).await;
                                    return;
                                }
                            }
                        }
                        let Some(s) = current.as_ref() else {
                            let _ = send_json(&mut socket, json!({"error": "audio before start"})).await;
                            let _ = socket.send(Message::Close(None)).await;
                            return;
                        };
                        if s.send(pcm_from_le_bytes(&b)).await.is_err() {
                            // The stream ended with an error; it is reported by next_event.
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
            }
        }
    }
}

/// Phrases of the default grammar when no vocabulary file is given.
pub const DEMO_PHRASES: &[&str] = &[
    "talk to an agent",
    "check my balance",
    "pay my bill",
    "report a lost card",
    "opening hours",
    "goodbye",
    "repeat that",
    "main menu",
];

/// The configuration `voxgate speech-server` runs with: vocabulary from the file named by
/// `VOXGATE_SPEECH_PHRASES` (one phrase per line; default [`DEMO_PHRASES`]), API key from
/// `VOXGATE_SPEECH_API_KEY` (default: none required).
pub fn config_from_env() -> Result<ServerConfig, SpeechError> {
    let phrases: Vec<String> = match std::env::var_os("VOXGATE_SPEECH_PHRASES") {
        Some(p) => std::fs::read_to_string(&p)
            .map_err(|e| SpeechError::Rejected(format!("VOXGATE_SPEECH_PHRASES: {e}")))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => DEMO_PHRASES.iter().map(|s| s.to_string()).collect(),
    };
    let grammar = Arc::new(super::Grammar::from_phrases(&phrases)?);
    Ok(ServerConfig {
        stt: PocketSphinxStt::new(grammar),
        tts: EspeakTts::default(),
        api_key: std::env::var("VOXGATE_SPEECH_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        token_ttl: Duration::from_secs(3600),
    })
}
