//! espeak-ng driven from one dedicated thread.
//!
//! espeak-ng keeps its state (voice, parameters, the synth callback, its output buffer) in
//! process globals and is not re-entrant, so every call must be serialised. A dedicated
//! thread is used rather than a process-wide mutex because (a) the synthesis callback
//! carries no closure, and a thread-local "current sink" on the one thread that ever calls
//! espeak is the simplest sound way to route audio to the right request; (b) a mutex would
//! park tokio blocking-pool threads while another call synthesizes, whereas a queue to one
//! thread costs callers nothing; (c) initialisation happens once, on that thread.
//! The cost: one synthesis at a time per process (espeak runs far faster than real time,
//! see bench/README.md `## Speech`); cancellation is checked at every audio buffer, so a
//! barge-in frees the thread within one buffer (`BUFFER_MS`).

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::{c_int, c_short, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use crate::ffi;

/// espeak-ng's output sample rate.
pub const ESPEAK_RATE_HZ: u32 = 22_050;
/// Length of each audio buffer espeak hands to the callback, in ms.
const BUFFER_MS: c_int = 40;

/// Why synthesis failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SynthesizerError {
    /// espeak_Initialize failed (no espeak-ng-data?).
    #[error("espeak-ng failed to initialise")]
    Init,
    /// The voice name is unknown to espeak-ng.
    #[error("espeak-ng has no voice {0:?}")]
    UnknownVoice(String),
    /// Text contained a NUL byte.
    #[error("text contains a NUL byte")]
    Nul,
    /// espeak_Synth returned an error code.
    #[error("espeak-ng synthesis failed (code {0})")]
    Synth(i32),
    /// The synthesis thread is gone.
    #[error("espeak-ng thread stopped")]
    ThreadGone,
}

/// One thing to say.
#[derive(Debug, Clone)]
pub struct SpeakRequest {
    /// UTF-8 text, or SSML when `ssml` is set.
    pub text: String,
    /// espeak-ng voice name, e.g. `en-us+f3`.
    pub voice: String,
    /// Words per minute (80..=450); `None` = espeak's default (175).
    pub rate_wpm: Option<u32>,
    /// Interpret `<...>` as SSML.
    pub ssml: bool,
    /// Set to stop synthesis at the next audio buffer (barge-in).
    pub cancel: Arc<AtomicBool>,
}

/// What the sink receives, on the espeak thread.
#[derive(Debug)]
pub enum SynthEvent<'a> {
    /// Mono PCM at [`ESPEAK_RATE_HZ`]. Return `false` from the sink to stop.
    Audio(&'a [i16]),
    /// Synthesis ended (normally, cancelled, or with an error). Always the last event.
    Finished(Result<(), SynthesizerError>),
}

/// Receives a request's audio on the espeak thread; must not block for long.
pub type Sink = Box<dyn FnMut(SynthEvent<'_>) -> bool + Send>;

struct Job {
    req: SpeakRequest,
    sink: Sink,
}

/// Handle to the process's single espeak-ng thread.
#[derive(Debug)]
pub struct Synthesizer {
    tx: Mutex<mpsc::Sender<Job>>,
}

struct Current {
    sink: Sink,
    cancel: Arc<AtomicBool>,
    stopped: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

unsafe extern "C" fn on_audio(wav: *mut c_short, n: c_int, _events: *mut c_void) -> c_int {
    if wav.is_null() || n <= 0 {
        return 0;
    }
    // SAFETY: espeak passes `n` initialised samples at `wav`, valid for this call only.
    let pcm = unsafe { std::slice::from_raw_parts(wav as *const i16, n as usize) };
    let keep_going = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            let Some(cur) = c.as_mut() else { return false };
            if cur.stopped || cur.cancel.load(Ordering::Relaxed) {
                cur.stopped = true;
                return false;
            }
            let go = (cur.sink)(SynthEvent::Audio(pcm));
            if !go {
                cur.stopped = true;
            }
            go
        })
    }))
    .unwrap_or(false);
    if keep_going {
        0
    } else {
        1
    }
}

