//! `UringIo`: the io_uring backend.
//!
//! - Receive: one multishot `RECVMSG` per socket, drawing buffers from a provided-buffer
//!   ring (buffer group 0). Each buffer goes back to the ring right after the core's
//!   callback returns, and the tail is published once per drain. A multishot that ends
//!   (no `F_MORE`: ENOBUFS or otherwise) is re-armed at the end of the same drain.
//! - Send: `SEND` with a destination address (sendto; kernel 6.1) from a pool of slots
//!   (buffer + address) whose addresses stay fixed while the kernel may read them; a
//!   loop turn's sends are submitted together by the next `io_uring_enter`. Against
//!   `SENDMSG` it skips copying in a msghdr and an iovec per packet (perf at 1,000
//!   sessions: the send path above `udp_sendmsg` 6.7 → 4.4 % of the thread). The probe
//!   sends one such datagram between two loopback sockets before the backend is used.
//! - Timers: one `TIMEOUT` op for the core's next session deadline (re-armed only when
//!   an earlier one appears). While sockets are registered the wait itself is batched:
//!   `io_uring_enter` with min-complete 64 and an `EXT_ARG` timeout of at most
//!   `BATCH_WINDOW` (0.5 ms) or the deadline; with `DEFER_TASKRUN` the thread is not
//!   woken per datagram (waking per datagram cost 42 % of the core in the bench).
//! - Drain: the kernel runs deferred receives in chunks (at most max(20, min-complete)
//!   per enter) and leaves the rest queued; a drain whose reap looks like a backlog
//!   enters again (min-complete 0, no wait) and reaps until it does not, so everything
//!   that arrived during a stall reaches the sessions before their due frames play.
//!   Without it, 1,500 sessions lost 0.2–0.3 % of packets in half the runs (jitter
//!   buffers ran dry, stepped a frame deeper and later shrank by discarding).
//! - Wake-up: a `READ` of the core's eventfd, re-armed after each completion.
//! - No `IOSQE_ASYNC` anywhere: sockets and the eventfd are pollable, so nothing is
//!   handed to io-wq.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::sockaddr::{self, NAME_LEN};
use super::{IoCounters, IoEvent, PacketIo, ARRIVING_HEAD, MAX_DATAGRAM};

/// `IORING_ENTER_GETEVENTS` (linux/io_uring.h).
const IORING_ENTER_GETEVENTS: u32 = 1;
/// `sizeof(struct io_uring_recvmsg_out)`: namelen, controllen, payloadlen, flags (u32 each).
const RECVMSG_OUT_LEN: usize = 16;
const BGID: u16 = 0;
/// Provided receive buffers per core (power of two).
const RECV_BUFS: u16 = 4096;
/// Bytes per receive buffer: recvmsg-out header (16) + name (28) + payload.
const RECV_BUF_SIZE: usize = 2048;
/// Outgoing packets that may be in flight at once.
const SEND_SLOTS: usize = 4096;
const SQ_ENTRIES: u32 = 1024;
/// Completions that end a wait early (before the batch window or deadline).
const WAKE_BATCH: usize = 64;
/// Completions reaped (and announced, see `IoEvent::Arriving`) at a time.
const REAP_CHUNK: usize = 64;
const CQ_ENTRIES: u32 = 16384;
/// A reap of at least this many completions may have left deferred receives queued in
/// the kernel (its default chunk of deferred work per enter is 20).
const BACKLOG_HINT: usize = 20;
/// Backlog rounds per drain, at most (so timers still run under a flood): 256 chunks
/// of 20 is over 5,000 datagrams, 70 ms of 1,500 sessions.
const BACKLOG_ROUNDS: usize = 256;

const KIND_RECV: u64 = 1;
const KIND_SEND: u64 = 2;
const KIND_TIMEOUT: u64 = 3;
const KIND_WAKE: u64 = 4;
const KIND_CANCEL: u64 = 5;

fn user_data(kind: u64, gen: u32, key: u32) -> u64 {
    (kind << 56) | (u64::from(gen & 0x00ff_ffff) << 32) | u64::from(key)
}

fn split_user_data(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, ((ud >> 32) & 0x00ff_ffff) as u32, ud as u32)
}

