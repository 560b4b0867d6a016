//! Calls' media on the engine, routed per call.
//!
//! [`MediaHub`] is the gateway's [`MediaPort`]: the SIP core asks it for an engine
//! session when it answers a call. One relay thread waits on the engine's event fd and
//! routes each event by session to the call's own channel, created at `open` so nothing
//! is lost before the call task attaches. Call tasks send `Play`/`StopPlayback`/`SendDtmf`
//! straight to the engine's per-core command queue through [`CallMedia`].
//!
//! The route table is touched only when a call starts or ends and by the relay thread,
//! never by the media cores: the packet path stays lock-free. The relay thread also
//! copies the engine's counters to `/metrics` ([`crate::call::media_metrics`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use voxgate_engine::codec::CodecKind;
use voxgate_engine::session::{SessionConfig, SessionStats};
use voxgate_engine::srtp::sdes::CryptoAttribute;
use voxgate_engine::worker::{Command, Engine, EngineError, Event, SessionId};

use crate::call::media_metrics::MediaMetrics;
use crate::gateway::media::{MediaError, MediaPort};
use crate::sip::dialog::CallRef;
use crate::sip::ua::NegotiatedMedia;

#[derive(Debug, Default)]
struct Routes {
    by_session: HashMap<SessionId, mpsc::UnboundedSender<Event>>,
    by_call: HashMap<CallRef, (SessionId, Option<mpsc::UnboundedReceiver<Event>>, CodecKind)>,
    /// Per call: where the trunk last asked for RTP and its SRTP key (to notice a move).
    peers: HashMap<CallRef, Peer>,
    /// Packets (out, in) of closed sessions.
    closed_totals: (u64, u64),
    /// What has been copied to the Prometheus registry.
    metrics: MediaMetrics,
}

/// The trunk's side of a call's media as last negotiated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Peer {
    remote_rtp: Option<SocketAddr>,
    /// The trunk's accepted keying, normalised: tag 0 and no `WSH=` hint, so that a
    /// re-offer which renumbers or respells the same keying (`2^31` as `2147483648`,
    /// other spacing, a window hint) does not re-key. A new context would restart the
    /// rollover counter and the replay window. (Debug of the attribute hides the key.)
    key: Option<CryptoAttribute>,
}

impl Peer {
    pub(crate) fn of(media: &NegotiatedMedia) -> Peer {
        Peer {
            remote_rtp: media.remote_rtp,
            key: media.srtp.as_ref().and_then(|k| {
                let mut a = CryptoAttribute::parse(&k.remote).ok()?;
                a.tag = 0;
                a.wsh = None;
                Some(a)
            }),
        }
    }
}

/// The command that moves a session to the trunk's renegotiated media, if it moved: a
/// new address (not a hold to 0.0.0.0) or a new SRTP key. The new key's context is
/// built here, on the control side, never on a media core.
fn retarget(id: SessionId, old: &Peer, new: &Peer) -> Result<Option<Command>, MediaError> {
    let moved = new.remote_rtp.filter(|a| Some(*a) != old.remote_rtp);
    let rekeyed = new
        .key
        .as_ref()
        .filter(|k| !old.key.as_ref().is_some_and(|o| same_key(o, k)));
    let Some(remote_rtp) = moved.or(if rekeyed.is_some() {
        old.remote_rtp
    } else {
        None
    }) else {
        return Ok(None);
    };
    let inbound = match rekeyed {
        Some(attr) => {
            let ctx = attr
                .context()
                .map_err(|e| MediaError::Engine(format!("the trunk's new crypto: {e}")))?;
            Some(Box::new(ctx))
        }
        None => None,
    };
    Ok(Some(Command::Retarget {
        id,
        remote_rtp,
        remote_rtcp: None,
        inbound,
    }))
}

