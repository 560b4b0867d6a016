//! Safe wrapper over one PocketSphinx decoder with a single JSGF search.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Once;

use crate::ffi;

/// Why the decoder refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecognizerError {
    /// A path or grammar contained a NUL byte.
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
    /// A model file is missing.
    #[error(
        "model path {0} does not exist (run scripts/setup.sh or set VOXGATE_POCKETSPHINX_MODEL)"
    )]
    MissingModel(PathBuf),
    /// A decoder option name or value was refused.
    #[error("pocketsphinx refused a decoder option")]
    BadOption,
    /// `ps_init` failed (bad model or dictionary).
    #[error("pocketsphinx could not load the model/dictionary")]
    Init,
    /// The JSGF grammar failed to parse, or named a word missing from the dictionary.
    #[error("pocketsphinx rejected the grammar (syntax, or a word missing from the dictionary)")]
    Grammar,
    /// A decoding call returned an error.
    #[error("pocketsphinx {0} failed")]
    Decode(&'static str),
}

/// Where the acoustic model and dictionary live.
#[derive(Debug, Clone)]
pub struct RecognizerConfig {
    /// Acoustic model directory (`model/en-us/en-us` in the sdist).
    pub hmm: PathBuf,
    /// Pronunciation dictionary (trimmed to the grammar's words for fast start).
    pub dict: PathBuf,
    /// JSGF grammar text.
    pub jsgf: String,
    /// Further decoder options by name without the leading `-` (e.g. `("beam", "1e-60")`).
    pub options: Vec<(String, String)>,
}

/// The en-us model directory: `$VOXGATE_POCKETSPHINX_MODEL` if set, else the sdist's
/// `model/en-us` found at build time.
pub fn default_model_dir() -> PathBuf {
    std::env::var_os("VOXGATE_POCKETSPHINX_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("VOXGATE_POCKETSPHINX_MODEL_DEFAULT")))
}

/// A recognition result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Recognised words, space separated.
    pub text: String,
    /// Decoder path score (log domain, larger is better).
    pub score: i32,
    /// Frames (10 ms each) searched in the utterance so far; `score / frames` is the mean
    /// per-frame path score, comparable between utterances of different lengths.
    pub frames: u32,
    /// Final hypotheses only: frames inside the hypothesis's words (silences and noise
    /// fillers between them excluded), from the decoder's segmentation; with the words'
    /// phone counts this gives the mean phone duration. 0 for partial hypotheses.
    pub word_frames: u32,
    /// Final hypotheses only: the sentence posterior of the word lattice's best path
    /// (PocketSphinx's `ps_lattice_posterior`, acoustic scale 1/[`LATTICE_ASCALE`]) when that
    /// path reads as this hypothesis, and `0.0` when the lattice prefers another sentence.
    /// Evidence for a confidence measure, not itself calibrated: on a grammar the mass
    /// splits over paths that differ only in silences, so it rarely exceeds ~0.2. `None`
    /// for partial hypotheses and when the decoder built no lattice.
    pub lattice_posterior: Option<f32>,
}

/// The acoustic scale of the lattice posterior (PocketSphinx's default `-ascale 20`).
pub const LATTICE_ASCALE: f32 = 20.0;

/// One PocketSphinx decoder. Use it from one thread at a time: it is `Send` (it may move
/// between threads) but not `Sync` (the C decoder has no internal locking).
#[derive(Debug)]
pub struct Recognizer {
    ps: NonNull<ffi::ps_decoder_t>,
    in_utt: bool,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

// SAFETY: the decoder owns all of its memory and has no thread affinity (the RNG is
// thread-local by PS_USE_THREAD_LOCAL_RNG, and only reseeded on init); moving it to another
// thread is sound as long as it is never used from two threads at once, which the
// `!Sync` marker guarantees.
unsafe impl Send for Recognizer {}

static QUIET: Once = Once::new();

/// Turn PocketSphinx's process-global logging off (it writes to stderr by default).
pub fn silence_logging() {
    QUIET.call_once(|| {
        // SAFETY: err_set_logfp(NULL) only stores the pointer in the library's global
        // logging state; NULL is documented to disable logging.
        unsafe { ffi::err_set_logfp(std::ptr::null_mut()) }
    });
}

fn cpath(p: &Path, what: &'static str) -> Result<CString, RecognizerError> {
    if !p.exists() {
        return Err(RecognizerError::MissingModel(p.to_path_buf()));
    }
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| RecognizerError::Nul(what))
}

