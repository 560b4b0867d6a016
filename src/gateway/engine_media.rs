//! [`MediaPort`] on the media engine (`voxgate_engine::worker::Engine`): one engine
//! session per call, the prompt queued with `Play` and queued again on `PlaybackIdle`
//! so media keeps flowing until the call layer takes over. A relay thread drains the
//! engine's event queue (ports return to the pool only once `Closed` is seen) and keeps
//! per-session packet counts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use voxgate_engine::worker::{Command, Engine, Event, SessionId};

use super::media::{MediaError, MediaPort, Prompt};
use crate::call::media::{follow_reoffer, Peer};
use crate::sip::dialog::{CallRef, Direction};
use crate::sip::ua::NegotiatedMedia;

/// Packets (out, in) of closed sessions.
type Counts = Arc<Mutex<(u64, u64)>>;
/// Sessions on hold with no sending direction: the prompt is not re-queued for them.
type Held = Arc<Mutex<HashSet<SessionId>>>;

/// Calls' media on the engine.
pub struct EngineMedia {
    engine: Arc<Engine>,
    prompt: Arc<[i16]>,
    /// Per call: its engine session and the trunk's media as last negotiated.
    sessions: HashMap<CallRef, (SessionId, Peer)>,
    counts: Counts,
    held: Held,
    stop: Arc<AtomicBool>,
    relay: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EngineMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMedia")
            .field("engine", &self.engine)
            .field("calls", &self.sessions.len())
            .finish()
    }
}

impl EngineMedia {
    /// Wraps a started engine; `prompt` is looped on every answered call.
    pub fn new(engine: Engine, prompt: &Prompt) -> Self {
        let engine = Arc::new(engine);
        let prompt: Arc<[i16]> = prompt.samples().into();
        let counts: Counts = Arc::default();
        let held: Held = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (e, p, c, h, s) = (
            engine.clone(),
            prompt.clone(),
            counts.clone(),
            held.clone(),
            stop.clone(),
        );
        let relay = std::thread::Builder::new()
            .name("media-events".into())
            .spawn(move || relay(e, p, c, h, s))
            .ok();
        Self {
            engine,
            prompt,
            sessions: HashMap::new(),
            counts,
            held,
            stop,
            relay,
        }
    }
}

fn relay(
    engine: Arc<Engine>,
    prompt: Arc<[i16]>,
    counts: Counts,
    held: Held,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        engine.wait_events(Some(Duration::from_millis(100)));
        for _ in 0..100_000 {
            let Some(ev) = engine.poll_event() else { break };
            match ev {
                Event::PlaybackIdle { id }
                    if !held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(&id) =>
                {
                    let _ = engine.command(Command::Play {
                        id,
                        pcm: prompt.as_ref().into(),
                    });
                }
                Event::Closed { id, stats } => {
                    held.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                    let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
                    c.0 += stats.packets_out;
                    c.1 += stats.packets_in;
                }
                _ => {}
            }
        }
    }
}

impl Drop for EngineMedia {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.relay.take() {
            let _ = t.join();
        }
    }
}

impl MediaPort for EngineMedia {
    fn open(&mut self, call: CallRef, media: &NegotiatedMedia) -> Result<SocketAddr, MediaError> {
        // The same mapping as the call layer's media hub: codec, payload types,
        // rtcp-mux, Opus parameters and SDES keys.
        let cfg = crate::call::media::session_config(
            media,
            voxgate_engine::codec::opus::DEFAULT_COMPLEXITY,
        )?;
        let handle = self
            .engine
            .open_session(cfg)
            .map_err(|e| MediaError::Engine(e.to_string()))?;
        self.sessions.insert(call, (handle.id, Peer::of(media)));
        Ok(handle.local_rtp)
    }

    fn start(&mut self, call: CallRef, _media: &NegotiatedMedia) {
        if let Some(&(id, _)) = self.sessions.get(&call) {
            if let Err(e) = self.engine.command(Command::Play {
                id,
                pcm: self.prompt.as_ref().into(),
            }) {
                tracing::warn!(%id, "prompt not queued: {e}");
            }
        }
    }

    fn update(&mut self, call: CallRef, media: &NegotiatedMedia) {
        // A move or a new trunk key retargets the session as the call layer's hub does.
        // On hold with no sending direction (we answered recvonly/inactive) the prompt
        // stops; it starts again on resume.
        let Some((id, peer)) = self.sessions.get_mut(&call) else {
            return;
        };
        let (id, new) = (*id, Peer::of(media));
        let old = std::mem::replace(peer, new.clone());
        follow_reoffer(&self.engine, call, id, &old, &new);
        let sends = matches!(media.direction, Direction::SendRecv | Direction::SendOnly);
        let was_held = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            if sends {
                held.remove(&id)
            } else {
                !held.insert(id)
            }
        };
        let command = match (sends, was_held) {
            (false, false) => Some(Command::StopPlayback { id }),
            (true, true) => Some(Command::Play {
                id,
                pcm: self.prompt.as_ref().into(),
            }),
            _ => None,
        };
        if let Some(c) = command {
            if let Err(e) = self.engine.command(c) {
                tracing::warn!(%id, "media update not queued: {e}");
            }
        }
    }

    fn close(&mut self, call: CallRef) {
        if let Some((id, _)) = self.sessions.remove(&call) {
            if let Err(e) = self.engine.command(Command::Close { id }) {
                tracing::warn!(%id, "close not queued: {e}");
            }
        }
    }

    fn totals(&self) -> (u64, u64) {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