/// Moves engine session `id` of `call` from the trunk's media `old` to its re-offered
/// `new` when it moved or re-keyed ([`retarget`]), and says what it did in the log.
/// Both media ports (the call layer's hub and the SIP tests' engine port) follow a
/// re-offer through here.
pub(crate) fn follow_reoffer(
    engine: &Engine,
    call: CallRef,
    id: SessionId,
    old: &Peer,
    new: &Peer,
) {
    match retarget(id, old, new) {
        Ok(Some(c)) => {
            tracing::info!(call = call.0, remote = ?new.remote_rtp, "trunk media moved: session retargeted");
            if let Err(e) = engine.command(c) {
                tracing::warn!(call = call.0, "retarget not queued: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(call = call.0, "re-offer not applied: {e}"),
    }
}

/// Whether two accepted keyings of the trunk are the same key: suite, key and salt, MKI
/// and KDR. A re-offer that only restates the lifetime keeps the session's context: a
/// new context under the same master key would start an empty replay window, in which
/// packets captured under that key could be played again.
fn same_key(a: &CryptoAttribute, b: &CryptoAttribute) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.lifetime = None;
    b.lifetime = None;
    a == b
}

/// The engine, shared by the SIP core's media port and the call tasks.
#[derive(Debug, Clone)]
pub struct MediaHub {
    engine: Arc<Engine>,
    /// Opus encoder complexity for new sessions.
    opus_complexity: Arc<std::sync::atomic::AtomicU8>,
    routes: Arc<Mutex<Routes>>,
    stop: Arc<AtomicBool>,
}

impl MediaHub {
    /// Wraps a started engine and starts the relay thread.
    pub fn new(engine: Engine) -> std::io::Result<MediaHub> {
        let hub = MediaHub {
            engine: Arc::new(engine),
            opus_complexity: Arc::new(std::sync::atomic::AtomicU8::new(
                voxgate_engine::codec::opus::DEFAULT_COMPLEXITY,
            )),
            routes: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let relay = hub.clone();
        std::thread::Builder::new()
            .name("media-events".into())
            .spawn(move || relay.relay())?;
        Ok(hub)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn relay(self) {
        while !self.stop.load(Ordering::Relaxed) {
            self.engine.wait_events(Some(Duration::from_millis(100)));
            // Bounded per wake-up so a flood cannot starve the stop check.
            for _ in 0..65_536 {
                let Some(ev) = self.engine.poll_event() else {
                    break;
                };
                let id = ev.id();
                let mut routes = self.routes();
                routes.metrics.observe(&ev);
                if let Event::Closed { stats, .. } = &ev {
                    routes.closed_totals.0 += stats.packets_out;
                    routes.closed_totals.1 += stats.packets_in;
                    if let Some(tx) = routes.by_session.remove(&id) {
                        let _ = tx.send(ev);
                    }
                    continue;
                }
                if let Some(tx) = routes.by_session.get(&id) {
                    let _ = tx.send(ev);
                }
            }
            self.routes()
                .metrics
                .copy_engine(&self.engine, std::time::Instant::now());
        }
    }

    /// The call task's side of its media, once the SIP core opened it.
    pub fn attach(&self, call: CallRef) -> Option<CallMedia> {
        let mut routes = self.routes();
        let (id, rx, codec) = routes.by_call.get_mut(&call)?;
        let events = rx.take()?;
        Some(CallMedia {
            engine: self.engine.clone(),
            id: *id,
            codec: *codec,
            events,
        })
    }

    /// Stops the relay thread (the engine stops when the last handle goes).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Sets the Opus encoder complexity (0–10) of sessions opened from now on.
    pub fn set_opus_complexity(&self, complexity: u8) {
        self.opus_complexity
            .store(complexity.min(10), Ordering::Relaxed);
    }

    /// Sessions open on the engine.
    pub fn open_sessions(&self) -> usize {
        self.engine.open_sessions()
    }
}

/// Maps the SDP agreement to an engine session configuration; `opus_complexity` is
/// the Opus encoder complexity (used when Opus was agreed).
pub fn session_config(
    media: &NegotiatedMedia,
    opus_complexity: u8,
) -> Result<SessionConfig, MediaError> {
    let codec = match media.codec.to_ascii_uppercase().as_str() {
        "PCMU" => CodecKind::Pcmu,
        "PCMA" => CodecKind::Pcma,
        "OPUS" => CodecKind::Opus,
        other => {
            return Err(MediaError::Engine(format!(
                "codec {other} is not supported"
            )))
        }
    };
    let mut cfg = SessionConfig::new(rand::random(), codec, media.payload_type);
    cfg.telephone_event_pt = media.telephone_event;
    cfg.ptime_ms = u16::try_from(media.ptime_ms).unwrap_or(20);
    cfg.remote_rtp = media.remote_rtp;
    cfg.rtcp_mux = media.rtcp_mux;
    cfg.pcm_rate = crate::sip::ua::sdp_glue::SPEECH_PCM_RATE;
    // What the trunk asked to receive (RFC 7587 §6.1): FEC, DTX, bit rate.
    let fmtp = media.opus.unwrap_or_default();
    cfg.opus = voxgate_engine::codec::OpusParams {
        complexity: opus_complexity.min(10),
        bitrate: fmtp.max_average_bitrate,
        inband_fec: fmtp.use_inband_fec,
        dtx: fmtp.use_dtx,
        ..voxgate_engine::codec::OpusParams::new(cfg.pcm_rate)
    };
    cfg.no_rtp_timeout = Duration::from_secs(30);
    cfg.srtp = media
        .srtp
        .as_ref()
        .map(|k| voxgate_engine::session::SrtpKeys {
            local: k.local.clone(),
            remote: k.remote.clone(),
        });
    Ok(cfg)
}

impl MediaPort for MediaHub {
    fn open(&mut self, call: CallRef, media: &NegotiatedMedia) -> Result<SocketAddr, MediaError> {
        let cfg = session_config(media, self.opus_complexity.load(Ordering::Relaxed))?;
        let cfg_codec = cfg.codec;
        let handle = self
            .engine
            .open_session(cfg)
            .map_err(|e| MediaError::Engine(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut routes = self.routes();
        routes.by_session.insert(handle.id, tx);
        routes.metrics.opened(handle.id, handle.core);
        routes
            .by_call
            .insert(call, (handle.id, Some(rx), cfg_codec));
        routes.peers.insert(call, Peer::of(media));
        Ok(handle.local_rtp)
    }

    fn start(&mut self, _call: CallRef, _media: &NegotiatedMedia) {
        // The call task decides what to play.
    }

    fn update(&mut self, call: CallRef, media: &NegotiatedMedia) {
        tracing::debug!(call = call.0, direction = ?media.direction, remote = ?media.remote_rtp, "media changed");
        let new = Peer::of(media);
        let (id, old) = {
            let mut routes = self.routes();
            let Some(id) = routes.by_call.get(&call).map(|(id, ..)| *id) else {
                return;
            };
            let Some(old) = routes.peers.insert(call, new.clone()) else {
                return;
            };
            (id, old)
        };
        follow_reoffer(&self.engine, call, id, &old, &new);
    }

    fn close(&mut self, call: CallRef) {
        let id = {
            let mut routes = self.routes();
            routes.peers.remove(&call);
            routes.by_call.remove(&call).map(|(id, ..)| id)
        };
        if let Some(id) = id {
            if let Err(e) = self.engine.command(Command::Close { id }) {
                tracing::warn!(%id, "close not queued: {e}");
            }
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.routes().closed_totals
    }
}

/// One call's media: commands to its engine session, events from it.
#[derive(Debug)]
pub struct CallMedia {
    engine: Arc<Engine>,
    id: SessionId,
    /// The codec agreed with the trunk (for the call record's quality estimate).
    pub codec: CodecKind,
    /// Events of this session, in order.
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl CallMedia {
    /// Queues 8 kHz PCM to send.
    pub fn play(&self, pcm: &[i16]) -> Result<(), EngineError> {
        self.engine.command(Command::Play {
            id: self.id,
            pcm: pcm.into(),
        })
    }

    /// Stops what is playing at the next packet.
    pub fn stop_playback(&self) -> Result<(), EngineError> {
        self.engine.command(Command::StopPlayback { id: self.id })
    }

    /// Sends an RFC 4733 key.
    pub fn send_dtmf(&self, digit: char, duration: Duration) -> Result<(), EngineError> {
        self.engine.command(Command::SendDtmf {
            id: self.id,
            digit,
            duration,
        })
    }

    /// The engine session.
    pub fn session(&self) -> SessionId {
        self.id
    }
}

/// Final statistics of a closed session, when the Closed event has been seen.
pub fn closed_stats(ev: &Event) -> Option<SessionStats> {
    match ev {
        Event::Closed { stats, .. } => Some(*stats),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: Option<&str>, key: Option<&str>) -> Peer {
        let media = NegotiatedMedia {
            remote_rtp: addr.map(|a| a.parse().unwrap()),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: 8000,
            telephone_event: None,
            ptime_ms: 20,
            direction: crate::sip::dialog::Direction::SendRecv,
            rtcp_mux: false,
            srtp: key.map(|k| crate::sip::ua::media::SrtpKeys {
                suite: "AES_CM_128_HMAC_SHA1_80".into(),
                local: String::new(),
                remote: if k.contains(' ') {
                    k.to_owned()
                } else {
                    format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}")
                },
            }),
            opus: None,
        };
        Peer::of(&media)
    }

    #[test]
    fn only_a_move_or_a_new_key_retargets() {
        let id = SessionId(7);
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let other = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let a = peer(Some("192.0.2.1:4000"), Some(key));
        // Same media, or a hold to 0.0.0.0 (no address): nothing to do.
        assert!(retarget(id, &a, &a).unwrap().is_none());
        assert!(retarget(id, &a, &peer(None, Some(key))).unwrap().is_none());
        // A new address.
        let moved = retarget(id, &a, &peer(Some("192.0.2.9:5000"), Some(key))).unwrap();
        assert!(matches!(
            moved,
            Some(Command::Retarget { remote_rtp, inbound: None, .. })
                if remote_rtp == "192.0.2.9:5000".parse().unwrap()
        ));
        // A new key at the same address: re-keyed there.
        let rekeyed = retarget(id, &a, &peer(Some("192.0.2.1:4000"), Some(other))).unwrap();
        assert!(matches!(
            rekeyed,
            Some(Command::Retarget { remote_rtp, inbound: Some(_), .. })
                if remote_rtp == "192.0.2.1:4000".parse().unwrap()
        ));
        // The same keying renumbered or respelled by a re-offer is not a new key (a
        // new context would restart the rollover counter and the replay window).
        let spelled = |line: &str| peer(Some("192.0.2.1:4000"), Some(line));
        let with_mki = spelled(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4"));
        for same in [
            format!("7  AES_CM_128_HMAC_SHA1_80 inline:{key}|2147483648|1:4"),
            format!("2 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:4 WSH=128"),
        ] {
            assert!(
                retarget(id, &with_mki, &spelled(&same)).unwrap().is_none(),
                "{same}"
            );
        }
        // Another MKI is new keying; another lifetime for the same key is not (a new
        // context under the same key would open an empty replay window).
        let other_mki = spelled(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|2:4"));
        assert!(retarget(id, &with_mki, &other_mki).unwrap().is_some());
        let other_lifetime = spelled(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"));
        assert!(retarget(id, &with_mki, &other_lifetime).unwrap().is_none());
        let no_lifetime = spelled(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:4"));
        assert!(retarget(id, &with_mki, &no_lifetime).unwrap().is_none());
        // A line that does not parse keys nothing (it was refused when answering).
        assert_eq!(peer(Some("192.0.2.1:4000"), Some("!!")).key, None);
        // Debug never shows the key.
        assert!(!format!("{with_mki:?}").contains(key));
    }
}