/// Checks that this kernel and its seccomp policy allow what [`UringIo`] needs: ring
/// setup, the opcodes, and a provided-buffer ring.
pub(crate) fn probe() -> io::Result<()> {
    let mut ring = IoUring::new(8)?;
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring without IORING_FEAT_EXT_ARG (kernel < 5.11)",
        ));
    }
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in [
        (opcode::RecvMsgMulti::CODE, "recvmsg"),
        (opcode::Send::CODE, "send"),
        (opcode::Timeout::CODE, "timeout"),
        (opcode::Read::CODE, "read"),
        (opcode::AsyncCancel::CODE, "async_cancel"),
    ] {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring opcode {name} not supported"),
            ));
        }
    }
    let bufs = BufRing::new(&ring, 8, 64)?;
    drop(bufs);
    probe_send_to(&mut ring)
}

/// Sends one datagram with a destination address through `ring`, between two loopback
/// sockets of its own. The media sends carry one (sendto semantics, kernel 6.1); a
/// kernel without it refuses the address with EINVAL, and the opcode probe alone would
/// let such a kernel through to lose every packet.
fn probe_send_to(ring: &mut IoUring) -> io::Result<()> {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0")?;
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = sockaddr::to_storage(rx.local_addr()?, &mut addr);
    let payload = *b"rtp?";
    let entry = opcode::Send::new(
        types::Fd(std::os::fd::AsRawFd::as_raw_fd(&tx)),
        payload.as_ptr(),
        payload.len() as u32,
    )
    .dest_addr((&addr as *const libc::sockaddr_storage).cast())
    .dest_addr_len(len)
    .build()
    .user_data(1);
    // SAFETY: the payload and the address live on this frame until the completion is
    // reaped below.
    unsafe { ring.submission().push(&entry) }
        .map_err(|_| io::Error::other("io_uring probe: submission queue full"))?;
    ring.submit_and_wait(1)?;
    let res = ring
        .completion()
        .next()
        .map(|c| c.result())
        .ok_or_else(|| io::Error::other("io_uring probe: no completion for the send"))?;
    if res < 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "io_uring SEND with a destination address failed ({}; kernel < 6.1?)",
                io::Error::from_raw_os_error(-res)
            ),
        ));
    }
    Ok(())
}

/// A provided-buffer ring and the memory its entries point into.
struct BufRing {
    ring_mem: *mut u8,
    ring_layout: Layout,
    entries: u16,
    buf_size: usize,
    pool: Box<[u8]>,
    local_tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring, entries: u16, buf_size: usize) -> io::Result<Self> {
        let ring_layout = Layout::from_size_align(usize::from(entries) * 16, 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (entries > 0 is checked by callers'
        // constants) and a valid power-of-two alignment.
        let ring_mem = unsafe { alloc_zeroed(ring_layout) };
        if ring_mem.is_null() {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "buffer ring"));
        }
        let mut me = Self {
            ring_mem,
            ring_layout,
            entries,
            buf_size,
            pool: vec![0u8; usize::from(entries) * buf_size].into_boxed_slice(),
            local_tail: 0,
        };
        // SAFETY: `ring_mem` is page-aligned, `entries * 16` bytes, and lives (with
        // `pool`) until Drop, which runs after the ring that uses it is dropped or the
        // group unregistered (see `Drop for UringIo`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ring_mem as u64, entries, BGID, 0)?;
        }
        for bid in 0..entries {
            me.push(bid);
        }
        me.publish();
        Ok(me)
    }

    /// Puts buffer `bid` at the (local) tail. Visible to the kernel after `publish`.
    fn push(&mut self, bid: u16) {
        let idx = usize::from(self.local_tail & (self.entries - 1));
        let addr = self.pool.as_ptr() as u64 + (usize::from(bid) * self.buf_size) as u64;
        // SAFETY: idx < entries, so the entry lies inside `ring_mem`. The setters write
        // only addr/len/bid, never the `resv` field that entry 0 shares with the tail.
        let entry = unsafe { &mut *self.ring_mem.cast::<types::BufRingEntry>().add(idx) };
        entry.set_addr(addr);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.local_tail = self.local_tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail is a naturally aligned u16 inside `ring_mem` that the kernel
        // only reads; a release store orders the entry writes before it.
        let tail = unsafe {
            &*(types::BufRingEntry::tail(self.ring_mem.cast::<types::BufRingEntry>())
                as *const AtomicU16)
        };
        tail.store(self.local_tail, Ordering::Release);
    }

    fn buffer(&mut self, bid: u16) -> Option<&mut [u8]> {
        let start = usize::from(bid) * self.buf_size;
        self.pool.get_mut(start..start + self.buf_size)
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.ring_mem, self.ring_layout) };
    }
}

