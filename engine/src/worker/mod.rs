//! Media workers: one pinned OS thread per media core, each owning its sessions, their
//! UDP sockets and its I/O backend (io_uring, or recvmmsg/sendmmsg), driven from the
//! control side through [`Engine`].
//!
//! # Model
//!
//! - A session lives on one core for its whole life. Nothing on the packet path is
//!   shared between cores or locked: each core has its own sessions, sockets, buffers
//!   and ring.
//! - Control → core: a bounded lock-free command queue per core (plus an eventfd to
//!   wake the core). Core → control: a bounded lock-free event queue per core, and one
//!   eventfd ([`Engine::event_fd`]) the control side can await (e.g. with tokio's
//!   `AsyncFd`) or block on ([`Engine::wait_events`]).
//! - A full queue never drops silently: a refused command is handed back in
//!   [`EngineError::QueueFull`]; a dropped event is logged; both are counted in
//!   [`Engine::queue_counters`].
//! - Sockets are bound on the control thread (so bind errors are synchronous) and
//!   moved to the core. Ports go back to the pool only after the core has stopped
//!   receiving on them and reported [`Event::Closed`].
//!
//! This module (and only this module) contains `unsafe`: the eventfd, epoll and
//! io_uring calls, each with a `// SAFETY:` note.
//!
//! # Example
//!
//! ```no_run
//! use voxgate_engine::worker::{Backend, Command, Engine, EngineConfig, Event};
//! use voxgate_engine::worker::media::{CodecKind, SessionConfig};
//! let cfg = || SessionConfig::new(0x1234_5678, CodecKind::Pcmu, 0);
//! let engine = Engine::start(EngineConfig { cores: vec![0], backend: Backend::Auto, ..Default::default() })?;
//! let handle = engine.open_session(cfg())?;
//! engine.command(Command::Play { id: handle.id, pcm: vec![0i16; 1600].into() })?;
//! while engine.wait_events(Some(std::time::Duration::from_millis(100))) {
//!     while let Some(event) = engine.poll_event() {
//!         if let Event::Audio { id, frame } = event { /* caller audio of session `id` */ }
//!     }
//! }
//! engine.shutdown();
//! # Ok::<(), voxgate_engine::worker::EngineError>(())
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

mod core;
pub mod floor;
mod io;
mod ports;
mod timers;
mod types;
mod wakeup;

/// The sans-IO session types the workers drive (re-exported for callers of
/// [`Engine::open_session`]).
pub mod media {
    pub use crate::codec::CodecKind;
    pub use crate::session::{
        MediaSession, PacketKind, PcmFrame, SessionConfig, SessionError, SessionEvent, SessionStats,
    };
}

pub use ports::PortAllocator;
pub use types::{
    Backend, Command, CoreStats, EngineConfig, EngineError, Event, QueueCounters, SessionHandle,
    SessionId, SERVICE_LATENESS_BOUNDS_US, SERVICE_LATENESS_BUCKETS,
};

use self::core::{CoreCommand, CoreMailbox, MediaCore};
use self::wakeup::Wakeup;
use media::{MediaSession, SessionConfig};

struct CoreHandle {
    cpu: usize,
    mailbox: Arc<CoreMailbox>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy)]
struct OpenSession {
    core: usize,
    rtp_port: u16,
}

struct ControlState {
    ports: PortAllocator,
    sessions: HashMap<SessionId, OpenSession>,
    per_core: Vec<usize>,
}