impl Recognizer {
    /// Load the model and dictionary, add and activate the grammar, start an utterance.
    pub fn new(cfg: &RecognizerConfig) -> Result<Self, RecognizerError> {
        silence_logging();
        let hmm = cpath(&cfg.hmm, "hmm path")?;
        let dict = cpath(&cfg.dict, "dict path")?;
        let jsgf =
            CString::new(cfg.jsgf.as_bytes()).map_err(|_| RecognizerError::Nul("grammar"))?;
        let opts = cfg
            .options
            .iter()
            .map(|(k, v)| Ok((CString::new(k.as_str())?, CString::new(v.as_str())?)))
            .collect::<Result<Vec<_>, std::ffi::NulError>>()
            .map_err(|_| RecognizerError::Nul("option"))?;
        // SAFETY: ps_config_init(NULL) uses the built-in argument definitions and returns
        // an owned config or NULL.
        let config = unsafe { ffi::ps_config_init(std::ptr::null()) };
        if config.is_null() {
            return Err(RecognizerError::Init);
        }
        // SAFETY: config is valid; the name/value strings are NUL-terminated and outlive
        // the calls (the config copies them).
        let ps = unsafe {
            ffi::ps_config_set_str(config, c"hmm".as_ptr(), hmm.as_ptr());
            ffi::ps_config_set_str(config, c"dict".as_ptr(), dict.as_ptr());
            ffi::ps_config_set_str(config, c"loglevel".as_ptr(), c"FATAL".as_ptr());
            // No dither: its RNG is thread-local (PS_USE_THREAD_LOCAL_RNG) and seeded on the
            // thread that called ps_init, while a decoder may run on any blocking thread, so
            // results would vary from run to run. Callers add their own deterministic noise
            // floor where needed (voxgate's DecoderUpsampler does).
            ffi::ps_config_set_str(config, c"dither".as_ptr(), c"no".as_ptr());
            for (k, v) in &opts {
                if ffi::ps_config_set_str(config, k.as_ptr(), v.as_ptr()).is_null() {
                    ffi::ps_config_free(config);
                    return Err(RecognizerError::BadOption);
                }
            }
            let ps = ffi::ps_init(config);
            // The decoder retains its own reference to the config.
            ffi::ps_config_free(config);
            ps
        };
        let ps = NonNull::new(ps).ok_or(RecognizerError::Init)?;
        let mut rec = Recognizer {
            ps,
            in_utt: false,
            _not_sync: PhantomData,
        };
        // SAFETY: ps is a live decoder; strings are NUL-terminated and copied by the callee.
        let rc =
            unsafe { ffi::ps_add_jsgf_string(rec.ps.as_ptr(), c"voxgate".as_ptr(), jsgf.as_ptr()) };
        if rc < 0 {
            return Err(RecognizerError::Grammar);
        }
        // SAFETY: as above; the search named "voxgate" was just added.
        let rc = unsafe { ffi::ps_activate_search(rec.ps.as_ptr(), c"voxgate".as_ptr()) };
        if rc < 0 {
            return Err(RecognizerError::Grammar);
        }
        rec.start_utterance()?;
        Ok(rec)
    }

    /// Begin a new utterance (done by `new` and after each `end_utterance`).
    pub fn start_utterance(&mut self) -> Result<(), RecognizerError> {
        if self.in_utt {
            return Ok(());
        }
        // SAFETY: ps is a live decoder owned by self.
        if unsafe { ffi::ps_start_utt(self.ps.as_ptr()) } < 0 {
            return Err(RecognizerError::Decode("ps_start_utt"));
        }
        self.in_utt = true;
        Ok(())
    }

    /// Feed 16 kHz mono PCM (any length; 320-sample chunks work well).
    pub fn process(&mut self, pcm: &[i16]) -> Result<(), RecognizerError> {
        self.start_utterance()?;
        if pcm.is_empty() {
            return Ok(());
        }
        // SAFETY: ps is live; pcm points to pcm.len() initialised samples that the callee
        // only reads during the call.
        let rc = unsafe { ffi::ps_process_raw(self.ps.as_ptr(), pcm.as_ptr(), pcm.len(), 0, 0) };
        if rc < 0 {
            return Err(RecognizerError::Decode("ps_process_raw"));
        }
        Ok(())
    }

    fn hyp(&mut self) -> Option<Hypothesis> {
        let mut score = 0i32;
        // SAFETY: ps is live; the returned string is owned by the decoder and valid until
        // the next decoder call, so it is copied before anything else happens.
        let text = unsafe {
            let p = ffi::ps_get_hyp(self.ps.as_ptr(), &mut score);
            if p.is_null() {
                return None;
            }
            CStr::from_ptr(p).to_string_lossy().trim().to_string()
        };
        if text.is_empty() {
            return None;
        }
        // SAFETY: ps is live.
        let frames = unsafe { ffi::ps_get_n_frames(self.ps.as_ptr()) }.max(0) as u32;
        Some(Hypothesis {
            text,
            score,
            frames,
            word_frames: 0,
            lattice_posterior: None,
        })
    }