fn prepare(
    req: &SpeakRequest,
    voice_now: &mut String,
    rate_now: &mut u32,
) -> Result<(CString, u32), SynthesizerError> {
    if req.voice != *voice_now {
        let v = CString::new(req.voice.as_bytes()).map_err(|_| SynthesizerError::Nul)?;
        // SAFETY: only the espeak thread calls espeak; v is NUL-terminated.
        if unsafe { ffi::espeak_SetVoiceByName(v.as_ptr()) } != ffi::EE_OK {
            voice_now.clear();
            return Err(SynthesizerError::UnknownVoice(req.voice.clone()));
        }
        *voice_now = req.voice.clone();
    }
    let rate = req.rate_wpm.unwrap_or(175).clamp(80, 450);
    if rate != *rate_now {
        // SAFETY: only the espeak thread calls espeak.
        unsafe { ffi::espeak_SetParameter(ffi::ESPEAK_RATE, rate as c_int, 0) };
        *rate_now = rate;
    }
    let text = CString::new(req.text.as_bytes()).map_err(|_| SynthesizerError::Nul)?;
    let mut flags = ffi::ESPEAK_CHARS_UTF8;
    if req.ssml {
        flags |= ffi::ESPEAK_SSML;
    }
    Ok((text, flags))
}

fn run(rx: mpsc::Receiver<Job>) {
    let mut voice_now = String::new();
    let mut rate_now = 0u32;
    for Job { req, mut sink } in rx {
        if req.cancel.load(Ordering::Relaxed) {
            finish(&mut sink, Ok(()));
            continue;
        }
        let (text, flags) = match prepare(&req, &mut voice_now, &mut rate_now) {
            Ok(v) => v,
            Err(e) => {
                finish(&mut sink, Err(e));
                continue;
            }
        };
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                sink,
                cancel: req.cancel.clone(),
                stopped: false,
            })
        });
        let bytes = text.as_bytes_with_nul();
        // SAFETY: only this thread calls espeak; text is NUL-terminated and outlives the
        // synchronous call, during which on_audio runs on this same thread.
        let rc = unsafe {
            ffi::espeak_Synth(
                bytes.as_ptr() as *const c_void,
                bytes.len(),
                0,
                ffi::POS_CHARACTER,
                0,
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let Some(mut cur) = CURRENT.with(|c| c.borrow_mut().take()) else {
            continue;
        };
        let outcome = if rc == ffi::EE_OK || cur.stopped {
            Ok(())
        } else {
            Err(SynthesizerError::Synth(rc))
        };
        finish(&mut cur.sink, outcome);
    }
}

/// Deliver `Finished`; a panicking sink must not take the espeak thread down.
fn finish(sink: &mut Sink, outcome: Result<(), SynthesizerError>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink(SynthEvent::Finished(outcome))
    }));
}

static GLOBAL: OnceLock<Result<Synthesizer, SynthesizerError>> = OnceLock::new();

impl Synthesizer {
    /// The process's espeak-ng thread, started (and espeak initialised) on first use.
    pub fn global() -> Result<&'static Synthesizer, SynthesizerError> {
        GLOBAL
            .get_or_init(|| {
                let (tx, rx) = mpsc::channel::<Job>();
                let (ready_tx, ready_rx) = mpsc::channel::<bool>();
                std::thread::Builder::new()
                    .name("espeak-ng".into())
                    .spawn(move || {
                        // SAFETY: first and only espeak call site on this thread; a NULL
                        // path selects the installed espeak-ng-data; DONT_EXIT keeps
                        // espeak from calling exit() on a missing data directory.
                        let rate = unsafe {
                            ffi::espeak_Initialize(
                                ffi::AUDIO_OUTPUT_SYNCHRONOUS,
                                BUFFER_MS,
                                std::ptr::null(),
                                ffi::ESPEAK_INITIALIZE_DONT_EXIT,
                            )
                        };
                        let ok = rate == ESPEAK_RATE_HZ as c_int;
                        if ok {
                            // SAFETY: on_audio matches t_espeak_callback and lives forever.
                            unsafe { ffi::espeak_SetSynthCallback(Some(on_audio)) };
                        }
                        let _ = ready_tx.send(ok);
                        if ok {
                            run(rx);
                        }
                    })
                    .map_err(|_| SynthesizerError::Init)?;
                match ready_rx.recv() {
                    Ok(true) => Ok(Synthesizer { tx: Mutex::new(tx) }),
                    _ => Err(SynthesizerError::Init),
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Queue `req`; `sink` receives its audio and then `Finished`, on the espeak thread.
    /// Returns at once. Requests are served in order, one at a time.
    pub fn speak(&self, req: SpeakRequest, sink: Sink) -> Result<(), SynthesizerError> {
        let tx = self.tx.lock().map_err(|_| SynthesizerError::ThreadGone)?;
        tx.send(Job { req, sink })
            .map_err(|_| SynthesizerError::ThreadGone)
    }
}
