//! The gateway's media seam: what the SIP side needs from media (a local RTP address
//! per call, start, update, close), and the prompt player used until the media engine
//! is wired: a task per call that sends a looped G.711 prompt every 20 ms and counts
//! what it receives.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use voxgate_engine::codec::g711;

use crate::sip::dialog::{CallRef, Direction};
use crate::sip::ua::NegotiatedMedia;

/// A media fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// No RTP port could be bound.
    #[error("RTP socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The media engine refused the session.
    #[error("media engine: {0}")]
    Engine(String),
}

/// What SIP needs from media.
pub trait MediaPort: Send {
    /// Allocates the call's RTP endpoint for the agreement `media` will be (codec,
    /// payload types, remote address); returns the address for the SDP answer.
    fn open(&mut self, call: CallRef, media: &NegotiatedMedia) -> Result<SocketAddr, MediaError>;
    /// The answer was sent: start sending the prompt to `media.remote_rtp`.
    fn start(&mut self, call: CallRef, media: &NegotiatedMedia);
    /// A re-INVITE or UPDATE changed the media (hold, new address).
    fn update(&mut self, call: CallRef, media: &NegotiatedMedia);
    /// The call ended.
    fn close(&mut self, call: CallRef);
    /// RTP packets (sent, received) so far, summed over all calls (those still up may
    /// be counted only when they end).
    fn totals(&self) -> (u64, u64);
}

/// One 20 ms frame per packet at 8 kHz.
const FRAME: usize = 160;

/// A prompt as 8 kHz 16-bit mono samples, looped.
#[derive(Debug, Clone)]
pub struct Prompt {
    samples: Arc<Vec<i16>>,
}

impl Prompt {
    /// A 1 s 440 Hz tone followed by 1 s of silence.
    pub fn tone() -> Self {
        let mut s = Vec::with_capacity(16_000);
        for i in 0..8000 {
            let t = i as f32 / 8000.0;
            s.push(((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16);
        }
        s.extend(std::iter::repeat_n(0i16, 8000));
        Self {
            samples: Arc::new(s),
        }
    }

    /// The samples (8 kHz mono).
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Loads a WAV file (PCM 16-bit, mono, 8 kHz).
    pub fn from_wav(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bad = |why: &str| format!("{}: {why}", path.display());
        if data.len() < 44 || &data[..4] != b"RIFF" || &data[8..12] != b"WAVE" {
            return Err(bad("not a RIFF/WAVE file"));
        }
        let mut i = 12;
        let mut fmt_ok = false;
        while i + 8 <= data.len() {
            let id = &data[i..i + 4];
            let len =
                u32::from_le_bytes([data[i + 4], data[i + 5], data[i + 6], data[i + 7]]) as usize;
            let body = data
                .get(i + 8..(i + 8 + len).min(data.len()))
                .ok_or_else(|| bad("truncated chunk"))?;
            if id == b"fmt " && body.len() >= 16 {
                let format = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                fmt_ok = format == 1 && channels == 1 && rate == 8000 && bits == 16;
                if !fmt_ok {
                    return Err(bad(
                        "must be PCM 16-bit mono 8 kHz (sox in.wav -r 8000 -c 1 -b 16 out.wav)",
                    ));
                }
            } else if id == b"data" && fmt_ok {
                let samples: Vec<i16> = body
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                if samples.is_empty() {
                    return Err(bad("no samples"));
                }
                return Ok(Self {
                    samples: Arc::new(samples),
                });
            }
            i += 8 + len + (len & 1);
        }
        Err(bad("no fmt/data chunk"))
    }
}

struct Leg {
    socket: Arc<UdpSocket>,
    task: Option<JoinHandle<()>>,
    rx_task: JoinHandle<()>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

/// Plays a looped prompt on every answered call (plain RTP, G.711).
pub struct PromptPlayer {
    ip: IpAddr,
    prompt: Prompt,
    legs: HashMap<CallRef, Leg>,
    closed: (u64, u64),
}

impl std::fmt::Debug for PromptPlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptPlayer")
            .field("ip", &self.ip)
            .field("calls", &self.legs.len())
            .finish()
    }
}

impl PromptPlayer {
    /// A player binding RTP sockets on `ip`.
    pub fn new(ip: IpAddr, prompt: Prompt) -> Self {
        Self {
            ip,
            prompt,
            legs: HashMap::new(),
            closed: (0, 0),
        }
    }

