//! `MediaCore`: the loop of one pinned media thread, and `CoreMailbox`, the pair of
//! lock-free queues (and wake-ups) between it and the control side.
//!
//! The loop: wait for I/O or the next session deadline → hand each datagram to its
//! session in place → run queued commands → run due session timers → collect every
//! touched session's outgoing packets into the backend (one batch) and its events into
//! the event queue → wake the control side once if anything was queued.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use socket2::Socket;

use super::io::{IoEvent, PacketIo};
use super::media::{MediaSession, PacketKind, SessionEvent};
use super::timers::TimerWheel;
use super::types::{service_lateness_bucket, Command, Event, SessionId, SERVICE_LATENESS_BUCKETS};
use super::wakeup::Wakeup;

/// Timers closer together than this are served in one wake-up under load. 0.25 ms:
/// against 0.5 ms, the echo delay's p99 beyond each session's minimum fell from
/// 0.6–3.4 ms to 0.33–0.45 ms at 1,400 SRTP sessions for about +1 point of one core
/// (bench/README.md `## Media workers`).
const TIMER_TICK: Duration = Duration::from_micros(250);
/// Commands run per loop turn (the rest wait for the next turn).
const COMMANDS_PER_TURN: usize = 1024;
/// Packets taken from one session per service call (bounds a misbehaving session).
const TRANSMITS_PER_SERVICE: usize = 64;
/// Every session's statistics are reported ([`Event::Stats`]) this often.
pub(crate) const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// Events taken from one session per service call.
const EVENTS_PER_SERVICE: usize = 64;
/// How often the core samples its thread's CPU time (`CoreStats::cpu_ns`).
const CPU_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// A command as the core sees it.
#[derive(Debug)]
pub(crate) enum CoreCommand {
    Open {
        id: SessionId,
        session: Box<MediaSession>,
        rtp: Socket,
        rtcp: Option<Socket>,
    },
    Session(Command),
}

/// The queues and flags shared by the control side and one core.
#[derive(Debug)]
pub(crate) struct CoreMailbox {
    pub(crate) commands: ArrayQueue<CoreCommand>,
    pub(crate) events: ArrayQueue<Event>,
    /// The core's eventfd: written by the control side after queuing commands.
    pub(crate) core_wake: Wakeup,
    pub(crate) shutdown: AtomicBool,
    pub(crate) commands_rejected: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    /// SRTP drops on this core (written by the core only; read by `Engine::core_stats`).
    pub(crate) srtp_auth_failed: AtomicU64,
    pub(crate) srtp_replayed: AtomicU64,
    pub(crate) srtp_protect_failed: AtomicU64,
    pub(crate) health: CoreHealth,
}

/// How well the core keeps its deadlines, and its CPU time (written by the core only, a
/// few times per millisecond at most; read by `Engine::core_stats`). Its own cache lines:
/// the control side's reads do not disturb the queues' indices.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CoreHealth {
    late: [AtomicU64; SERVICE_LATENESS_BUCKETS],
    pub(crate) late_max_us: AtomicU64,
    pub(crate) late_sum_us: AtomicU64,
    pub(crate) cpu_ns: AtomicU64,
}

impl CoreHealth {
    pub(crate) fn service_lateness(&self) -> [u64; SERVICE_LATENESS_BUCKETS] {
        std::array::from_fn(|i| self.late[i].load(Ordering::Relaxed))
    }
}

/// The core's own tally of timer-service lateness, published to [`CoreHealth`] once per
/// timer turn (plain stores: the core is the only writer).
#[derive(Debug, Default)]
struct LatenessTally {
    late: [u64; SERVICE_LATENESS_BUCKETS],
    max_us: u64,
    sum_us: u64,
}

impl LatenessTally {
    fn record(&mut self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.late[service_lateness_bucket(us)] += 1;
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(us);
    }

    fn publish(&self, to: &CoreHealth) {
        for (n, a) in self.late.iter().zip(&to.late) {
            a.store(*n, Ordering::Relaxed);
        }
        to.late_max_us.store(self.max_us, Ordering::Relaxed);
        to.late_sum_us.store(self.sum_us, Ordering::Relaxed);
    }
}

