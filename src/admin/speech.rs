//! Speech choices for the console: the configured speech-to-text provider's models, the
//! text-to-speech provider's voices and a short WAV sample of one of them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{AdminState, ApiError, FieldError};
use crate::speech::{AudioChunk, SynthesisRequest};

/// Longest sample text, characters.
const MAX_SAMPLE_TEXT: usize = 500;
/// Longest sample, in 8 kHz samples (30 s).
const MAX_SAMPLE_SAMPLES: usize = 8_000 * 30;

const DEFAULT_SAMPLE: &str = "Hello, thanks for calling. How can I help you today?";

fn unavailable(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": "speech_unavailable", "message": message})),
    )
        .into_response()
}

/// `GET /v1/speech/voices`.
pub(super) async fn voices(State(st): State<AdminState>) -> Response {
    let Some(tts) = st.tts.get() else {
        return unavailable("no text-to-speech provider is running".into());
    };
    match tts.voices().await {
        Ok(v) => Json(serde_json::json!({ "voices": v })).into_response(),
        Err(e) => unavailable(format!("text to speech: {e}")),
    }
}

/// `GET /v1/speech/models`: the configured speech-to-text provider's models.
pub(super) async fn models(State(st): State<AdminState>) -> Response {
    let Some(stt) = st.stt.get() else {
        return unavailable("no speech-to-text provider is running".into());
    };
    match stt.models().await {
        Ok(m) => Json(serde_json::json!({ "models": m })).into_response(),
        Err(e) => unavailable(format!("speech to text: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SampleRequest {
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// `POST /v1/speech/sample`: WAV, 8 kHz 16-bit mono.
pub(super) async fn sample(State(st): State<AdminState>, body: Bytes) -> Response {
    let req: SampleRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::BadRequest {
                field: None,
                message: e.to_string(),
            }
            .into_response()
        }
    };
    let text = req.text.unwrap_or_else(|| DEFAULT_SAMPLE.to_owned());
    if text.chars().count() > MAX_SAMPLE_TEXT || text.trim().is_empty() {
        return ApiError::InvalidFields(vec![FieldError {
            field: "text".into(),
            reason: format!("1 to {MAX_SAMPLE_TEXT} characters"),
        }])
        .into_response();
    }
    let Some(tts) = st.tts.get() else {
        return unavailable("no text-to-speech provider is running".into());
    };
    let mut r = SynthesisRequest::text(text);
    r.voice = req.voice.filter(|v| !v.trim().is_empty());
    let mut stream = match tts.synthesize(r).await {
        Ok(s) => s,
        Err(e) => return unavailable(format!("text to speech: {e}")),
    };
    let mut pcm: Vec<i16> = Vec::new();
    while let Some(chunk) = stream.next_chunk().await {
        match chunk {
            Ok(AudioChunk::Pcm(p)) => pcm.extend_from_slice(&p),
            Ok(AudioChunk::Mulaw(b)) => pcm.extend(b.iter().map(|&x| mulaw_to_linear(x))),
            Err(e) => return unavailable(format!("text to speech: {e}")),
        }
        if pcm.len() >= MAX_SAMPLE_SAMPLES {
            pcm.truncate(MAX_SAMPLE_SAMPLES);
            stream.cancel();
            break;
        }
    }
    ([(header::CONTENT_TYPE, "audio/wav")], wav_8k_mono(&pcm)).into_response()
}

/// G.711 µ-law byte to linear PCM.
fn mulaw_to_linear(b: u8) -> i16 {
    let u = !b;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    let v = if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 };
    v as i16
}

/// A RIFF/WAVE file of 8 kHz 16-bit mono PCM.
fn wav_8k_mono(pcm: &[i16]) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_describes_the_samples() {
        let w = wav_8k_mono(&[0, 1, -1]);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[4], w[5], w[6], w[7]]), 36 + 6);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 6);
        assert_eq!(w.len(), 44 + 6);
    }

    #[test]
    fn mulaw_silence_and_extremes() {
        assert_eq!(mulaw_to_linear(0xff), 0);
        assert_eq!(mulaw_to_linear(0x7f), 0);
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
    }
}
