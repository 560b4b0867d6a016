//! Speech to text and text to speech, as streams, behind two traits with an embedded
//! default and a Watson network client each (docs/DESIGN.md, Providers).
//!
//! - [`SpeechToText::recognize`] → [`RecognitionStream`]: `push` 8/16 kHz PCM frames as
//!   they arrive (never blocks; bounded queue), `next_event` yields interim and final
//!   [`Transcript`]s (a final one ends an utterance), `finish` ends the audio, `cancel` or
//!   drop stops it.
//! - [`TextToSpeech::synthesize`] → [`SynthesisStream`]: `next_chunk` yields audio as soon
//!   as each piece is ready; `cancel` or drop stops synthesis at once (barge-in).
//! - Every failure is a [`SpeechError`]; the call layer maps all of them to the call-failure
//!   path.
//!
//! Embedded: [`PocketSphinxStt`] (grammar from [`Grammar::from_phrases`]) and
//! [`EspeakTts`]. Network: [`WatsonStt`] and [`WatsonTts`] with [`Credentials`].
//! [`server::router`] serves the Watson APIs from the embedded engines.
//!
//! ```no_run
//! # async fn demo() -> Result<(), voxgate::speech::SpeechError> {
//! use std::sync::Arc;
//! use voxgate::speech::*;
//! let grammar = Arc::new(Grammar::from_phrases(&["talk to an agent".to_string()])?);
//! let stt = PocketSphinxStt::new(grammar);
//! let mut rec = stt.recognize(RecognizeOptions::default()).await?;
//! rec.push(&[0i16; 160])?; // each 20 ms frame from the call, at 8 kHz
//! rec.finish().await?;
//! while let Some(ev) = rec.next_event().await {
//!     if let RecognitionEvent::Final(t) = ev? { println!("{}", t.text) }
//! }
//! let tts = EspeakTts::default();
//! let mut say = tts.synthesize(SynthesisRequest::text("hello")).await?;
//! while let Some(chunk) = say.next_chunk().await { let _ = chunk?; /* to RTP */ }
//! # Ok(()) }
//! ```

use futures_util::future::BoxFuture;

mod audio;
mod auth;
pub mod endpoint;
mod error;
mod espeak;
mod grammar;
mod pocketsphinx;
pub mod server;
mod stream;
mod watson_stt;
mod watson_tts;

pub use audio::{pcm_from_le_bytes, pcm_to_le_bytes, DecoderUpsampler, Resampler, SampleRate};
pub use auth::{Credentials, Timeouts, DEFAULT_IAM_URL};
pub use error::SpeechError;
pub use espeak::{espeak_voice, EspeakTts, DEFAULT_VOICE};
pub use grammar::{normalize, Grammar};
pub use pocketsphinx::{DecodeSession, PocketSphinxStt};
pub use stream::{
    AudioChunk, AudioInput, RecognitionEvent, RecognitionStream, RecognitionWorker,
    RecognizeOptions, SpeechModel, SynthesisEncoding, SynthesisRequest, SynthesisStream,
    Transcript, Voice, AUDIO_QUEUE_FRAMES,
};
pub use watson_stt::{WatsonStt, WatsonSttConfig};
pub use watson_tts::{WatsonTts, WatsonTtsConfig};

/// A speech-to-text provider.
pub trait SpeechToText: Send + Sync + std::fmt::Debug {
    /// Open a recognition stream.
    fn recognize(
        &self,
        opts: RecognizeOptions,
    ) -> BoxFuture<'_, Result<RecognitionStream, SpeechError>>;
    /// The models offered (what `RecognizeOptions::model` may name).
    fn models(&self) -> BoxFuture<'_, Result<Vec<SpeechModel>, SpeechError>>;
}

/// A text-to-speech provider.
pub trait TextToSpeech: Send + Sync + std::fmt::Debug {
    /// Start synthesizing; audio arrives on the returned stream.
    fn synthesize(
        &self,
        req: SynthesisRequest,
    ) -> BoxFuture<'_, Result<SynthesisStream, SpeechError>>;
    /// The voices offered.
    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, SpeechError>>;
}
