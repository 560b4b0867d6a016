//! The public types of the control-side API: configuration, handles, commands, events
//! and errors.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::media::{PcmFrame, SessionStats};

/// Which packet I/O backend the media cores use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// io_uring if this kernel and its seccomp policy allow it, else recvmmsg/sendmmsg
    /// (with a warning in the log saying so).
    #[default]
    Auto,
    /// io_uring: multishot receive on a provided-buffer ring, batched sends, timers and
    /// the wake-up eventfd in the ring. `Engine::start` fails if it is unavailable.
    Uring,
    /// recvmmsg/sendmmsg over epoll, with a timerfd and the wake-up eventfd.
    Mmsg,
}

impl Backend {
    /// Short name: "auto", "uring" or "mmsg".
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Uring => "uring",
            Backend::Mmsg => "mmsg",
        }
    }
}

/// How to start the media engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// CPU ids, one media core thread per entry, each pinned to its CPU.
    pub cores: Vec<usize>,
    /// RTP ports to allocate from: even ports for RTP, the next odd one for RTCP.
    pub rtp_port_range: RangeInclusive<u16>,
    /// Local address the session sockets bind to.
    pub bind_ip: IpAddr,
    /// Packet I/O backend.
    pub backend: Backend,
    /// Capacity of each core's command queue and of each core's event queue.
    pub queue_capacity: usize,
    /// SO_RCVBUF and SO_SNDBUF of every session socket.
    pub socket_buffer_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cores: vec![0],
            rtp_port_range: 20000..=29999,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            backend: Backend::Auto,
            queue_capacity: 16384,
            socket_buffer_bytes: 256 * 1024,
        }
    }
}

/// Identifies a media session for its whole life (never reused within one `Engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// What `Engine::open_session` returns: where the session lives and listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHandle {
    /// The session's id, used in commands and carried by its events.
    pub id: SessionId,
    /// Index (into `EngineConfig::cores`) of the media core that owns the session.
    pub core: usize,
    /// Local RTP address (for the SDP answer/offer).
    pub local_rtp: SocketAddr,
    /// Local RTCP address: RTP port + 1, or the RTP address itself with rtcp-mux.
    pub local_rtcp: SocketAddr,
}

/// A command from the control side to the core that owns a session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Queue PCM (at the session's `pcm_rate`) to be encoded and sent, paced, after
    /// what is already queued.
    Play {
        /// Session.
        id: SessionId,
        /// Mono samples.
        pcm: Box<[i16]>,
    },
    /// Drop all queued outgoing audio (barge-in); codec silence follows.
    StopPlayback {
        /// Session.
        id: SessionId,
    },
    /// Send an RFC 4733 telephone-event.
    SendDtmf {
        /// Session.
        id: SessionId,
        /// '0'-'9', '*', '#', 'A'-'D'.
        digit: char,
        /// Tone length.
        duration: Duration,
    },
    /// The peer moved (re-INVITE with a new address): see
    /// [`crate::session::MediaSession::retarget`].
    Retarget {
        /// Session.
        id: SessionId,
        /// The peer's new RTP address.
        remote_rtp: SocketAddr,
        /// Its RTCP address when not RTP port + 1 (or rtcp-mux).
        remote_rtcp: Option<SocketAddr>,
        /// The peer's new SRTP key, when it changed (built on the control thread).
        inbound: Option<Box<crate::srtp::SrtpContext>>,
    },
    /// Close the session. Its ports are released once the core reports
    /// [`Event::Closed`] (seen through `Engine::poll_event`).
    Close {
        /// Session.
        id: SessionId,
    },
}

impl Command {
    /// The session the command is for.
    pub fn id(&self) -> SessionId {
        match self {
            Command::Play { id, .. }
            | Command::StopPlayback { id }
            | Command::SendDtmf { id, .. }
            | Command::Retarget { id, .. }
            | Command::Close { id } => *id,
        }
    }
}

/// An event from a media core about one of its sessions.
///
/// Audio frames travel by value through the preallocated event queue: boxing them
/// would allocate per packet on the media core.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// 20 ms (or ptime) of decoded caller audio.
    Audio {
        /// Session.
        id: SessionId,
        /// The PCM.
        frame: PcmFrame,
    },
    /// An RFC 4733 digit (reported once per event).
    Dtmf {
        /// Session.
        id: SessionId,
        /// The digit.
        digit: char,
        /// Its duration.
        duration: Duration,
    },
    /// The caller started speaking (barge-in).
    SpeechStart {
        /// Session.
        id: SessionId,
    },
    /// The caller stopped speaking.
    SpeechEnd {
        /// Session.
        id: SessionId,
    },
    /// Periodic statistics.
    Stats {
        /// Session.
        id: SessionId,
        /// Counters so far.
        stats: SessionStats,
    },
    /// The first packet of audio queued with `Play` after silence was sent.
    PlaybackStarted {
        /// Session.
        id: SessionId,
        /// When the core wrote the packet (it leaves in the same send batch).
        at: std::time::Instant,
    },
    /// Everything queued with `Play` has been sent (or playback was stopped).
    PlaybackIdle {
        /// Session.
        id: SessionId,
    },
    /// No RTP arrived for the configured `no_rtp_timeout`.
    RtpTimeout {
        /// Session.
        id: SessionId,
    },
    /// The remote RTP address was learned (symmetric RTP) or changed.
    RemoteAddressLearned {
        /// Session.
        id: SessionId,
        /// The address RTP now goes to.
        addr: SocketAddr,
    },
    /// The session is closed and its sockets are gone; its ports are free again.
    Closed {
        /// Session.
        id: SessionId,
        /// Final counters.
        stats: SessionStats,
    },
}

