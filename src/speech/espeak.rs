//! Embedded text to speech: espeak-ng, with Watson voice names mapped to espeak voices.
//! Audio is resampled 22,050 → 8,000/16,000 Hz on the espeak thread, chunk by chunk, and
//! handed over as soon as each espeak buffer (40 ms) is ready.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use voxgate_engine::codec::g711::ulaw_encode;
use voxgate_speech_sys::{SpeakRequest, SynthEvent, Synthesizer, SynthesizerError, ESPEAK_RATE_HZ};

use super::{
    AudioChunk, Resampler, SampleRate, SpeechError, SynthesisEncoding, SynthesisRequest,
    SynthesisStream, TextToSpeech, Voice,
};

/// Watson voice name → (espeak voice, language, gender).
const VOICES: &[(&str, &str, &str, &str)] = &[
    ("en-US_AllisonV3Voice", "en-us+f3", "en-US", "female"),
    ("en-US_LisaV3Voice", "en-us+f2", "en-US", "female"),
    ("en-US_EmilyV3Voice", "en-us+f4", "en-US", "female"),
    ("en-US_OliviaV3Voice", "en-us+f5", "en-US", "female"),
    ("en-US_MichaelV3Voice", "en-us+m3", "en-US", "male"),
    ("en-US_KevinV3Voice", "en-us+m7", "en-US", "male"),
    ("en-US_HenryV3Voice", "en-us+m2", "en-US", "male"),
    ("en-GB_KateV3Voice", "en+f3", "en-GB", "female"),
    ("en-GB_CharlotteV3Voice", "en-gb-x-rp+f4", "en-GB", "female"),
    ("en-GB_JamesV3Voice", "en+m3", "en-GB", "male"),
];

/// Voice used when a request names none.
pub const DEFAULT_VOICE: &str = "en-US_AllisonV3Voice";

/// The espeak-ng voice for a Watson voice name (or a raw espeak name prefixed `espeak:`).
pub fn espeak_voice(watson: &str) -> Option<String> {
    if let Some(raw) = watson.strip_prefix("espeak:") {
        return Some(raw.to_string());
    }
    VOICES
        .iter()
        .find(|v| v.0 == watson)
        .map(|v| v.1.to_string())
}

/// The embedded synthesizer.
#[derive(Debug, Clone, Default)]
pub struct EspeakTts {
    /// Words per minute (espeak default 175).
    pub rate_wpm: Option<u32>,
}

impl EspeakTts {
    /// The Watson voices offered.
    pub fn voice_list() -> Vec<Voice> {
        VOICES
            .iter()
            .map(|(name, esp, lang, gender)| Voice {
                name: name.to_string(),
                language: lang.to_string(),
                gender: gender.to_string(),
                description: format!("espeak-ng {esp}"),
            })
            .collect()
    }

    /// Start synthesis; chunks arrive as espeak produces them.
    pub fn start(&self, req: SynthesisRequest) -> Result<SynthesisStream, SpeechError> {
        let mulaw = req.encoding == SynthesisEncoding::Mulaw;
        if mulaw && req.sample_rate != SampleRate::Hz8000 {
            return Err(SpeechError::UnsupportedAudio(
                "audio/mulaw is 8 kHz only".into(),
            ));
        }
        let chunk = move |pcm: Vec<i16>| {
            if mulaw {
                AudioChunk::Mulaw(pcm.iter().map(|&s| ulaw_encode(s)).collect())
            } else {
                AudioChunk::Pcm(pcm)
            }
        };
        let name = req.voice.as_deref().unwrap_or(DEFAULT_VOICE);
        let voice = espeak_voice(name)
            .ok_or_else(|| SpeechError::Rejected(format!("unknown voice {name:?}")))?;
        let synth = Synthesizer::global().map_err(|e| SpeechError::Engine(e.to_string()))?;
        let mut rs = Resampler::new(ESPEAK_RATE_HZ, req.sample_rate.hz())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let sink_tx = tx.clone();
        synth
            .speak(
                SpeakRequest {
                    text: req.text,
                    voice,
                    rate_wpm: self.rate_wpm,
                    ssml: req.ssml,
                    cancel: cancel.clone(),
                },
                Box::new(move |ev| match ev {
                    SynthEvent::Audio(pcm) => {
                        let mut out = Vec::with_capacity(pcm.len() / 2 + 16);
                        rs.push(pcm, &mut out);
                        out.is_empty() || sink_tx.send(Ok(chunk(out))).is_ok()
                    }
                    SynthEvent::Finished(r) => {
                        let mut out = Vec::new();
                        rs.finish(&mut out);
                        if !out.is_empty() {
                            let _ = sink_tx.send(Ok(chunk(out)));
                        }
                        if let Err(e) = r {
                            let err = match e {
                                SynthesizerError::UnknownVoice(v) => {
                                    SpeechError::Rejected(format!("voice {v}"))
                                }
                                other => SpeechError::Engine(other.to_string()),
                            };
                            let _ = sink_tx.send(Err(err));
                        }
                        false
                    }
                }),
            )
            .map_err(|e| SpeechError::Engine(e.to_string()))?;
        drop(tx);
        Ok(SynthesisStream::new(rx, cancel, None))
    }
}

impl TextToSpeech for EspeakTts {
    fn synthesize(
        &self,
        req: SynthesisRequest,
    ) -> BoxFuture<'_, Result<SynthesisStream, SpeechError>> {
        Box::pin(async move { self.start(req) })
    }

    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, SpeechError>> {
        Box::pin(async { Ok(Self::voice_list()) })
    }
}