#[repr(C)]
struct SendSlot {
    addr: libc::sockaddr_storage,
    buf: [u8; MAX_DATAGRAM],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RegState {
    Armed,
    /// Multishot ended; re-arm at the end of this drain.
    NeedsArm,
    Cancelling,
}

struct Registration {
    fd: RawFd,
    gen: u32,
    state: RegState,
}

/// The io_uring backend of one media core. Not `Send`: built on the core's thread.
pub(crate) struct UringIo {
    ring: IoUring,
    bufs: BufRing,
    recv_hdr: Box<libc::msghdr>,
    regs: Vec<Option<Registration>>,
    next_gen: u32,
    to_arm: Vec<u32>,
    released: Vec<u32>,
    slots: Box<[SendSlot]>,
    free_slots: Vec<u32>,
    current_slot: Option<u32>,
    /// Used by `send_buf` when every slot is in flight; what is written there is dropped.
    scratch: Box<[u8; MAX_DATAGRAM]>,
    unsubmitted: u32,
    wake_fd: RawFd,
    wake_buf: Box<u64>,
    wake_armed: bool,
    timeout_ts: Box<types::Timespec>,
    timeout_at: Option<Instant>,
    timeout_seq: u32,
    counters: IoCounters,
    send_dropped_logged: bool,
}

impl std::fmt::Debug for UringIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringIo")
            .field("counters", &self.counters)
            .finish()
    }
}

impl UringIo {
    /// Builds the ring on the calling (core) thread; `wake_fd` is the core's eventfd.
    pub(crate) fn new(wake_fd: RawFd) -> io::Result<Self> {
        Self::with_recv_buffers(wake_fd, RECV_BUFS)
    }

