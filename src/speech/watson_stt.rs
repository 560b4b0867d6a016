//! Watson Speech to Text client: the WebSocket `/v1/recognize` interface (start message,
//! binary audio, `results`/`result_index` JSON, stop) and the sessionless
//! `POST /v1/recognize`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::auth::{classify, http_client, status_error};
use super::{
    pcm_to_le_bytes, AudioInput, Credentials, RecognitionEvent, RecognitionStream,
    RecognitionWorker, RecognizeOptions, SampleRate, SpeechError, SpeechModel, SpeechToText,
    Timeouts, Transcript,
};
use crate::credentials::Authorizer;

/// Where and how to reach Watson STT.
#[derive(Debug, Clone)]
pub struct WatsonSttConfig {
    /// Service URL (the instance URL, `http(s)://…`, without `/v1`).
    pub url: String,
    /// Credentials.
    pub credentials: Credentials,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// Watson STT over WebSocket (streams) and HTTP (one-shot).
#[derive(Debug, Clone)]
pub struct WatsonStt {
    cfg: WatsonSttConfig,
    http: reqwest::Client,
    auth: Arc<Authorizer>,
}

#[derive(Debug, Deserialize)]
struct Alternative {
    transcript: String,
    confidence: Option<f32>,
}

#[derive(Debug, Deserialize)]
struct SttResult {
    #[serde(rename = "final")]
    is_final: bool,
    alternatives: Vec<Alternative>,
}

/// A server message on the recognize socket (and the POST response body).
#[derive(Debug, Deserialize)]
struct ServerMessage {
    state: Option<String>,
    error: Option<String>,
    result_index: Option<u32>,
    results: Option<Vec<SttResult>>,
}

fn events_of(msg: ServerMessage) -> Vec<RecognitionEvent> {
    let base = msg.result_index.unwrap_or(0);
    let mut out = Vec::new();
    for (i, r) in msg.results.unwrap_or_default().into_iter().enumerate() {
        let Some(best) = r.alternatives.into_iter().next() else {
            continue;
        };
        let t = Transcript {
            text: best.transcript.trim().to_string(),
            confidence: best.confidence,
            result_index: base + i as u32,
        };
        out.push(if r.is_final {
            RecognitionEvent::Final(t)
        } else {
            RecognitionEvent::Interim(t)
        });
    }
    out
}

fn error_of(text: &str) -> SpeechError {
    if text.contains("inactivity") {
        SpeechError::Timeout("inactivity")
    } else {
        SpeechError::Rejected(text.to_string())
    }
}

fn ws_error(e: tungstenite::Error) -> SpeechError {
    match e {
        tungstenite::Error::Http(resp) => {
            let s = resp.status();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            status_error(
                reqwest::StatusCode::from_u16(s.as_u16())
                    .unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
                &body,
            )
        }
        tungstenite::Error::Io(e) => SpeechError::Unreachable(e.to_string()),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            SpeechError::ClosedMidStream
        }
        tungstenite::Error::Protocol(p) => match p {
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake => {
                SpeechError::ClosedMidStream
            }
            other => SpeechError::BadResponse(other.to_string()),
        },
        other => SpeechError::BadResponse(other.to_string()),
    }
}

impl WatsonStt {
    /// A client for `cfg`.
    pub fn new(cfg: WatsonSttConfig) -> Result<Self, SpeechError> {
        let http = http_client(&cfg.timeouts)?;
        let auth = Arc::new(Authorizer::new(
            cfg.credentials.clone(),
            http.clone(),
            cfg.timeouts.token_exchange(),
        ));
        Ok(WatsonStt { cfg, http, auth })
    }