    fn spawn_sender(&self, leg: &Leg, media: &NegotiatedMedia) -> Option<JoinHandle<()>> {
        let remote = media.remote_rtp?;
        if matches!(media.direction, Direction::RecvOnly | Direction::Inactive) {
            return None;
        }
        let socket = leg.socket.clone();
        let sent = leg.sent.clone();
        let samples = self.prompt.samples.clone();
        let pt = media.payload_type;
        let alaw_codec = media.codec.eq_ignore_ascii_case("PCMA");
        let ssrc: u32 = rand::random();
        Some(tokio::spawn(async move {
            let mut seq: u16 = rand::random();
            let mut ts: u32 = rand::random();
            let mut pos = 0usize;
            let mut pkt = [0u8; 12 + FRAME];
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut first = true;
            loop {
                tick.tick().await;
                pkt[0] = 0x80;
                pkt[1] = pt | if first { 0x80 } else { 0 };
                first = false;
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&ts.to_be_bytes());
                pkt[8..12].copy_from_slice(&ssrc.to_be_bytes());
                for b in pkt[12..].iter_mut() {
                    let s = samples[pos % samples.len()];
                    pos = pos.wrapping_add(1);
                    *b = if alaw_codec {
                        g711::alaw_encode(s)
                    } else {
                        g711::ulaw_encode(s)
                    };
                }
                if socket.send_to(&pkt, remote).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(FRAME as u32);
            }
        }))
    }
}

impl MediaPort for PromptPlayer {
    fn open(&mut self, call: CallRef, media: &NegotiatedMedia) -> Result<SocketAddr, MediaError> {
        if media.srtp.is_some() {
            return Err(MediaError::Engine(
                "the prompt player sends plain RTP only".into(),
            ));
        }
        let std_sock = std::net::UdpSocket::bind(SocketAddr::new(self.ip, 0))?;
        std_sock.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(std_sock)?);
        let local = socket.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let (rs, rc) = (socket.clone(), received.clone());
        let rx_task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while rs.recv_from(&mut buf).await.is_ok() {
                rc.fetch_add(1, Ordering::Relaxed);
            }
        });
        self.legs.insert(
            call,
            Leg {
                socket,
                task: None,
                rx_task,
                sent: Arc::new(AtomicU64::new(0)),
                received,
            },
        );
        Ok(local)
    }

    fn start(&mut self, call: CallRef, media: &NegotiatedMedia) {
        self.update(call, media);
    }

    fn update(&mut self, call: CallRef, media: &NegotiatedMedia) {
        let Some(leg) = self.legs.get(&call) else {
            return;
        };
        let task = self.spawn_sender(leg, media);
        if let Some(leg) = self.legs.get_mut(&call) {
            if let Some(old) = std::mem::replace(&mut leg.task, task) {
                old.abort();
            }
        }
    }

    fn close(&mut self, call: CallRef) {
        if let Some(leg) = self.legs.remove(&call) {
            self.closed.0 += leg.sent.load(Ordering::Relaxed);
            self.closed.1 += leg.received.load(Ordering::Relaxed);
            if let Some(t) = leg.task {
                t.abort();
            }
            leg.rx_task.abort();
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.legs.values().fold(self.closed, |a, l| {
            (
                a.0 + l.sent.load(Ordering::Relaxed),
                a.1 + l.received.load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(test)]
mod g711_reference {
    // The encoders the gateway uses are the engine's.
    use voxgate_engine::codec::g711::{alaw_encode as alaw, ulaw_encode as ulaw};

    #[test]
    fn ulaw_and_alaw_match_g711_reference_points() {
        // G.711 reference values: silence and full scale.
        assert_eq!(ulaw(0), 0xff);
        assert_eq!(ulaw(-1), 0x7f);
        assert_eq!(ulaw(32767), 0x80);
        assert_eq!(ulaw(-32768), 0x00);
        assert_eq!(alaw(0), 0xd5);
        assert_eq!(alaw(32767), 0xaa);
        assert_eq!(alaw(-32768), 0x2a);
        assert_ne!(ulaw(1000), ulaw(-1000), "tampered: sign must matter");
    }
}