/// CPU time the calling thread has used, ns (`None` if the clock cannot be read).
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the call writes.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (r == 0).then(|| {
        u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000
            + u64::try_from(ts.tv_nsec).unwrap_or(0)
    })
}

impl CoreMailbox {
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        Ok(Self {
            commands: ArrayQueue::new(capacity.max(1)),
            events: ArrayQueue::new(capacity.max(1)),
            core_wake: Wakeup::new()?,
            shutdown: AtomicBool::new(false),
            commands_rejected: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            srtp_auth_failed: AtomicU64::new(0),
            srtp_replayed: AtomicU64::new(0),
            srtp_protect_failed: AtomicU64::new(0),
            health: CoreHealth::default(),
        })
    }
}

struct SessionSlot {
    id: SessionId,
    session: Box<MediaSession>,
    rtp: Socket,
    rtcp: Option<Socket>,
    /// The deadline the timer wheel holds for this slot (`None`: none since it fired).
    next_timeout: Option<Instant>,
    /// A timer or a command touched the session since its last service, so it may have
    /// packets to send (a datagram alone makes one due only if its deadline has passed).
    transmit_due: bool,
    /// Audio `play` did not take yet, from `pending_at` on.
    pending: Vec<i16>,
    pending_at: usize,
    closing: bool,
    /// Sockets whose receive registration is still live.
    registered: u8,
    dirty: bool,
}

/// One media core: its sessions, its sockets (inside the slots) and its backend.
pub(crate) struct MediaCore<I: PacketIo> {
    index: usize,
    io: I,
    slots: Vec<Option<SessionSlot>>,
    free: Vec<u32>,
    by_id: HashMap<SessionId, u32>,
    /// Each open slot's next deadline.
    timers: TimerWheel,
    /// Slots whose deadline passed (scratch of `run_timers`).
    due: Vec<u32>,
    dirty: Vec<u32>,
    released: Vec<u32>,
    mailbox: Arc<CoreMailbox>,
    control_wake: Arc<Wakeup>,
    events_queued: bool,
    /// `Closed` events that did not fit in the event queue (retried every turn).
    held_back: VecDeque<Event>,
    last_timer_turn: Instant,
    next_stats: Instant,
    lateness: LatenessTally,
    next_cpu_sample: Instant,
}

impl<I: PacketIo> MediaCore<I> {
    pub(crate) fn new(
        index: usize,
        io: I,
        mailbox: Arc<CoreMailbox>,
        control_wake: Arc<Wakeup>,
    ) -> Self {
        Self {
            index,
            io,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            timers: TimerWheel::new(Instant::now(), TIMER_TICK),
            due: Vec::new(),
            dirty: Vec::new(),
            released: Vec::new(),
            mailbox,
            control_wake,
            events_queued: false,
            held_back: VecDeque::new(),
            last_timer_turn: Instant::now(),
            next_stats: Instant::now() + STATS_INTERVAL,
            lateness: LatenessTally::default(),
            next_cpu_sample: Instant::now(),
        }
    }

    /// Runs until the mailbox's shutdown flag is set.
    pub(crate) fn run(mut self) {
        tracing::info!(
            core = self.index,
            backend = self.io.name(),
            "media core running"
        );
        let mut wait_errors = 0u32;
        while !self.mailbox.shutdown.load(Ordering::Acquire) {
            let deadline = self.next_deadline();
            if let Err(e) = self.io.wait(deadline) {
                wait_errors += 1;
                tracing::error!(core = self.index, error = %e, "media core: I/O wait failed");
                if wait_errors > 100 {
                    tracing::error!(
                        core = self.index,
                        "media core: giving up after repeated I/O errors"
                    );
                    break;
                }
                continue;
            }
            let now = Instant::now();
            self.receive(now);
            self.run_commands();
            self.run_timers(now);
            if now >= self.next_stats {
                self.next_stats = now + STATS_INTERVAL;
                self.report_stats();
            }
            if now >= self.next_cpu_sample {
                self.next_cpu_sample = now + CPU_SAMPLE_INTERVAL;
                if let Some(ns) = thread_cpu_ns() {
                    self.mailbox.health.cpu_ns.store(ns, Ordering::Relaxed);
                }
            }
            self.service_dirty(now);
            self.io.flush();
            self.publish_events();
        }
        let c = self.io.counters();
        tracing::info!(
            core = self.index,
            received = c.received,
            sent = c.sent,
            send_errors = c.send_errors,
            recv_errors = c.recv_errors,
            truncated = c.truncated,
            rearms = c.rearms,
            "media core stopped"
        );
    }