    /// As `new`, with `recv_buffers` (a power of two) provided receive buffers.
    pub(crate) fn with_recv_buffers(wake_fd: RawFd, recv_buffers: u16) -> io::Result<Self> {
        if !recv_buffers.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "receive buffer count must be a power of two",
            ));
        }
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_defer_taskrun()
            .build(SQ_ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_cqsize(CQ_ENTRIES)
                    .build(SQ_ENTRIES)
            })?;
        let bufs = BufRing::new(&ring, recv_buffers, RECV_BUF_SIZE)?;
        // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
        let mut recv_hdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_hdr.msg_namelen = NAME_LEN as libc::socklen_t;
        let slots: Box<[SendSlot]> = (0..SEND_SLOTS)
            // SAFETY: all-zero is valid for every field (C structs and a byte array).
            .map(|_| unsafe { std::mem::zeroed::<SendSlot>() })
            .collect();
        let mut me = Self {
            ring,
            bufs,
            recv_hdr,
            regs: Vec::new(),
            next_gen: 1,
            to_arm: Vec::new(),
            released: Vec::new(),
            slots,
            free_slots: (0..SEND_SLOTS as u32).rev().collect(),
            current_slot: None,
            scratch: Box::new([0; MAX_DATAGRAM]),
            unsubmitted: 0,
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            timeout_ts: Box::new(types::Timespec::new()),
            timeout_at: None,
            timeout_seq: 0,
            counters: IoCounters::default(),
            send_dropped_logged: false,
        };
        me.arm_wake()?;
        me.enter(0)?;
        Ok(me)
    }

    /// Pushes one SQE, submitting first if the queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed here points only at memory owned by `self`
            // (msghdrs, send slots, wake buffer, timespec) that stays put until its
            // completion has been reaped or the ring is dropped.
            let pushed = unsafe { self.ring.submission().push(entry) };
            if pushed.is_ok() {
                self.unsubmitted += 1;
                return Ok(());
            }
            self.enter(0)?;
        }
    }

    /// Submits what is queued and, with `want > 0`, waits for that many completions.
    /// Always passes GETEVENTS so deferred task work (DEFER_TASKRUN) runs.
    fn enter(&mut self, want: u32) -> io::Result<()> {
        // SAFETY: no argument pointer is passed; to_submit is the count pushed since
        // the last enter.
        let res = unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                self.unsubmitted,
                want,
                IORING_ENTER_GETEVENTS,
                None,
            )
        };
        match res {
            Ok(n) => {
                self.unsubmitted = self.unsubmitted.saturating_sub(n as u32);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let entry = opcode::Read::new(
            types::Fd(self.wake_fd),
            (&mut *self.wake_buf as *mut u64).cast::<u8>(),
            8,
        )
        .build()
        .user_data(user_data(KIND_WAKE, 0, 0));
        self.push(&entry)?;
        self.wake_armed = true;
        Ok(())
    }

    fn arm_recv(&mut self, key: u32) -> io::Result<()> {
        let Some(Some(reg)) = self.regs.get(key as usize) else {
            return Ok(());
        };
        let entry = opcode::RecvMsgMulti::new(types::Fd(reg.fd), &*self.recv_hdr, BGID)
            .build()
            .user_data(user_data(KIND_RECV, reg.gen, key));
        self.push(&entry)?;
        if let Some(Some(reg)) = self.regs.get_mut(key as usize) {
            reg.state = RegState::Armed;
        }
        Ok(())
    }

    /// Hands the completions now in the CQ to `on_event` and gives their receive
    /// buffers back; returns how many completions there were.
    fn reap(&mut self, on_event: &mut dyn FnMut(IoEvent<'_>), rewake: &mut bool) -> usize {
        let mut returned = 0u32;
        let mut reaped = 0usize;
        {
            let Self {
                ring,
                bufs,
                recv_hdr,
                regs,
                to_arm,
                slots: _,
                free_slots,
                wake_armed,
                timeout_at,
                timeout_seq,
                counters,
                ..
            } = self;
            let mut chunk = [const { MaybeUninit::<cqueue::Entry>::uninit() }; REAP_CHUNK];
            let mut cq = ring.completion();
            loop {
                let batch = cq.fill(&mut chunk);
                if batch.is_empty() {
                    break;
                }
                // Every datagram of the batch announced first (see IoEvent::Arriving):
                // the buffers stay ours until they are pushed back below.
                for cqe in batch.iter() {
                    let (kind, gen, key) = split_user_data(cqe.user_data());
                    let res = cqe.result();
                    if kind != KIND_RECV || res <= 0 {
                        continue;
                    }
                    let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
                        continue;
                    };
                    if !matches!(regs.get(key as usize), Some(Some(r)) if r.gen == gen) {
                        continue;
                    }
                    let start = RECVMSG_OUT_LEN + NAME_LEN;
                    let end = (res as usize).min(start + ARRIVING_HEAD);
                    if let Some(head) = bufs.buffer(bid).and_then(|b| b.get(start..end)) {
                        on_event(IoEvent::Arriving { key, head });
                    }
                }
                for cqe in batch.iter() {
                    reaped += 1;
                    let (kind, gen, key) = split_user_data(cqe.user_data());
                    let res = cqe.result();
                    let flags = cqe.flags();
                    match kind {
                        KIND_RECV => {
                            let more = cqueue::more(flags);
                            let live =
                                matches!(regs.get(key as usize), Some(Some(r)) if r.gen == gen);
                            if let Some(bid) = cqueue::buffer_select(flags) {
                                if res >= 0 && live {
                                    deliver(
                                        bufs,
                                        bid,
                                        res as usize,
                                        recv_hdr,
                                        key,
                                        counters,
                                        on_event,
                                    );
                                }
                                bufs.push(bid);
                                returned += 1;
                            } else if res < 0 && res != -libc::ENOBUFS && res != -libc::ECANCELED {
                                counters.recv_errors += 1;
                            }
                            if !more && live {
                                let slot = regs.get_mut(key as usize);
                                if let Some(entry) = slot {
                                    let cancelling =
                                        matches!(entry, Some(r) if r.state == RegState::Cancelling);
                                    if cancelling {
                                        *entry = None;
                                        on_event(IoEvent::Released { key });
                                    } else if let Some(r) = entry {
                                        r.state = RegState::NeedsArm;
                                        to_arm.push(key);
                                        if res == -libc::ENOBUFS {
                                            counters.rearms += 1;
                                        }
                                    }
                                }
                            }
                        }
                        KIND_SEND => {
                            if res < 0 {
                                counters.send_errors += 1;
                            } else {
                                counters.sent += 1;
                            }
                            free_slots.push(key);
                        }
                        KIND_TIMEOUT if key == *timeout_seq => *timeout_at = None,
                        KIND_WAKE => {
                            *wake_armed = false;
                            *rewake = true;
                            on_event(IoEvent::Wake);
                        }
                        // -ENOENT: the multishot had already ended and no final CQE
                        // will follow; if it was being cancelled, release now.
                        KIND_CANCEL if res == -libc::ENOENT => {
                            if let Some(entry) = regs.get_mut(key as usize) {
                                if matches!(entry, Some(r) if r.gen == gen && r.state == RegState::Cancelling)
                                {
                                    *entry = None;
                                    on_event(IoEvent::Released { key });
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        if returned > 0 {
            self.bufs.publish();
        }
        reaped
    }
}

impl PacketIo for UringIo {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn register(&mut self, key: u32, fd: RawFd) -> io::Result<()> {
        let idx = key as usize;
        if self.regs.len() <= idx {
            self.regs.resize_with(idx + 1, || None);
        }
        let gen = self.next_gen;
        self.next_gen = (self.next_gen + 1) & 0x00ff_ffff;
        if let Some(slot) = self.regs.get_mut(idx) {
            *slot = Some(Registration {
                fd,
                gen,
                state: RegState::NeedsArm,
            });
        }
        self.arm_recv(key)
    }

    fn deregister(&mut self, key: u32) {
        let Some(Some(reg)) = self.regs.get_mut(key as usize) else {
            return;
        };
        match reg.state {
            RegState::Armed => {
                reg.state = RegState::Cancelling;
                let target = user_data(KIND_RECV, reg.gen, key);
                let entry = opcode::AsyncCancel::new(target)
                    .build()
                    .user_data(user_data(KIND_CANCEL, reg.gen, key));
                if self.push(&entry).is_err() {
                    tracing::warn!(key, "io_uring: cancel submission failed");
                }
            }
            RegState::NeedsArm | RegState::Cancelling => {
                if let Some(slot) = self.regs.get_mut(key as usize) {
                    *slot = None;
                }
                self.to_arm.retain(|k| *k != key);
                self.released.push(key);
            }
        }
    }

    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        if !self.ring.completion().is_empty() || !self.released.is_empty() {
            return self.enter(0);
        }
        let now = Instant::now();
        if let Some(at) = deadline {
            if at <= now {
                return self.enter(0);
            }
            // The session deadline: a TIMEOUT op in the ring (re-armed only when an
            // earlier deadline appears).
            if self.timeout_at.is_none_or(|armed| at < armed) {
                *self.timeout_ts = types::Timespec::from(at - now);
                self.timeout_seq = self.timeout_seq.wrapping_add(1);
                let entry = opcode::Timeout::new(&*self.timeout_ts)
                    .build()
                    .user_data(user_data(KIND_TIMEOUT, 0, self.timeout_seq));
                self.push(&entry)?;
                self.timeout_at = Some(at);
            }
        }
        if !self.regs.iter().any(Option::is_some) {
            return self.enter(1);
        }
        // Batch: wait for WAKE_BATCH completions, but no longer than BATCH_WINDOW or the
        // deadline (the wait's own timeout, IORING_ENTER_EXT_ARG). With DEFER_TASKRUN the
        // thread is not even woken per datagram.
        let until = deadline.map_or(now + super::BATCH_WINDOW, |d| {
            d.min(now + super::BATCH_WINDOW)
        });
        let ts = types::Timespec::from(until.saturating_duration_since(now));
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(WAKE_BATCH, &args) {
            Ok(n) => {
                self.unsubmitted = self.unsubmitted.saturating_sub(n as u32);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN | libc::ETIME)
                ) =>
            {
                // ETIME: the window passed; whatever was queued has been submitted.
                self.unsubmitted = 0;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn drain(&mut self, on_event: &mut dyn FnMut(IoEvent<'_>)) {
        for key in self.released.drain(..) {
            on_event(IoEvent::Released { key });
        }
        let mut rewake = false;
        // The kernel runs at most max(20, min-complete) deferred receives per enter and
        // leaves the rest queued: after a stall of the thread, most datagrams that
        // arrived during it would still be in the kernel when the core plays its due
        // frames, and their sessions would conceal a frame and step one frame deeper.
        // So while the reap looks like a backlog, run the queued work and reap again,
        // all before the core's timers run.
        let mut reaped = self.reap(on_event, &mut rewake);
        let mut rounds = 0;
        while reaped >= BACKLOG_HINT && rounds < BACKLOG_ROUNDS {
            // GETEVENTS with min-complete 0: runs up to the kernel's chunk, never waits.
            if self.enter(0).is_err() {
                break;
            }
            reaped = self.reap(on_event, &mut rewake);
            rounds += 1;
        }
        let keys = std::mem::take(&mut self.to_arm);
        for key in &keys {
            if let Err(e) = self.arm_recv(*key) {
                tracing::warn!(key, error = %e, "io_uring: re-arming receive failed");
            }
        }
        self.to_arm = keys;
        self.to_arm.clear();
        if rewake || !self.wake_armed {
            if let Err(e) = self.arm_wake() {
                tracing::warn!(error = %e, "io_uring: re-arming wake-up read failed");
            }
        }
    }

    fn send_buf(&mut self) -> &mut [u8] {
        if self.current_slot.is_none() {
            self.current_slot = self.free_slots.pop();
        }
        match self.current_slot {
            Some(i) => match self.slots.get_mut(i as usize) {
                Some(slot) => &mut slot.buf[..],
                None => &mut self.scratch[..],
            },
            None => &mut self.scratch[..],
        }
    }

    fn commit_send(&mut self, fd: RawFd, dest: SocketAddr, len: usize) {
        let Some(i) = self.current_slot.take() else {
            self.counters.send_errors += 1;
            if !self.send_dropped_logged {
                self.send_dropped_logged = true;
                tracing::warn!("io_uring: all {SEND_SLOTS} send slots in flight; dropping packets (counted in send_errors)");
            }
            return;
        };
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        let namelen = sockaddr::to_storage(dest, &mut slot.addr);
        let entry = opcode::Send::new(
            types::Fd(fd),
            slot.buf.as_ptr(),
            len.min(MAX_DATAGRAM) as u32,
        )
        .dest_addr((&slot.addr as *const libc::sockaddr_storage).cast())
        .dest_addr_len(namelen)
        .build()
        .user_data(user_data(KIND_SEND, 0, i));
        if self.push(&entry).is_err() {
            self.counters.send_errors += 1;
            self.free_slots.push(i);
        }
    }

    fn flush(&mut self) {
        // The next `wait` submits the batch in the same io_uring_enter that waits; only
        // submit here if the batch is already large, to keep the SQ short.
        if self.unsubmitted >= SQ_ENTRIES / 2 {
            let _ = self.enter(0);
        }
    }

    fn counters(&self) -> IoCounters {
        self.counters
    }
}

/// Parses one multishot recvmsg buffer and hands the datagram to the core.
fn deliver(
    bufs: &mut BufRing,
    bid: u16,
    len: usize,
    hdr: &libc::msghdr,
    key: u32,
    counters: &mut IoCounters,
    on_event: &mut dyn FnMut(IoEvent<'_>),
) {
    let Some(buf) = bufs.buffer(bid) else {
        return;
    };
    let len = len.min(buf.len());
    let (from, payload_len, truncated) = match types::RecvMsgOut::parse(&buf[..len], hdr) {
        Ok(out) => (
            sockaddr::from_bytes(out.name_data()),
            out.payload_data().len(),
            out.is_payload_truncated() || out.is_name_data_truncated(),
        ),
        Err(()) => (None, 0, true),
    };
    let start = RECVMSG_OUT_LEN + NAME_LEN;
    match (from, truncated, buf.get_mut(start..start + payload_len)) {
        (Some(from), false, Some(data)) if payload_len <= MAX_DATAGRAM => {
            counters.received += 1;
            on_event(IoEvent::Datagram { key, from, data });
        }
        _ => counters.truncated += 1,
    }
}