/// The media engine: its core threads and the control side's view of them.
///
/// All methods take `&self` and may be called from any control thread or task; the
/// only lock is a control-side mutex around the port pool and the session table.
pub struct Engine {
    cores: Vec<CoreHandle>,
    control_wake: Arc<Wakeup>,
    state: Mutex<ControlState>,
    next_id: AtomicU64,
    next_poll: AtomicUsize,
    backend: Backend,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend)
            .field(
                "cores",
                &self.cores.iter().map(|c| c.cpu).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Resolves `Backend::Auto` by probing io_uring (with a warning on fallback).
fn choose_backend(requested: Backend) -> Result<Backend, EngineError> {
    match requested {
        Backend::Mmsg => Ok(Backend::Mmsg),
        Backend::Uring => io::uring::probe()
            .map(|()| Backend::Uring)
            .map_err(EngineError::UringUnavailable),
        Backend::Auto => match io::uring::probe() {
            Ok(()) => Ok(Backend::Uring),
            Err(e) => {
                tracing::warn!(error = %e, "io_uring unavailable (kernel or seccomp); media cores fall back to recvmmsg/sendmmsg");
                Ok(Backend::Mmsg)
            }
        },
    }
}

impl Engine {
    /// Starts one pinned thread per entry of `config.cores`, each with the chosen
    /// backend. Returns once every core is running (or the first start error).
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        if config.cores.is_empty() {
            return Err(EngineError::InvalidConfig("no media cores configured"));
        }
        let backend = choose_backend(config.backend)?;
        let control_wake =
            Arc::new(Wakeup::new().map_err(|source| EngineError::CoreStart { core: 0, source })?);
        let mut cores: Vec<CoreHandle> = Vec::with_capacity(config.cores.len());
        for (index, &cpu) in config.cores.iter().enumerate() {
            let mailbox = Arc::new(CoreMailbox::new(config.queue_capacity).map_err(|source| {
                EngineError::CoreStart {
                    core: index,
                    source,
                }
            })?);
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
            let thread_mailbox = Arc::clone(&mailbox);
            let thread_wake = Arc::clone(&control_wake);
            let spawned = std::thread::Builder::new()
                .name(format!("voxgate-media-{index}"))
                .spawn(move || {
                    run_core(index, cpu, backend, thread_mailbox, thread_wake, ready_tx)
                });
            let thread = match spawned {
                Ok(t) => t,
                Err(source) => {
                    stop_cores(&mut cores);
                    return Err(EngineError::CoreStart {
                        core: index,
                        source,
                    });
                }
            };
            let ready = ready_rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("core thread exited")));
            cores.push(CoreHandle {
                cpu,
                mailbox,
                thread: Some(thread),
            });
            if let Err(source) = ready {
                stop_cores(&mut cores);
                return Err(EngineError::CoreStart {
                    core: index,
                    source,
                });
            }
        }
        tracing::info!(backend = backend.name(), cores = ?config.cores, "media engine started");
        let ports = PortAllocator::new(config.rtp_port_range.clone());
        Ok(Engine {
            state: Mutex::new(ControlState {
                ports,
                sessions: HashMap::new(),
                per_core: vec![0; cores.len()],
            }),
            cores,
            control_wake,
            next_id: AtomicU64::new(1),
            next_poll: AtomicUsize::new(0),
            backend,
            config,
        })
    }

    /// The backend the cores run (`Uring` or `Mmsg`, never `Auto`).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Number of media cores.
    pub fn core_count(&self) -> usize {
        self.cores.len()
    }

    /// Opens a session on the least-loaded core: allocates an even RTP port (RTCP on
    /// port + 1 unless `cfg.rtcp_mux`), binds the socket(s) here (errors are returned
    /// now) and hands them to the core.
    pub fn open_session(&self, cfg: SessionConfig) -> Result<SessionHandle, EngineError> {
        let rtcp_mux = cfg.rtcp_mux;
        let session = MediaSession::new(cfg, Instant::now()).map_err(EngineError::Session)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let core = (0..state.per_core.len())
            .min_by_key(|&i| state.per_core.get(i).copied().unwrap_or(usize::MAX))
            .unwrap_or(0);
        let attempts = state.ports.capacity();
        let mut bound = None;
        for _ in 0..attempts {
            let Some(port) = state.ports.allocate() else {
                break;
            };
            match self.bind_pair(port, rtcp_mux) {
                Ok(sockets) => {
                    bound = Some((port, sockets));
                    break;
                }
                Err(BindError::InUse) => {
                    state.ports.release(port);
                }
                Err(BindError::Other(addr, source)) => {
                    state.ports.release(port);
                    return Err(EngineError::Socket { addr, source });
                }
            }
        }
        let Some((port, (rtp, rtcp))) = bound else {
            return Err(EngineError::NoFreePorts);
        };
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let local_rtp = SocketAddr::new(self.config.bind_ip, port);
        let local_rtcp = if rtcp.is_some() {
            SocketAddr::new(self.config.bind_ip, port + 1)
        } else {
            local_rtp
        };
        let Some(handle) = self.cores.get(core) else {
            state.ports.release(port);
            return Err(EngineError::InvalidConfig("no media cores configured"));
        };
        let cmd = CoreCommand::Open {
            id,
            session: Box::new(session),
            rtp,
            rtcp,
        };
        if handle.mailbox.commands.push(cmd).is_err() {
            handle
                .mailbox
                .commands_rejected
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(core, "engine: command queue full; open_session refused");
            state.ports.release(port);
            return Err(EngineError::QueueFull {
                core,
                command: None,
            });
        }
        handle.mailbox.core_wake.notify();
        state.sessions.insert(
            id,
            OpenSession {
                core,
                rtp_port: port,
            },
        );
        if let Some(n) = state.per_core.get_mut(core) {
            *n += 1;
        }
        Ok(SessionHandle {
            id,
            core,
            local_rtp,
            local_rtcp,
        })
    }

    fn bind_pair(&self, port: u16, rtcp_mux: bool) -> Result<(Socket, Option<Socket>), BindError> {
        let rtp = self.bind_one(port)?;
        let rtcp = if rtcp_mux {
            None
        } else {
            Some(self.bind_one(port + 1)?)
        };
        Ok((rtp, rtcp))
    }

    fn bind_one(&self, port: u16) -> Result<Socket, BindError> {
        let addr = SocketAddr::new(self.config.bind_ip, port);
        let other = |e: std::io::Error| BindError::Other(addr, e);
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::DGRAM.cloexec(),
            Some(Protocol::UDP),
        )
        .map_err(other)?;
        socket.set_nonblocking(true).map_err(other)?;
        // Buffer sizes are a request; the kernel clamps them to its limits.
        let _ = socket.set_recv_buffer_size(self.config.socket_buffer_bytes);
        let _ = socket.set_send_buffer_size(self.config.socket_buffer_bytes);
        match socket.bind(&addr.into()) {
            Ok(()) => Ok(socket),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(BindError::InUse),
            Err(e) => Err(other(e)),
        }
    }

    /// Queues a command for the session's core. A full queue hands the command back in
    /// [`EngineError::QueueFull`] (and counts it).
    pub fn command(&self, command: Command) -> Result<(), EngineError> {
        let id = command.id();
        let core = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.sessions.get(&id) {
                Some(s) => s.core,
                None => return Err(EngineError::UnknownSession(id)),
            }
        };
        let Some(handle) = self.cores.get(core) else {
            return Err(EngineError::UnknownSession(id));
        };
        match handle.mailbox.commands.push(CoreCommand::Session(command)) {
            Ok(()) => {
                handle.mailbox.core_wake.notify();
                Ok(())
            }
            Err(CoreCommand::Session(command)) => {
                let n = handle
                    .mailbox
                    .commands_rejected
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                tracing::warn!(core, session = %id, rejected_total = n, "engine: command queue full; command handed back");
                Err(EngineError::QueueFull {
                    core,
                    command: Some(Box::new(command)),
                })
            }
            Err(CoreCommand::Open { .. }) => Err(EngineError::QueueFull {
                core,
                command: None,
            }),
        }
    }

    /// Takes the next event from any core (round-robin), or `None` if all queues are
    /// empty. Seeing [`Event::Closed`] here releases the session's ports.
    pub fn poll_event(&self) -> Option<Event> {
        let n = self.cores.len();
        let start = self.next_poll.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let core = (start + i) % n;
            if let Some(ev) = self.poll_core_event(core) {
                return Some(ev);
            }
        }
        None
    }

    /// Takes the next event of one core, or `None`.
    pub fn poll_core_event(&self, core: usize) -> Option<Event> {
        let ev = self.cores.get(core)?.mailbox.events.pop()?;
        if let Event::Closed { id, .. } = &ev {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = state.sessions.remove(id) {
                state.ports.release(s.rtp_port);
                if let Some(n) = state.per_core.get_mut(s.core) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        Some(ev)
    }

    /// The control-side eventfd: readable when a core has queued events since the last
    /// [`Engine::wait_events`] / [`Engine::clear_event_fd`]. To await it (tokio
    /// `AsyncFd`): on readable, call `clear_event_fd`, then drain `poll_event` until
    /// `None` (clearing before draining loses no wake-up).
    pub fn event_fd(&self) -> BorrowedFd<'_> {
        self.control_wake.as_fd()
    }

    /// Resets the event fd's counter (non-blocking).
    pub fn clear_event_fd(&self) {
        let _ = self.control_wake.clear();
    }

    /// Blocks until a core signals new events or `timeout` passes (None: forever); then
    /// clears the signal. Returns true if signalled. Drain with `poll_event` afterwards.
    pub fn wait_events(&self, timeout: Option<Duration>) -> bool {
        self.control_wake.wait(timeout)
    }

    /// Queue-full counters so far, summed over the cores.
    pub fn queue_counters(&self) -> QueueCounters {
        let mut c = QueueCounters::default();
        for core in &self.cores {
            c.commands_rejected += core.mailbox.commands_rejected.load(Ordering::Relaxed);
            c.events_dropped += core.mailbox.events_dropped.load(Ordering::Relaxed);
        }
        c
    }

    /// Per-core media counters (SRTP drops, queue-full counts), one entry per core in core order. The
    /// counters are kept by each core as packets are handled (no reporting interval).
    pub fn core_stats(&self) -> Vec<CoreStats> {
        self.cores
            .iter()
            .enumerate()
            .map(|(core, h)| CoreStats {
                core,
                srtp_auth_failed: h.mailbox.srtp_auth_failed.load(Ordering::Relaxed),
                srtp_replayed: h.mailbox.srtp_replayed.load(Ordering::Relaxed),
                srtp_protect_failed: h.mailbox.srtp_protect_failed.load(Ordering::Relaxed),
                commands_rejected: h.mailbox.commands_rejected.load(Ordering::Relaxed),
                events_dropped: h.mailbox.events_dropped.load(Ordering::Relaxed),
                service_lateness: h.mailbox.health.service_lateness(),
                service_lateness_max_us: h.mailbox.health.late_max_us.load(Ordering::Relaxed),
                service_lateness_sum_us: h.mailbox.health.late_sum_us.load(Ordering::Relaxed),
                cpu_ns: h.mailbox.health.cpu_ns.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Sessions open (opened and not yet seen `Closed`).
    pub fn open_sessions(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sessions
            .len()
    }

    /// Free RTP port pairs.
    pub fn free_ports(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ports
            .available()
    }

    /// Stops every core (sessions are dropped without `Closed` events) and joins the
    /// threads.
    pub fn shutdown(mut self) {
        stop_cores(&mut self.cores);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        stop_cores(&mut self.cores);
    }
}

enum BindError {
    InUse,
    Other(SocketAddr, std::io::Error),
}

fn stop_cores(cores: &mut [CoreHandle]) {
    for core in cores.iter() {
        core.mailbox.shutdown.store(true, Ordering::Release);
        core.mailbox.core_wake.notify();
    }
    for core in cores.iter_mut() {
        if let Some(t) = core.thread.take() {
            if t.join().is_err() {
                tracing::error!(cpu = core.cpu, "media core thread panicked");
            }
        }
    }
}

fn run_core(
    index: usize,
    cpu: usize,
    backend: Backend,
    mailbox: Arc<CoreMailbox>,
    control_wake: Arc<Wakeup>,
    ready: std::sync::mpsc::SyncSender<std::io::Result<()>>,
) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        tracing::warn!(
            core = index,
            cpu,
            "media core: could not pin thread to CPU; running unpinned"
        );
    }
    let wake_fd = mailbox.core_wake.raw();
    match backend {
        Backend::Uring => match io::uring::UringIo::new(wake_fd) {
            Ok(io) => {
                let _ = ready.send(Ok(()));
                MediaCore::new(index, io, mailbox, control_wake).run();
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        },
        _ => match io::mmsg::MmsgIo::new(wake_fd) {
            Ok(io) => {
                let _ = ready.send(Ok(()));
                MediaCore::new(index, io, mailbox, control_wake).run();
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        },
    }
}