    /// Frames inside words (not fillers) on the best path, after `ps_end_utt`.
    fn word_frames(&mut self) -> u32 {
        let mut n = 0;
        // SAFETY: ps is live and its utterance has ended; the iterator is walked to its end
        // (where ps_seg_next frees it and returns NULL), and each word string is read
        // before the next step.
        unsafe {
            let mut seg = ffi::ps_seg_iter(self.ps.as_ptr());
            while !seg.is_null() {
                let w = ffi::ps_seg_word(seg);
                let filler = w.is_null() || matches!(*w as u8, b'<' | b'[' | b'(');
                if !filler {
                    let (mut sf, mut ef) = (0, 0);
                    ffi::ps_seg_frames(seg, &mut sf, &mut ef);
                    n += (ef - sf + 1).max(0) as u32;
                }
                seg = ffi::ps_seg_next(seg);
            }
        }
        n
    }

    /// The lattice's best path and its sentence posterior, after `ps_end_utt`.
    fn lattice_best(&mut self) -> Option<(String, f32)> {
        let ascale = 1.0 / LATTICE_ASCALE;
        // SAFETY: ps is live and its utterance has ended. The lattice, its links and nodes
        // are owned by the decoder's search and stay valid until the next utterance starts;
        // they are only read here, and word strings are copied at once.
        unsafe {
            let dag = ffi::ps_get_lattice(self.ps.as_ptr());
            if dag.is_null() {
                return None;
            }
            let last = ffi::ps_lattice_bestpath(dag, std::ptr::null_mut(), 1.0, ascale);
            if last.is_null() {
                return None;
            }
            let post = ffi::ps_lattice_posterior(dag, std::ptr::null_mut(), ascale);
            let lm = ffi::ps_lattice_get_logmath(dag);
            if lm.is_null() {
                return None;
            }
            let post = (ffi::logmath_exp(lm, post) as f32).clamp(0.0, 1.0);
            // The path read backwards: the end node's word, then each link's source word.
            let word = |p: *const std::os::raw::c_char| {
                (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
            };
            let mut words = Vec::new();
            words.extend(word(ffi::ps_latnode_baseword(
                dag,
                ffi::ps_latlink_nodes(last, std::ptr::null_mut()),
            )));
            let mut link = last;
            while !link.is_null() {
                words.extend(word(ffi::ps_latlink_baseword(dag, link)));
                link = ffi::ps_latlink_pred(link);
            }
            // Fillers and sentence markers are <...> and [...] in the model's noise dictionary.
            words.retain(|w| !w.starts_with('<') && !w.starts_with('['));
            words.reverse();
            Some((words.join(" "), post))
        }
    }

    /// The best hypothesis so far in the current utterance (may be a prefix of a sentence).
    pub fn partial(&mut self) -> Option<Hypothesis> {
        if !self.in_utt {
            return None;
        }
        self.hyp()
    }

    /// The decoder's current cepstral mean, as the comma-separated string the `cmninit`
    /// option takes (it adapts over utterances; use it to seed new decoders).
    pub fn cepstral_mean(&mut self) -> Option<String> {
        // SAFETY: ps is live; the string is owned by the decoder and copied at once.
        unsafe {
            let p = ffi::ps_get_cmn(self.ps.as_ptr(), 0);
            if p.is_null() {
                return None;
            }
            Some(CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    /// End the utterance and return its final hypothesis; the next `process` starts a new one.
    pub fn end_utterance(&mut self) -> Result<Option<Hypothesis>, RecognizerError> {
        if !self.in_utt {
            return Ok(None);
        }
        self.in_utt = false;
        // SAFETY: ps is live and inside an utterance.
        if unsafe { ffi::ps_end_utt(self.ps.as_ptr()) } < 0 {
            return Err(RecognizerError::Decode("ps_end_utt"));
        }
        let Some(mut h) = self.hyp() else {
            return Ok(None);
        };
        h.word_frames = self.word_frames();
        h.lattice_posterior = self
            .lattice_best()
            .map(|(path, post)| if path == h.text { post } else { 0.0 });
        Ok(Some(h))
    }
}

impl Drop for Recognizer {
    fn drop(&mut self) {
        // SAFETY: ps was returned by ps_init, is owned solely by self and freed once.
        unsafe {
            ffi::ps_free(self.ps.as_ptr());
        }
    }
}
