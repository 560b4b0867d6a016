//! Embedded speech to text: PocketSphinx 5 with the assistant's grammar.
//!
//! Data flow per stream: the caller's `push` → bounded queue → an async task that drains
//! whatever is queued into one batch → `spawn_blocking` (at most one batch per CPU at a time,
//! by a process-wide semaphore) where a [`DecodeSession`] upsamples 8 → 16 kHz, finds speech
//! boundaries, and feeds the decoder → events back to the caller. The decoder never runs on
//! a runtime worker thread.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;
use voxgate_speech_sys::{Hypothesis, Recognizer, RecognizerConfig};

use super::endpoint::{Boundary, Endpointer};
use super::{
    AudioInput, DecoderUpsampler, Grammar, RecognitionEvent, RecognitionStream, RecognitionWorker,
    RecognizeOptions, SpeechError, SpeechModel, SpeechToText, Transcript,
};

/// Decoder options chosen on the tuning set (tests/speech/common.rs `TUNING`, 7 voices):
/// no lattice best-path pass (its result was often a prefix), a phone insertion penalty
/// that keeps long digit strings from swallowing phrases (49 → 80 of 140 with a warmed
/// decoder), a word insertion probability of 0.01 rather than the default 0.65 (`wip`: the
/// `<digit>+` loop inserted digits; 211 → 238 right of 279, clean and at 5% loss), and
/// an initial cepstral mean measured on telephone-band audio (our 8 kHz path, after the
/// tuning set): the model's default (40,3,-1,…) is so far off (C0 ≈ 53 here) that a fresh
/// decoder's first utterance came out as a digit string.
const DECODER_OPTIONS: &[(&str, &str)] = &[
    ("bestpath", "no"),
    ("pip", "4"),
    ("wip", "0.01"),
    (
        "cmninit",
        "53.4,-5.5,-1.8,2.9,0.1,-7.6,-2.6,-5.3,-6.1,4.0,-6.8,1.6,-1.9",
    ),
];

/// The confidence of a final result: a logistic model over three pieces of decoder
/// evidence, fitted on the tuning set (tests/speech/common.rs `TUNING` × 7 voices, clean and
/// at 5% loss, plus out-of-grammar speech and noise; docs/DECISIONS.md):
/// - the log of the hypothesis's lattice posterior (floored; 0 when the lattice's best path
///   is another sentence),
/// - its mean per-frame path score,
/// - how far its mean phone duration is from a typical one (squared log ratio): noise
///   decoded as a short word is either stretched over the whole burst or squeezed to the
///   minimum three frames a phone.
///
/// The output reads as a probability that the result is right (bench/README.md `## Speech`
/// has the calibration). Refit when the grammar's shape or the decoder options change.
#[derive(Debug)]
struct ConfidenceModel {
    posterior_floor: f32,
    /// ln(frames per phone) of right results (median on the tuning set: 8.35 frames).
    typical_ln_frames_per_phone: f32,
    w_log_posterior: f32,
    w_score_per_frame: f32,
    w_duration: f32,
    bias: f32,
}

const CONFIDENCE: ConfidenceModel = ConfidenceModel {
    posterior_floor: 1e-4,
    typical_ln_frames_per_phone: 2.1226,
    w_log_posterior: 0.3088,
    w_score_per_frame: 0.2420,
    w_duration: -3.081,
    bias: 10.697,
};

/// `None` when the decoder built no lattice or the text is not the grammar's (the result
/// then carries no confidence).
fn confidence(h: &Hypothesis, grammar: &Grammar) -> Option<f32> {
    let m = &CONFIDENCE;
    let posterior = h.lattice_posterior?;
    let phones = grammar.phone_count(&h.text)?;
    if h.frames == 0 || phones == 0 {
        return None;
    }
    let duration =
        (h.word_frames.max(1) as f32 / phones as f32).ln() - m.typical_ln_frames_per_phone;
    let z = m.w_log_posterior * posterior.max(m.posterior_floor).ln()
        + m.w_score_per_frame * (h.score as f32 / h.frames as f32)
        + m.w_duration * duration * duration
        + m.bias;
    Some(1.0 / (1.0 + (-z).exp()))
}

/// Decoder rate.
const DECODE_HZ: u32 = 16_000;
/// Audio kept from before the detected speech start, fed to the decoder with it.
const PREROLL_SAMPLES: usize = 16 * 300;
/// 10 ms at 16 kHz.
const STEP: usize = 160;
/// Interim hypotheses every this many steps of speech (200 ms).
const INTERIM_STEPS: u32 = 20;

fn decode_permits() -> Arc<Semaphore> {
    static P: OnceLock<Arc<Semaphore>> = OnceLock::new();
    P.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Arc::new(Semaphore::new(n))
    })
    .clone()
}

