//! The two stream types every provider returns, and their options.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Grammar, SampleRate, SpeechError};

/// Audio frames queued per recognition stream before `push` reports `Overloaded`
/// (at 20 ms frames: 10 s).
pub const AUDIO_QUEUE_FRAMES: usize = 500;

/// How to recognise.
#[derive(Debug, Clone)]
pub struct RecognizeOptions {
    /// Rate of the PCM the caller will push.
    pub sample_rate: SampleRate,
    /// Model, e.g. `en-US_NarrowbandModel` or `en-US_Telephony`; `None` = provider default.
    pub model: Option<String>,
    /// Custom language model id (Watson `language_customization_id`).
    pub customization_id: Option<String>,
    /// Grammar name known to the service (Watson `grammar_name`).
    pub grammar_name: Option<String>,
    /// The assistant's vocabulary, for the embedded recogniser (ignored by network
    /// providers, which use `grammar_name`).
    pub grammar: Option<Arc<Grammar>>,
    /// Send interim (non-final) hypotheses.
    pub interim_results: bool,
    /// Close the stream with `Timeout("inactivity")` after this much audio without speech;
    /// `None` = never.
    pub inactivity_timeout: Option<Duration>,
    /// Silence that ends an utterance (embedded recogniser).
    pub end_of_phrase_silence: Duration,
    /// Ask the service to format numbers, dates, etc.
    pub smart_formatting: bool,
    /// More query parameters for the service (Watson: `acoustic_customization_id`,
    /// `version`, …), as the assistant configured them.
    pub extra_query: Vec<(String, String)>,
    /// More start-message parameters for the service, passed through.
    pub extra_message: serde_json::Map<String, serde_json::Value>,
}

impl Default for RecognizeOptions {
    fn default() -> Self {
        RecognizeOptions {
            sample_rate: SampleRate::Hz8000,
            model: None,
            customization_id: None,
            grammar_name: None,
            grammar: None,
            interim_results: true,
            inactivity_timeout: Some(Duration::from_secs(30)),
            end_of_phrase_silence: Duration::from_millis(500),
            smart_formatting: false,
            extra_query: Vec::new(),
            extra_message: serde_json::Map::new(),
        }
    }
}

/// One hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// Words recognised.
    pub text: String,
    /// 0..=1 on final results (Watson's alternative `confidence`; the embedded recogniser's
    /// calibrated lattice-and-score measure, see `pocketsphinx.rs`); `None` on interim
    /// results and when a provider gives none.
    pub confidence: Option<f32>,
    /// Index of the utterance within the stream (Watson `result_index`).
    pub result_index: u32,
}

/// What a recognition stream reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecognitionEvent {
    /// A hypothesis that may still change.
    Interim(Transcript),
    /// The utterance ended (end of speech or end of audio) and this is its final text.
    Final(Transcript),
}

/// What a provider pushes audio into.
#[derive(Debug)]
pub enum AudioInput {
    /// PCM at the stream's rate.
    Pcm(Vec<i16>),
    /// No more audio: finish the current utterance and end the stream.
    Finish,
}

/// The provider's side of a [`RecognitionStream`].
#[derive(Debug)]
pub struct RecognitionWorker {
    /// Audio from the caller.
    pub audio: mpsc::Receiver<AudioInput>,
    /// Events to the caller; the stream ends when this is dropped.
    pub events: mpsc::UnboundedSender<Result<RecognitionEvent, SpeechError>>,
    /// Fires (or closes) when the caller cancels or drops the stream.
    pub cancelled: oneshot::Receiver<()>,
}

/// A live recognition: push audio as it arrives, read events as they come.
/// Dropping it cancels the recognition.
#[derive(Debug)]
pub struct RecognitionStream {
    audio: mpsc::Sender<AudioInput>,
    events: mpsc::UnboundedReceiver<Result<RecognitionEvent, SpeechError>>,
    cancel: Option<oneshot::Sender<()>>,
    finished: bool,
}

impl RecognitionStream {
    /// A stream and the worker end a provider drives.
    pub fn channel() -> (RecognitionStream, RecognitionWorker) {
        let (atx, arx) = mpsc::channel(AUDIO_QUEUE_FRAMES);
        let (etx, erx) = mpsc::unbounded_channel();
        let (ctx, crx) = oneshot::channel();
        (
            RecognitionStream {
                audio: atx,
                events: erx,
                cancel: Some(ctx),
                finished: false,
            },
            RecognitionWorker {
                audio: arx,
                events: etx,
                cancelled: crx,
            },
        )
    }