    fn query(opts: &RecognizeOptions) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(m) = &opts.model {
            q.push(("model", m.clone()));
        }
        if let Some(c) = &opts.customization_id {
            q.push(("language_customization_id", c.clone()));
        }
        q
    }

    /// The start message: the assistant's extra parameters first, so the fields the
    /// integration fixes (action, content type, interim results, inactivity) win.
    fn start_message(opts: &RecognizeOptions) -> serde_json::Value {
        let mut start = serde_json::Value::Object(opts.extra_message.clone());
        for (k, v) in [
            ("action", serde_json::json!("start")),
            (
                "content-type",
                serde_json::json!(format!("audio/l16;rate={}", opts.sample_rate.hz())),
            ),
            ("interim_results", serde_json::json!(opts.interim_results)),
            ("smart_formatting", serde_json::json!(opts.smart_formatting)),
            (
                "inactivity_timeout",
                serde_json::json!(opts
                    .inactivity_timeout
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(-1)),
            ),
        ] {
            start[k] = v;
        }
        if let Some(g) = &opts.grammar_name {
            start["grammar_name"] = serde_json::Value::String(g.clone());
        }
        start
    }

    /// Open a WebSocket recognition; returns after the service said `listening`.
    pub async fn start(&self, opts: RecognizeOptions) -> Result<RecognitionStream, SpeechError> {
        let t = self.cfg.timeouts;
        let base = self.cfg.url.trim_end_matches('/');
        let ws_base = if let Some(r) = base.strip_prefix("https://") {
            format!("wss://{r}")
        } else if let Some(r) = base.strip_prefix("http://") {
            format!("ws://{r}")
        } else {
            base.to_string()
        };
        let mut url = reqwest::Url::parse(&format!("{ws_base}/v1/recognize"))
            .map_err(|e| SpeechError::Rejected(format!("service url: {e}")))?;
        for (k, v) in Self::query(&opts) {
            url.query_pairs_mut().append_pair(k, &v);
        }
        for (k, v) in &opts.extra_query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| SpeechError::Rejected(format!("service url: {e}")))?;
        if let Some(h) = self.auth.header().await? {
            let v = h
                .parse()
                .map_err(|_| SpeechError::Auth("credential not a header value".into()))?;
            request.headers_mut().insert("Authorization", v);
        }
        let (mut ws, _) =
            tokio::time::timeout(t.connect, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| SpeechError::Timeout("connect"))?
                .map_err(|e| {
                    let e = ws_error(e);
                    if matches!(e, SpeechError::Auth(_)) {
                        let auth = self.auth.clone();
                        tokio::spawn(async move { auth.invalidate().await });
                    }
                    e
                })?;
        let start = Self::start_message(&opts);
        ws.send(Message::Text(start.to_string().into()))
            .await
            .map_err(ws_error)?;
        // Wait for {"state": "listening"}.
        loop {
            let m = tokio::time::timeout(t.first_byte, ws.next())
                .await
                .map_err(|_| SpeechError::Timeout("first byte"))?;
            match m {
                None => return Err(SpeechError::ClosedMidStream),
                Some(Err(e)) => return Err(ws_error(e)),
                Some(Ok(Message::Text(txt))) => {
                    let msg: ServerMessage = serde_json::from_str(&txt)
                        .map_err(|e| SpeechError::BadResponse(format!("recognize: {e}")))?;
                    if let Some(err) = msg.error {
                        return Err(error_of(&err));
                    }
                    if msg.state.as_deref() == Some("listening") {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) => return Err(SpeechError::ClosedMidStream),
                Some(Ok(_)) => {}
            }
        }
        let (stream, worker) = RecognitionStream::channel();
        tokio::spawn(pump(ws, worker, t));
        Ok(stream)
    }

    /// Sends one HTTP request with the credentials and the first-byte/idle timeouts and
    /// returns its body; a non-success status is the typed error (a 401 also drops a
    /// cached IAM token so the next request fetches a fresh one).
    async fn exchange(
        &self,
        mut rb: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<bytes::Bytes, SpeechError> {
        let t = self.cfg.timeouts;
        if let Some(h) = self.auth.header().await? {
            rb = rb.header("Authorization", h);
        }
        let resp = tokio::time::timeout(t.first_byte, rb.send())
            .await
            .map_err(|_| SpeechError::Timeout("first byte"))?
            .map_err(|e| classify(&e, what))?;
        let status = resp.status();
        let body = tokio::time::timeout(t.idle, resp.bytes())
            .await
            .map_err(|_| SpeechError::Timeout("idle"))?
            .map_err(|e| classify(&e, what))?;
        if !status.is_success() {
            if status == 401 {
                self.auth.invalidate().await;
            }
            return Err(status_error(status, &String::from_utf8_lossy(&body)));
        }
        Ok(body)
    }

    /// `GET /v1/models`: the models the service offers.
    pub async fn list_models(&self) -> Result<Vec<SpeechModel>, SpeechError> {
        #[derive(Deserialize)]
        struct ModelsBody {
            models: Vec<SpeechModel>,
        }
        let rb = self
            .http
            .get(format!("{}/v1/models", self.cfg.url.trim_end_matches('/')));
        let body = self.exchange(rb, "models").await?;
        let m: ModelsBody = serde_json::from_slice(&body)
            .map_err(|e| SpeechError::BadResponse(format!("models: {e}")))?;
        Ok(m.models)
    }

    /// Sessionless `POST /v1/recognize` of a whole recording; returns the final results.
    pub async fn recognize_once(
        &self,
        pcm: &[i16],
        rate: SampleRate,
        opts: &RecognizeOptions,
    ) -> Result<Vec<Transcript>, SpeechError> {
        let mut rb = self
            .http
            .post(format!(
                "{}/v1/recognize",
                self.cfg.url.trim_end_matches('/')
            ))
            .query(&Self::query(opts))
            .header("Content-Type", format!("audio/l16;rate={}", rate.hz()))
            .body(pcm_to_le_bytes(pcm));
        if let Some(g) = &opts.grammar_name {
            rb = rb.query(&[("grammar_name", g)]);
        }
        let body = self.exchange(rb, "recognize").await?;
        let msg: ServerMessage = serde_json::from_slice(&body)
            .map_err(|e| SpeechError::BadResponse(format!("recognize: {e}")))?;
        if let Some(err) = msg.error {
            return Err(error_of(&err));
        }
        Ok(events_of(msg)
            .into_iter()
            .filter_map(|e| match e {
                RecognitionEvent::Final(t) => Some(t),
                _ => None,
            })
            .collect())
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Moves audio out and results in until the stream ends, is cancelled, or fails.
async fn pump(mut ws: Ws, mut w: RecognitionWorker, t: Timeouts) {
    let mut stopped = false;
    let mut audio_open = true;
    loop {
        let idle = tokio::time::sleep(t.idle);
        tokio::select! {
            biased;
            _ = &mut w.cancelled => {
                let _ = ws.close(None).await;
                return;
            }
            m = w.audio.recv(), if audio_open => match m {
                Some(AudioInput::Pcm(p)) => {
                    if let Err(e) = ws.send(Message::Binary(pcm_to_le_bytes(&p).into())).await {
                        let _ = w.events.send(Err(ws_error(e)));
                        return;
                    }
                }
                Some(AudioInput::Finish) => {
                    audio_open = false;
                    stopped = true;
                    let stop = serde_json::json!({"action": "stop"}).to_string();
                    if let Err(e) = ws.send(Message::Text(stop.into())).await {
                        let _ = w.events.send(Err(ws_error(e)));
                        return;
                    }
                }
                None => {
                    let _ = ws.close(None).await;
                    return;
                }
            },
            m = ws.next() => {
                let msg = match m {
                    None => {
                        let _ = w.events.send(Err(SpeechError::ClosedMidStream));
                        return;
                    }
                    Some(Err(e)) => {
                        let _ = w.events.send(Err(ws_error(e)));
                        return;
                    }
                    Some(Ok(Message::Text(txt))) => txt,
                    Some(Ok(Message::Close(_))) => {
                        if !stopped {
                            let _ = w.events.send(Err(SpeechError::ClosedMidStream));
                        }
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                let parsed: ServerMessage = match serde_json::from_str(&msg) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = w.events.send(Err(SpeechError::BadResponse(format!("recognize: {e}"))));
                        let _ = ws.close(None).await;
                        return;
                    }
                };
                if let Some(err) = parsed.error {
                    let _ = w.events.send(Err(error_of(&err)));
                    let _ = ws.close(None).await;
                    return;
                }
                let listening_again = parsed.state.as_deref() == Some("listening");
                for ev in events_of(parsed) {
                    if w.events.send(Ok(ev)).is_err() {
                        return;
                    }
                }
                if stopped && listening_again {
                    // All results for the audio are in.
                    let _ = ws.close(None).await;
                    return;
                }
            }
            _ = idle, if stopped => {
                let _ = w.events.send(Err(SpeechError::Timeout("idle")));
                return;
            }
        }
    }
}

impl SpeechToText for WatsonStt {
    fn recognize(
        &self,
        opts: RecognizeOptions,
    ) -> BoxFuture<'_, Result<RecognitionStream, SpeechError>> {
        Box::pin(self.start(opts))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<SpeechModel>, SpeechError>> {
        Box::pin(self.list_models())
    }
}