/// The embedded recogniser.
#[derive(Debug, Clone)]
pub struct PocketSphinxStt {
    model_dir: PathBuf,
    default_grammar: Arc<Grammar>,
    named: HashMap<String, Arc<Grammar>>,
}

impl PocketSphinxStt {
    /// Recognise with `default_grammar` unless a stream brings its own.
    pub fn new(default_grammar: Arc<Grammar>) -> Self {
        PocketSphinxStt {
            model_dir: voxgate_speech_sys::default_model_dir(),
            default_grammar,
            named: HashMap::new(),
        }
    }

    /// Register a grammar selectable by `RecognizeOptions::grammar_name`.
    pub fn with_named_grammar(mut self, name: impl Into<String>, g: Arc<Grammar>) -> Self {
        self.named.insert(name.into(), g);
        self
    }

    fn grammar_for(&self, opts: &RecognizeOptions) -> Result<Arc<Grammar>, SpeechError> {
        if let Some(g) = &opts.grammar {
            return Ok(g.clone());
        }
        match &opts.grammar_name {
            Some(n) => self
                .named
                .get(n)
                .cloned()
                .ok_or_else(|| SpeechError::Rejected(format!("unknown grammar_name {n:?}"))),
            None => Ok(self.default_grammar.clone()),
        }
    }

    /// The models this recogniser answers to. It has one acoustic model, US English at
    /// 8 kHz; any `en-*` model name selects it (so a Watson model name in the settings
    /// keeps working), other languages are refused.
    pub fn model_list() -> Vec<SpeechModel> {
        [
            (
                "en-US_Telephony",
                "en-US",
                "US English telephony (embedded, 8 kHz)",
            ),
            (
                "en-US_NarrowbandModel",
                "en-US",
                "US English narrowband (embedded, 8 kHz)",
            ),
            (
                "en-GB_Telephony",
                "en-GB",
                "UK English telephony (embedded US English model)",
            ),
            (
                "en-GB_NarrowbandModel",
                "en-GB",
                "UK English narrowband (embedded US English model)",
            ),
        ]
        .iter()
        .map(|(name, language, description)| SpeechModel {
            name: (*name).to_owned(),
            language: (*language).to_owned(),
            rate: 8_000,
            description: (*description).to_owned(),
        })
        .collect()
    }

    /// Start a stream (loads a decoder: ~25 ms with a trimmed dictionary).
    pub async fn start(&self, opts: RecognizeOptions) -> Result<RecognitionStream, SpeechError> {
        if let Some(m) = &opts.model {
            if !m.starts_with("en-") {
                return Err(SpeechError::Rejected(format!(
                    "model {m:?} not available (English only)"
                )));
            }
        }
        let grammar = self.grammar_for(&opts)?;
        let cfg = RecognizerConfig {
            hmm: self.model_dir.join("en-us"),
            dict: grammar.dict_file()?,
            jsgf: grammar.jsgf().to_string(),
            options: DECODER_OPTIONS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let session = tokio::task::spawn_blocking(move || DecodeSession::new(&cfg, grammar, &opts))
            .await
            .map_err(|e| SpeechError::Engine(format!("decoder task: {e}")))??;
        let (stream, worker) = RecognitionStream::channel();
        tokio::spawn(drive(worker, session));
        Ok(stream)
    }
}

impl SpeechToText for PocketSphinxStt {
    fn recognize(
        &self,
        opts: RecognizeOptions,
    ) -> BoxFuture<'_, Result<RecognitionStream, SpeechError>> {
        Box::pin(self.start(opts))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<SpeechModel>, SpeechError>> {
        Box::pin(std::future::ready(Ok(Self::model_list())))
    }
}

async fn drive(mut w: RecognitionWorker, session: DecodeSession) {
    let permits = decode_permits();
    let mut session = Some(session);
    loop {
        let first = tokio::select! {
            biased;
            _ = &mut w.cancelled => return,
            m = w.audio.recv() => m,
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while !matches!(batch.last(), Some(AudioInput::Finish)) {
            match w.audio.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(mut s) = session.take() else { return };
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut events = Vec::new();
            let mut done = false;
            for m in batch {
                match m {
                    AudioInput::Pcm(p) => s.push(&p, &mut events),
                    AudioInput::Finish => {
                        s.finish(&mut events);
                        done = true;
                    }
                }
                if events.iter().any(Result::is_err) {
                    done = true;
                    break;
                }
            }
            (s, events, done)
        });
        let (s, events, done) = match job.await {
            Ok(v) => v,
            Err(e) => {
                let _ = w
                    .events
                    .send(Err(SpeechError::Engine(format!("decoder task: {e}"))));
                return;
            }
        };
        for e in events {
            if w.events.send(e).is_err() {
                return;
            }
        }
        if done {
            return;
        }
        session = Some(s);
    }
}

/// One stream's decoding state; runs on a blocking thread, one batch at a time.
pub struct DecodeSession {
    rec: Recognizer,
    grammar: Arc<Grammar>,
    up: DecoderUpsampler,
    ep: Endpointer,
    preroll: VecDeque<i16>,
    pending: Vec<i16>,
    scratch: Vec<i16>,
    bounds: Vec<Boundary>,
    feeding: bool,
    steps: u32,
    last_interim: String,
    index: u32,
    interim: bool,
    inactivity_ms: Option<u64>,
}

impl std::fmt::Debug for DecodeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeSession")
            .field("index", &self.index)
            .finish()
    }
}