    /// Queue one frame of PCM (any length) at the stream's rate. Never blocks.
    pub fn push(&self, pcm: &[i16]) -> Result<(), SpeechError> {
        if self.finished {
            return Err(SpeechError::Rejected("audio pushed after finish".into()));
        }
        self.audio
            .try_send(AudioInput::Pcm(pcm.to_vec()))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SpeechError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => SpeechError::ClosedMidStream,
            })
    }

    /// Queue PCM, waiting for room in the queue (for producers that may run ahead of real
    /// time, such as a server relaying a client's upload).
    pub async fn send(&self, pcm: Vec<i16>) -> Result<(), SpeechError> {
        if self.finished {
            return Err(SpeechError::Rejected("audio pushed after finish".into()));
        }
        self.audio
            .send(AudioInput::Pcm(pcm))
            .await
            .map_err(|_| SpeechError::ClosedMidStream)
    }

    /// No more audio: the provider finalises the current utterance, then the event stream
    /// ends.
    pub async fn finish(&mut self) -> Result<(), SpeechError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.audio
            .send(AudioInput::Finish)
            .await
            .map_err(|_| SpeechError::ClosedMidStream)
    }

    /// The next event; `None` once the stream has ended.
    pub async fn next_event(&mut self) -> Option<Result<RecognitionEvent, SpeechError>> {
        self.events.recv().await
    }

    /// Stop at once; no further events are delivered.
    pub fn cancel(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
        self.events.close();
    }
}

/// Encoding of synthesized audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynthesisEncoding {
    /// Signed 16-bit PCM (`audio/l16`), delivered as [`AudioChunk::Pcm`].
    #[default]
    Linear16,
    /// G.711 µ-law bytes (`audio/mulaw`, 8 kHz only), passed through untouched as
    /// [`AudioChunk::Mulaw`] so the call can send them as RTP without re-encoding.
    Mulaw,
}

/// What to say.
#[derive(Debug, Clone)]
pub struct SynthesisRequest {
    /// Plain text, or SSML when `ssml` is set.
    pub text: String,
    /// The text is SSML (`<speak>…</speak>`).
    pub ssml: bool,
    /// Watson voice name, e.g. `en-US_AllisonV3Voice`; `None` = provider default.
    pub voice: Option<String>,
    /// Output rate.
    pub sample_rate: SampleRate,
    /// Output encoding.
    pub encoding: SynthesisEncoding,
    /// More query parameters for the service (Watson: `customization_id`,
    /// `rate_percentage`, …), as the assistant configured them.
    pub extra_query: Vec<(String, String)>,
}

impl SynthesisRequest {
    /// Plain text at 8 kHz PCM in the default voice.
    pub fn text(text: impl Into<String>) -> Self {
        SynthesisRequest {
            text: text.into(),
            ssml: false,
            voice: None,
            sample_rate: SampleRate::Hz8000,
            encoding: SynthesisEncoding::Linear16,
            extra_query: Vec::new(),
        }
    }
}

/// A piece of synthesized audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioChunk {
    /// PCM samples at the request's rate.
    Pcm(Vec<i16>),
    /// µ-law bytes at 8 kHz.
    Mulaw(Vec<u8>),
}

impl AudioChunk {
    /// Number of samples in the chunk.
    pub fn samples(&self) -> usize {
        match self {
            AudioChunk::Pcm(p) => p.len(),
            AudioChunk::Mulaw(b) => b.len(),
        }
    }
}

/// A voice a provider offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Voice {
    /// Watson name, e.g. `en-US_AllisonV3Voice`.
    pub name: String,
    /// BCP 47 language, e.g. `en-US`.
    pub language: String,
    /// `female` or `male`.
    pub gender: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
}

/// A speech-to-text model (Watson `GET /v1/models` entry).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpeechModel {
    /// Watson name, e.g. `en-US_Telephony`.
    pub name: String,
    /// BCP 47 language, e.g. `en-US`.
    pub language: String,
    /// Sampling rate the model is for, Hz.
    #[serde(default)]
    pub rate: u32,
    /// Human description.
    #[serde(default)]
    pub description: String,
}

/// Synthesized audio arriving chunk by chunk. Dropping it (or `cancel`) stops synthesis
/// at once (barge-in).
#[derive(Debug)]
pub struct SynthesisStream {
    chunks: mpsc::UnboundedReceiver<Result<AudioChunk, SpeechError>>,
    cancel: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl SynthesisStream {
    /// A stream fed by `chunks`; `cancel` is set and `task` aborted on cancel/drop.
    pub fn new(
        chunks: mpsc::UnboundedReceiver<Result<AudioChunk, SpeechError>>,
        cancel: Arc<AtomicBool>,
        task: Option<JoinHandle<()>>,
    ) -> Self {
        SynthesisStream {
            chunks,
            cancel,
            task,
        }
    }

    /// The next chunk; `None` when synthesis is complete.
    pub async fn next_chunk(&mut self) -> Option<Result<AudioChunk, SpeechError>> {
        self.chunks.recv().await
    }

    /// Stop synthesis now; no further chunks are delivered.
    pub fn cancel(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.chunks.close();
        while self.chunks.try_recv().is_ok() {}
    }
}

impl Drop for SynthesisStream {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Drop for RecognitionStream {
    fn drop(&mut self) {
        self.cancel();
    }
}