    /// The earliest session deadline, coalesced: never more than one timer wake-up per
    /// `TIMER_TICK` (deadlines are served up to a tick late under load, exactly when idle).
    fn next_deadline(&mut self) -> Option<Instant> {
        if !self.held_back.is_empty() {
            return Some(Instant::now() + TIMER_TICK);
        }
        let stats = (!self.by_id.is_empty()).then_some(self.next_stats);
        match self.timers.next_deadline() {
            Some(at) => {
                let at = at.max(self.last_timer_turn + TIMER_TICK);
                Some(stats.map_or(at, |s| s.min(at)))
            }
            None => stats,
        }
    }

    /// Queues an [`Event::Stats`] for every open session.
    fn report_stats(&mut self) {
        let mut all = Vec::with_capacity(self.by_id.len());
        for s in self.slots.iter().flatten() {
            if !s.closing {
                all.push(Event::Stats {
                    id: s.id,
                    stats: s.session.stats(),
                });
            }
        }
        for ev in all {
            self.push_event(ev);
        }
    }

    fn receive(&mut self, now: Instant) {
        let Self {
            io,
            slots,
            dirty,
            released,
            mailbox,
            ..
        } = self;
        io.drain(&mut |ev| match ev {
            IoEvent::Arriving { key, head } => {
                if key & 1 == 0 {
                    if let Some(Some(s)) = slots.get((key >> 1) as usize) {
                        if !s.closing {
                            s.session.prefetch_receive(head);
                        }
                    }
                }
            }
            IoEvent::Datagram { key, from, data } => {
                let slot = (key >> 1) as usize;
                if let Some(Some(s)) = slots.get_mut(slot) {
                    if s.closing {
                        return;
                    }
                    let srtp = s.session.is_srtp();
                    let before = if srtp {
                        s.session.srtp_drops()
                    } else {
                        (0, 0, 0)
                    };
                    if key & 1 == 0 {
                        s.session.handle_rtp(now, from, data);
                    } else {
                        s.session.handle_rtcp(now, from, data);
                    }
                    if srtp {
                        let after = s.session.srtp_drops();
                        add_delta(&mailbox.srtp_auth_failed, before.0, after.0);
                        add_delta(&mailbox.srtp_replayed, before.1, after.1);
                    }
                    if !s.dirty {
                        s.dirty = true;
                        dirty.push(slot as u32);
                    }
                }
            }
            IoEvent::Released { key } => released.push(key),
            IoEvent::Wake => {}
        });
        for key in std::mem::take(&mut self.released) {
            let slot = key >> 1;
            let done = match self.slots.get_mut(slot as usize) {
                Some(Some(s)) => {
                    s.registered = s.registered.saturating_sub(1);
                    s.registered == 0 && s.closing
                }
                _ => false,
            };
            if done {
                self.finish_close(slot);
            }
        }
    }

    fn run_commands(&mut self) {
        for _ in 0..COMMANDS_PER_TURN {
            let Some(cmd) = self.mailbox.commands.pop() else {
                break;
            };
            match cmd {
                CoreCommand::Open {
                    id,
                    session,
                    rtp,
                    rtcp,
                } => self.open(id, session, rtp, rtcp),
                CoreCommand::Session(cmd) => self.session_command(cmd),
            }
        }
    }

