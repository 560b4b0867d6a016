//! PocketSphinx 5.1.1 (compiled from its PyPI sdist by `build.rs`) and the system espeak-ng,
//! behind safe wrappers. All of voxgate's speech `unsafe` lives in this crate.
//!
//! - [`Recognizer`]: one PocketSphinx decoder with one JSGF search; `Send`, not `Sync`
//!   (one per thread at a time). Feed 16 kHz PCM, end the utterance, read the hypothesis.
//! - [`Synthesizer`]: espeak-ng, whose state is process-global, driven from one dedicated
//!   thread; requests are queued to it and audio comes back through a sink closure.
#![deny(missing_docs)]

mod ffi;
mod recognizer;
mod synthesizer;

pub use recognizer::{
    default_model_dir, silence_logging, Hypothesis, Recognizer, RecognizerConfig, RecognizerError,
    LATTICE_ASCALE,
};
pub use synthesizer::{
    Sink, SpeakRequest, SynthEvent, Synthesizer, SynthesizerError, ESPEAK_RATE_HZ,
};
