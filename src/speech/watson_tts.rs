//! Watson Text to Speech client: `POST /v1/synthesize` with the chunked body consumed as it
//! arrives, and `GET /v1/voices`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::auth::{classify, http_client, status_error};
use super::{
    AudioChunk, Credentials, SpeechError, SynthesisEncoding, SynthesisRequest, SynthesisStream,
    TextToSpeech, Timeouts, Voice,
};
use crate::credentials::Authorizer;

/// Where and how to reach Watson TTS.
#[derive(Debug, Clone)]
pub struct WatsonTtsConfig {
    /// Service URL (the instance URL, without `/v1`).
    pub url: String,
    /// Credentials.
    pub credentials: Credentials,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// Watson TTS over HTTP.
#[derive(Debug, Clone)]
pub struct WatsonTts {
    cfg: WatsonTtsConfig,
    http: reqwest::Client,
    auth: Arc<Authorizer>,
}

#[derive(Deserialize)]
struct VoicesBody {
    voices: Vec<Voice>,
}

impl WatsonTts {
    /// A client for `cfg`.
    pub fn new(cfg: WatsonTtsConfig) -> Result<Self, SpeechError> {
        let http = http_client(&cfg.timeouts)?;
        let auth = Arc::new(Authorizer::new(
            cfg.credentials.clone(),
            http.clone(),
            cfg.timeouts.token_exchange(),
        ));
        Ok(WatsonTts { cfg, http, auth })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.cfg.url.trim_end_matches('/'), path)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, SpeechError> {
        let rb = match self.auth.header().await? {
            Some(h) => rb.header("Authorization", h),
            None => rb,
        };
        let resp = tokio::time::timeout(self.cfg.timeouts.first_byte, rb.send())
            .await
            .map_err(|_| SpeechError::Timeout("first byte"))?
            .map_err(|e| classify(&e, "synthesize"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            if status == 401 {
                self.auth.invalidate().await;
            }
            let body = tokio::time::timeout(self.cfg.timeouts.idle, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(status_error(status, &body));
        }
        Ok(resp)
    }

    /// Start synthesis; returns once the response headers arrived.
    pub async fn start(&self, req: SynthesisRequest) -> Result<SynthesisStream, SpeechError> {
        let rate = req.sample_rate.hz();
        let accept = match req.encoding {
            SynthesisEncoding::Linear16 => format!("audio/l16;rate={rate}"),
            SynthesisEncoding::Mulaw => format!("audio/mulaw;rate={rate}"),
        };
        let mut rb = self
            .http
            .post(self.url("/v1/synthesize"))
            .header("Accept", &accept)
            .json(&serde_json::json!({ "text": req.text }));
        if let Some(v) = &req.voice {
            rb = rb.query(&[("voice", v)]);
        }
        if !req.extra_query.is_empty() {
            rb = rb.query(&req.extra_query);
        }
        let resp = self.send(rb).await?;
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let want = if req.encoding == SynthesisEncoding::Linear16 {
            "audio/l16"
        } else {
            "audio/mulaw"
        };
        if !ctype.starts_with(want) {
            return Err(SpeechError::BadResponse(format!(
                "content-type {ctype:?}, expected {want}"
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let idle = self.cfg.timeouts.idle;
        let first = self.cfg.timeouts.first_byte;
        let encoding = req.encoding;
        let task = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut carry: Option<u8> = None;
            let mut got_any = false;
            loop {
                let limit = if got_any { idle } else { first };
                let next = match tokio::time::timeout(limit, body.next()).await {
                    Err(_) => Err(SpeechError::Timeout(if got_any {
                        "idle"
                    } else {
                        "first byte"
                    })),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => Err(classify(&e, "synthesize body")),
                    Ok(Some(Ok(b))) => Ok(b),
                };
                let bytes = match next {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                got_any = true;
                let chunk = match encoding {
                    SynthesisEncoding::Mulaw => AudioChunk::Mulaw(bytes.to_vec()),
                    SynthesisEncoding::Linear16 => {
                        let mut pcm = Vec::with_capacity(bytes.len() / 2 + 1);
                        let mut rest: &[u8] = &bytes;
                        if let (Some(lo), Some(&hi)) = (carry, rest.first()) {
                            pcm.push(i16::from_le_bytes([lo, hi]));
                            rest = &rest[1..];
                            carry = None;
                        }
                        let pairs = rest.chunks_exact(2);
                        carry = pairs.remainder().first().copied().or(carry);
                        pcm.extend(pairs.map(|b| i16::from_le_bytes([b[0], b[1]])));
                        AudioChunk::Pcm(pcm)
                    }
                };
                if chunk.samples() > 0 && tx.send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        Ok(SynthesisStream::new(
            rx,
            Arc::new(AtomicBool::new(false)),
            Some(task),
        ))
    }

    /// `GET /v1/voices`.
    pub async fn list_voices(&self) -> Result<Vec<Voice>, SpeechError> {
        let resp = self.send(self.http.get(self.url("/v1/voices"))).await?;
        let body = tokio::time::timeout(self.cfg.timeouts.idle, resp.bytes())
            .await
            .map_err(|_| SpeechError::Timeout("idle"))?
            .map_err(|e| classify(&e, "voices body"))?;
        let v: VoicesBody = serde_json::from_slice(&body)
            .map_err(|e| SpeechError::BadResponse(format!("voices: {e}")))?;
        Ok(v.voices)
    }
}

impl TextToSpeech for WatsonTts {
    fn synthesize(
        &self,
        req: SynthesisRequest,
    ) -> BoxFuture<'_, Result<SynthesisStream, SpeechError>> {
        Box::pin(self.start(req))
    }

    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, SpeechError>> {
        Box::pin(self.list_voices())
    }
}