    fn open(
        &mut self,
        id: SessionId,
        session: Box<MediaSession>,
        rtp: Socket,
        rtcp: Option<Socket>,
    ) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let next_timeout = session.poll_timeout();
        let rtp_fd = rtp.as_raw_fd();
        let rtcp_fd = rtcp.as_ref().map(|s| s.as_raw_fd());
        let mut registered = 0u8;
        let mut failed = None;
        match self.io.register(slot << 1, rtp_fd) {
            Ok(()) => registered += 1,
            Err(e) => failed = Some(e),
        }
        if let (Some(fd), None) = (rtcp_fd, failed.as_ref()) {
            match self.io.register((slot << 1) | 1, fd) {
                Ok(()) => registered += 1,
                Err(e) => failed = Some(e),
            }
        }
        if let Some(slot_ref) = self.slots.get_mut(slot as usize) {
            *slot_ref = Some(SessionSlot {
                id,
                session,
                rtp,
                rtcp,
                next_timeout: Some(next_timeout),
                transmit_due: true,
                pending: Vec::new(),
                pending_at: 0,
                closing: false,
                registered,
                dirty: false,
            });
        }
        self.by_id.insert(id, slot);
        if let Some(e) = failed {
            tracing::warn!(core = self.index, session = %id, error = %e, "media core: cannot receive on session socket; closing it");
            self.close(slot);
            return;
        }
        self.timers.set(slot, next_timeout);
        self.mark_dirty(slot);
    }

    fn session_command(&mut self, cmd: Command) {
        let id = cmd.id();
        let Some(&slot) = self.by_id.get(&id) else {
            tracing::debug!(core = self.index, session = %id, "media core: command for unknown session ignored");
            return;
        };
        if let Command::Close { .. } = cmd {
            self.close(slot);
            return;
        }
        let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if s.closing {
            return;
        }
        match cmd {
            Command::Play { pcm, .. } => {
                if s.pending_at >= s.pending.len() {
                    s.pending.clear();
                    s.pending_at = 0;
                    let taken = s.session.play(&pcm);
                    if let Some(rest) = pcm.get(taken..) {
                        s.pending.extend_from_slice(rest);
                    }
                } else {
                    s.pending.extend_from_slice(&pcm);
                }
            }
            Command::StopPlayback { .. } => {
                s.pending.clear();
                s.pending_at = 0;
                s.session.stop_playback();
            }
            Command::SendDtmf {
                digit, duration, ..
            } => {
                if let Err(e) = s.session.send_dtmf(digit, duration) {
                    tracing::warn!(core = self.index, session = %id, error = %e, "media core: DTMF not sent");
                }
            }
            Command::Retarget {
                remote_rtp,
                remote_rtcp,
                inbound,
                ..
            } => s
                .session
                .retarget(remote_rtp, remote_rtcp, inbound.map(|b| *b)),
            Command::Close { .. } => {}
        }
        s.transmit_due = true;
        self.mark_dirty(slot);
    }

    fn close(&mut self, slot: u32) {
        let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if s.closing {
            return;
        }
        s.closing = true;
        self.timers.cancel(slot);
        if s.registered == 0 {
            self.finish_close(slot);
            return;
        }
        let has_rtcp = s.rtcp.is_some();
        let registered = s.registered;
        self.io.deregister(slot << 1);
        if has_rtcp && registered > 1 {
            self.io.deregister((slot << 1) | 1);
        }
    }

    /// Every receive on the session's sockets is over: drop them and report `Closed`.
    fn finish_close(&mut self, slot: u32) {
        let Some(s) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.by_id.remove(&s.id);
        self.timers.cancel(slot);
        self.free.push(slot);
        let stats = s.session.stats();
        let id = s.id;
        drop(s);
        self.push_event(Event::Closed { id, stats });
    }

    fn run_timers(&mut self, now: Instant) {
        let mut ran = false;
        let mut due = std::mem::take(&mut self.due);
        self.timers.expire(now, &mut due);
        // Lateness is counted from here, not from the turn's start: the receive drain
        // and the commands ran in between, and that wait is what the sessions feel.
        let served_at = if due.is_empty() {
            now
        } else {
            Instant::now().max(now)
        };
        // Each due session's state is cold: start fetching what each will read first,
        // for all of them, before serving the first (the misses then overlap).
        for &slot in &due {
            if let Some(Some(s)) = self.slots.get(slot as usize) {
                let (jitter, play) = s.session.due_reads(now);
                crate::prefetch::lines(jitter);
                crate::prefetch::lines(play);
            }
        }
        for slot in due.drain(..) {
            let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            if let Some(deadline) = s.next_timeout.take() {
                self.lateness
                    .record(served_at.saturating_duration_since(deadline));
            }
            if s.closing {
                continue;
            }
            ran = true;
            s.transmit_due = true;
            s.session.handle_timeout(now);
            if s.pending_at < s.pending.len() {
                let taken = s.session.play(s.pending.get(s.pending_at..).unwrap_or(&[]));
                s.pending_at += taken;
            }
            self.mark_dirty(slot);
        }
        self.due = due;
        if ran {
            self.last_timer_turn = now;
            self.lateness.publish(&self.mailbox.health);
        }
    }

    fn mark_dirty(&mut self, slot: u32) {
        if let Some(Some(s)) = self.slots.get_mut(slot as usize) {
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    /// Collects outgoing packets, events and the next deadline of every touched session.
    fn service_dirty(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            s.dirty = false;
            if s.closing {
                continue;
            }
            // Only a timer, a command or a passed deadline makes packets due: a datagram
            // alone changes nothing `poll_transmit` sends before `poll_timeout`.
            if std::mem::take(&mut s.transmit_due) || s.session.poll_timeout() <= now {
                let protect_failed = s.session.srtp_drops().2;
                for _ in 0..TRANSMITS_PER_SERVICE {
                    let Some(t) = s.session.poll_transmit(now, self.io.send_buf()) else {
                        break;
                    };
                    let fd = match (t.kind, &s.rtcp) {
                        (PacketKind::Rtcp, Some(rtcp)) => rtcp.as_raw_fd(),
                        _ => s.rtp.as_raw_fd(),
                    };
                    self.io.commit_send(fd, t.dest, t.len);
                }
                add_delta(
                    &self.mailbox.srtp_protect_failed,
                    protect_failed,
                    s.session.srtp_drops().2,
                );
            }
            let id = s.id;
            let next = s.session.poll_timeout();
            if s.next_timeout != Some(next) {
                s.next_timeout = Some(next);
                self.timers.set(slot, next);
            }
            for _ in 0..EVENTS_PER_SERVICE {
                let Some(Some(s)) = self.slots.get_mut(slot as usize) else {
                    break;
                };
                let Some(ev) = s.session.poll_event() else {
                    break;
                };
                if let Some(ev) = to_event(id, ev) {
                    self.push_event(ev);
                }
            }
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn push_event(&mut self, ev: Event) {
        if let Err(ev) = self.mailbox.events.push(ev) {
            let n = self.mailbox.events_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    core = self.index,
                    dropped_total = n,
                    "media core: event queue full; event dropped (control side not keeping up)"
                );
            }
            if let Event::Closed { .. } = ev {
                self.held_back.push_back(ev);
            }
        } else {
            self.events_queued = true;
        }
    }

    fn publish_events(&mut self) {
        while let Some(ev) = self.held_back.pop_front() {
            if let Err(ev) = self.mailbox.events.push(ev) {
                self.held_back.push_front(ev);
                break;
            }
            self.events_queued = true;
        }
        if std::mem::take(&mut self.events_queued) {
            self.control_wake.notify();
        }
    }
}