impl Event {
    /// The session the event is about.
    pub fn id(&self) -> SessionId {
        match self {
            Event::Audio { id, .. }
            | Event::Dtmf { id, .. }
            | Event::SpeechStart { id }
            | Event::SpeechEnd { id }
            | Event::Stats { id, .. }
            | Event::RtpTimeout { id }
            | Event::PlaybackStarted { id, .. }
            | Event::PlaybackIdle { id }
            | Event::RemoteAddressLearned { id, .. }
            | Event::Closed { id, .. } => *id,
        }
    }
}

/// Errors of the control-side engine API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// `EngineConfig::cores` is empty or names a CPU twice.
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(&'static str),
    /// `Backend::Uring` was asked for and io_uring cannot be used here.
    #[error("io_uring is unavailable: {0}")]
    UringUnavailable(std::io::Error),
    /// A media core thread could not set up its I/O.
    #[error("media core {core} failed to start: {source}")]
    CoreStart {
        /// Core index.
        core: usize,
        /// Cause.
        source: std::io::Error,
    },
    /// Every RTP port pair of the range is in use (or failed to bind).
    #[error("no free RTP port in the configured range")]
    NoFreePorts,
    /// Creating or binding a session socket failed (other than address-in-use).
    #[error("socket {addr}: {source}")]
    Socket {
        /// Address being bound.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The core's command queue is full: the command is handed back, and counted in
    /// `Engine::queue_counters`.
    #[error("command queue of media core {core} is full")]
    QueueFull {
        /// Core index.
        core: usize,
        /// The command that was not queued (None for an open).
        command: Option<Box<Command>>,
    },
    /// The session configuration was refused by the media session.
    #[error(transparent)]
    Session(super::media::SessionError),
    /// No open session has this id.
    #[error("unknown session {0}")]
    UnknownSession(SessionId),
}

/// Per-core media counters (cumulative since the engine started, over every session the
/// core ran, closed ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoreStats {
    /// Index of the core (position in [`EngineConfig::cores`]).
    pub core: usize,
    /// SRTP/SRTCP packets dropped because they failed authentication.
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP packets dropped as replays (duplicate or older than the window).
    pub srtp_replayed: u64,
    /// Outgoing packets not sent because SRTP could not protect them.
    pub srtp_protect_failed: u64,
    /// Commands (including opens) refused because this core's command queue was full.
    pub commands_rejected: u64,
    /// Events this core could not queue because its event queue was full.
    pub events_dropped: u64,
    /// Session timer services (playout, send, RTCP, timeouts) by how late the core ran
    /// them past the session's deadline: bucket `i` counts lateness up to
    /// [`SERVICE_LATENESS_BOUNDS_US`]`[i]` µs (above the bound before it); the last bucket
    /// counts the rest. Under load the core serves deadlines up to its timer coalescing
    /// tick (250 µs) late by design; later than that means the core fell behind: long
    /// turns, or its thread did not run (another task on its CPU, a hypervisor stall).
    pub service_lateness: [u64; SERVICE_LATENESS_BUCKETS],
    /// The latest a session timer was served, µs past its deadline.
    pub service_lateness_max_us: u64,
    /// The sum of every service's lateness, µs (with the count, the mean).
    pub service_lateness_sum_us: u64,
    /// CPU time the core's thread has used, ns (user and system, the kernel's packet
    /// work for the core's sockets included; sampled by the core every 100 ms).
    pub cpu_ns: u64,
}

/// Upper bounds, µs, of the buckets of [`CoreStats::service_lateness`] but the last.
pub const SERVICE_LATENESS_BOUNDS_US: [u64; 8] =
    [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000];
/// Buckets of [`CoreStats::service_lateness`]: one per bound and one past the last.
pub const SERVICE_LATENESS_BUCKETS: usize = SERVICE_LATENESS_BOUNDS_US.len() + 1;

/// The [`CoreStats::service_lateness`] bucket of a lateness of `late_us` µs.
pub(crate) fn service_lateness_bucket(late_us: u64) -> usize {
    SERVICE_LATENESS_BOUNDS_US.partition_point(|&bound| bound < late_us)
}