type Out = Vec<Result<RecognitionEvent, SpeechError>>;

impl DecodeSession {
    /// Load a decoder for `grammar`.
    pub fn new(
        cfg: &RecognizerConfig,
        grammar: Arc<Grammar>,
        opts: &RecognizeOptions,
    ) -> Result<Self, SpeechError> {
        let rec = Recognizer::new(cfg).map_err(|e| SpeechError::Engine(e.to_string()))?;
        Ok(DecodeSession {
            rec,
            grammar,
            up: DecoderUpsampler::new(opts.sample_rate),
            ep: Endpointer::new(DECODE_HZ, opts.end_of_phrase_silence.as_millis() as u32),
            preroll: VecDeque::with_capacity(PREROLL_SAMPLES + STEP),
            pending: Vec::new(),
            scratch: Vec::new(),
            bounds: Vec::new(),
            feeding: false,
            steps: 0,
            last_interim: String::new(),
            index: 0,
            interim: opts.interim_results,
            inactivity_ms: opts.inactivity_timeout.map(|d| d.as_millis() as u64),
        })
    }

    /// Feed PCM at the stream's rate.
    pub fn push(&mut self, pcm: &[i16], out: &mut Out) {
        self.up.push(pcm, &mut self.pending);
        self.drain(false, out);
    }

    /// End of audio: decode what is left and finalise the utterance.
    pub fn finish(&mut self, out: &mut Out) {
        self.drain(true, out);
        if self.feeding {
            self.finalise(out);
        }
    }

    fn drain(&mut self, all: bool, out: &mut Out) {
        let mut used = 0;
        while self.pending.len() - used >= STEP || (all && used < self.pending.len()) {
            let end = (used + STEP).min(self.pending.len());
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.pending[used..end]);
            used = end;
            let step = std::mem::take(&mut self.scratch);
            self.step(&step, out);
            self.scratch = step;
            if out.iter().any(Result::is_err) {
                break;
            }
        }
        self.pending.drain(..used);
    }

    fn step(&mut self, step: &[i16], out: &mut Out) {
        self.bounds.clear();
        self.ep.push(step, &mut self.bounds);
        let started = self.bounds.contains(&Boundary::Start);
        let ended = self.bounds.contains(&Boundary::End);
        if !self.feeding && started {
            self.feeding = true;
            self.steps = 0;
            let pre: Vec<i16> = self.preroll.drain(..).collect();
            if let Err(e) = self.rec.process(&pre) {
                out.push(Err(SpeechError::Engine(e.to_string())));
                return;
            }
        }
        if self.feeding {
            if let Err(e) = self.rec.process(step) {
                out.push(Err(SpeechError::Engine(e.to_string())));
                return;
            }
            self.steps += 1;
            if self.interim && self.steps % INTERIM_STEPS == 0 {
                if let Some(h) = self.rec.partial() {
                    if h.text != self.last_interim {
                        self.last_interim = h.text.clone();
                        out.push(Ok(RecognitionEvent::Interim(Transcript {
                            text: h.text,
                            confidence: None,
                            result_index: self.index,
                        })));
                    }
                }
            }
            if ended {
                self.finalise(out);
            }
        } else {
            self.preroll.extend(step.iter().copied());
            while self.preroll.len() > PREROLL_SAMPLES {
                self.preroll.pop_front();
            }
            if let Some(limit) = self.inactivity_ms {
                if self.ep.idle_ms() >= limit {
                    out.push(Err(SpeechError::Timeout("inactivity")));
                }
            }
        }
    }

    fn finalise(&mut self, out: &mut Out) {
        self.feeding = false;
        self.last_interim.clear();
        match self.rec.end_utterance() {
            Ok(Some(h)) if self.grammar.accepts(&h.text) => {
                out.push(Ok(RecognitionEvent::Final(Transcript {
                    confidence: confidence(&h, &self.grammar),
                    text: h.text,
                    result_index: self.index,
                })));
                self.index += 1;
            }
            Ok(_) => {}
            Err(e) => out.push(Err(SpeechError::Engine(e.to_string()))),
        }
    }
}
