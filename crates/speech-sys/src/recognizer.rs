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
    /// Posterior probability of the hypothesis in 0..=1, from the decoder lattice; `None`
    /// when the decoder built none (option `bestpath no`, or a partial hypothesis).
    pub confidence: Option<f32>,
}

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

    fn hyp(&mut self, with_prob: bool) -> Option<Hypothesis> {
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
        let confidence = if with_prob {
            // SAFETY: ps is live; the logmath object belongs to the decoder.
            unsafe {
                let prob = ffi::ps_get_prob(self.ps.as_ptr());
                let lm = ffi::ps_get_logmath(self.ps.as_ptr());
                // 0 (log domain) is what the decoder returns when it has no lattice.
                if lm.is_null() || prob == 0 {
                    None
                } else {
                    Some((ffi::logmath_exp(lm, prob) as f32).clamp(0.0, 1.0))
                }
            }
        } else {
            None
        };
        Some(Hypothesis {
            text,
            score,
            confidence,
        })
    }

    /// The best hypothesis so far in the current utterance (may be a prefix of a sentence).
    pub fn partial(&mut self) -> Option<Hypothesis> {
        if !self.in_utt {
            return None;
        }
        self.hyp(false)
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
        Ok(self.hyp(true))
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