impl CoreStats {
    /// What the counters grew by since `earlier` (a snapshot of the same core); the
    /// largest lateness stays the largest since the engine started.
    pub fn since(&self, earlier: &CoreStats) -> CoreStats {
        CoreStats {
            core: self.core,
            srtp_auth_failed: self
                .srtp_auth_failed
                .saturating_sub(earlier.srtp_auth_failed),
            srtp_replayed: self.srtp_replayed.saturating_sub(earlier.srtp_replayed),
            srtp_protect_failed: self
                .srtp_protect_failed
                .saturating_sub(earlier.srtp_protect_failed),
            commands_rejected: self
                .commands_rejected
                .saturating_sub(earlier.commands_rejected),
            events_dropped: self.events_dropped.saturating_sub(earlier.events_dropped),
            service_lateness: std::array::from_fn(|i| {
                self.service_lateness[i].saturating_sub(earlier.service_lateness[i])
            }),
            service_lateness_max_us: self.service_lateness_max_us,
            service_lateness_sum_us: self
                .service_lateness_sum_us
                .saturating_sub(earlier.service_lateness_sum_us),
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
        }
    }

    /// Session timer services counted in [`Self::service_lateness`].
    pub fn services(&self) -> u64 {
        self.service_lateness.iter().sum()
    }

    /// The upper bound (µs) of the bucket that holds the `q`-quantile (0..=1) of the
    /// service lateness, [`Self::service_lateness_max_us`] for the last bucket; `None`
    /// before any service.
    pub fn service_lateness_quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.services();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.service_lateness.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(
                    SERVICE_LATENESS_BOUNDS_US
                        .get(i)
                        .map_or(self.service_lateness_max_us, |b| {
                            (*b).min(self.service_lateness_max_us)
                        }),
                );
            }
        }
        Some(self.service_lateness_max_us)
    }
}

/// Queue-full counters (cumulative, all cores).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Commands (including opens) refused because a command queue was full.
    pub commands_rejected: u64,
    /// Events a core could not queue because its event queue was full (dropped, except
    /// `Closed`, which the core keeps and retries).
    pub events_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_buckets_hold_their_upper_bound() {
        assert_eq!(service_lateness_bucket(0), 0);
        assert_eq!(service_lateness_bucket(250), 0);
        assert_eq!(service_lateness_bucket(251), 1);
        assert_eq!(service_lateness_bucket(1_000), 2);
        assert_eq!(service_lateness_bucket(1_001), 3);
        assert_eq!(service_lateness_bucket(50_000), 7);
        assert_eq!(service_lateness_bucket(50_001), 8);
        assert_eq!(
            service_lateness_bucket(u64::MAX),
            SERVICE_LATENESS_BUCKETS - 1
        );
    }

    #[test]
    fn lateness_quantiles_name_the_bucket_bound() {
        let mut s = CoreStats::default();
        assert_eq!(s.service_lateness_quantile_us(0.99), None);
        // 990 services within 250 µs, 9 within 5 ms, one 70 ms late.
        s.service_lateness[0] = 990;
        s.service_lateness[service_lateness_bucket(4_000)] = 9;
        s.service_lateness[SERVICE_LATENESS_BUCKETS - 1] = 1;
        s.service_lateness_max_us = 70_000;
        assert_eq!(s.services(), 1_000);
        assert_eq!(s.service_lateness_quantile_us(0.5), Some(250));
        assert_eq!(s.service_lateness_quantile_us(0.99), Some(250));
        assert_eq!(s.service_lateness_quantile_us(0.995), Some(5_000));
        assert_eq!(s.service_lateness_quantile_us(1.0), Some(70_000));
        // A bound above the largest lateness seen is not reported.
        s.service_lateness = [0; SERVICE_LATENESS_BUCKETS];
        s.service_lateness[service_lateness_bucket(40_000)] = 5;
        s.service_lateness_max_us = 30_000;
        assert_eq!(s.service_lateness_quantile_us(0.5), Some(30_000));
    }

    #[test]
    fn since_is_what_grew() {
        let mut a = CoreStats::default();
        a.service_lateness[0] = 10;
        a.service_lateness_sum_us = 500;
        a.service_lateness_max_us = 90;
        a.cpu_ns = 1_000;
        a.srtp_auth_failed = 3;
        let mut b = a;
        b.service_lateness[0] = 25;
        b.service_lateness[3] = 2;
        b.service_lateness_sum_us = 4_000;
        b.service_lateness_max_us = 1_900;
        b.cpu_ns = 5_000;
        let d = b.since(&a);
        assert_eq!(d.services(), 17);
        assert_eq!(d.service_lateness[3], 2);
        assert_eq!(d.service_lateness_sum_us, 3_500);
        assert_eq!(d.service_lateness_max_us, 1_900);
        assert_eq!(d.cpu_ns, 4_000);
        assert_eq!(d.srtp_auth_failed, 0);
    }
}