/// Adds what a session counter grew by to the core's counter (nothing when unchanged).
fn add_delta(counter: &AtomicU64, before: u64, after: u64) {
    let d = after.saturating_sub(before);
    if d > 0 {
        counter.fetch_add(d, Ordering::Relaxed);
    }
}

/// Maps a session event to the engine's event (None: not forwarded).
fn to_event(id: SessionId, ev: SessionEvent) -> Option<Event> {
    Some(match ev {
        SessionEvent::Audio(frame) => Event::Audio { id, frame },
        SessionEvent::Dtmf { digit, duration } => Event::Dtmf {
            id,
            digit,
            duration,
        },
        SessionEvent::SpeechStart => Event::SpeechStart { id },
        SessionEvent::SpeechEnd => Event::SpeechEnd { id },
        SessionEvent::RtpTimeout => Event::RtpTimeout { id },
        SessionEvent::RemoteAddressLearned(addr) => Event::RemoteAddressLearned { id, addr },
        // Read now, not the loop's start: the Play command may have arrived during this
        // pass. The packet is in the send batch, flushed right after this service pass.
        SessionEvent::PlaybackStarted => Event::PlaybackStarted {
            id,
            at: Instant::now(),
        },
        SessionEvent::PlaybackIdle => Event::PlaybackIdle { id },
    })
}
