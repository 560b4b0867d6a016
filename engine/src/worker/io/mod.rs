//! The packet I/O interface a media core drives, and its two implementations:
//! io_uring ([`uring::UringIo`]) and recvmmsg/sendmmsg over epoll ([`mmsg::MmsgIo`]).
//!
//! A core calls, in a loop: [`PacketIo::wait`] (blocks until a datagram, a wake-up or
//! the deadline), [`PacketIo::drain`] (hands each received datagram to the core in
//! place, in a buffer the backend returns to the kernel as soon as the callback
//! returns), then [`PacketIo::send_buf`] + [`PacketIo::commit_send`] per outgoing
//! packet and one [`PacketIo::flush`] per loop turn (the batch).

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Instant;

pub(crate) mod mmsg;
pub(crate) mod sockaddr;
pub(crate) mod uring;

/// Longest a received datagram waits before the core runs (when nothing else wakes it
/// first). Waking per packet costs a context switch each, which at tens of thousands
/// of packets per second costs more than all the packet work; a window of 0.5 ms keeps
/// the wake-ups at ≤ 2,000/s plus timers, for at most 0.5 ms of added latency.
pub(crate) const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_micros(500);

/// Largest datagram a core receives or sends (Ethernet MTU payload).
pub(crate) const MAX_DATAGRAM: usize = 1500;

/// First bytes of a datagram an [`IoEvent::Arriving`] hint carries.
pub(crate) const ARRIVING_HEAD: usize = 16;

/// What [`PacketIo::drain`] reports.
pub(crate) enum IoEvent<'a> {
    /// A hint: a datagram for `key` beginning with `head` (at most [`ARRIVING_HEAD`]
    /// bytes) is normally delivered later in this drain, as an [`IoEvent::Datagram`]
    /// (not if it turns out truncated or its source unreadable). A backend that reaps
    /// datagrams in batches reports the whole batch so before delivering any, so that
    /// the core can start fetching what they will touch; nothing may depend on seeing
    /// it, and every delivery of such a backend has had one.
    Arriving { key: u32, head: &'a [u8] },
    /// A datagram arrived on the socket registered as `key`.
    Datagram {
        key: u32,
        from: SocketAddr,
        data: &'a mut [u8],
    },
    /// The socket registered as `key` is no longer used by the backend (after
    /// [`PacketIo::deregister`]); it may be closed and its port reused.
    Released { key: u32 },
    /// The core's wake-up eventfd fired (commands are waiting, or shutdown).
    Wake,
}

/// Counters a backend keeps (read by the core for its statistics).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IoCounters {
    pub(crate) received: u64,
    pub(crate) sent: u64,
    pub(crate) send_errors: u64,
    pub(crate) recv_errors: u64,
    /// Datagrams larger than [`MAX_DATAGRAM`] (dropped).
    pub(crate) truncated: u64,
    /// Times the receive path ran out of buffers and was re-armed.
    pub(crate) rearms: u64,
}

/// The small interface between a media core and its I/O backend.
pub(crate) trait PacketIo {
    /// Short name for logs and the bench ("uring", "mmsg").
    fn name(&self) -> &'static str;
    /// Starts receiving on `fd` (non-blocking UDP socket); datagrams report `key`.
    fn register(&mut self, key: u32, fd: RawFd) -> io::Result<()>;
    /// Stops receiving on `key`; an [`IoEvent::Released`] follows from `drain`.
    fn deregister(&mut self, key: u32);
    /// Blocks until the wake-up eventfd fires, `deadline` passes (None: no deadline), or
    /// received datagrams are ready, which may be batched: a datagram is reported by
    /// [`BATCH_WINDOW`] after it arrived at the latest. May return early.
    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()>;
    /// Hands every ready event to `on_event`, without blocking.
    fn drain(&mut self, on_event: &mut dyn FnMut(IoEvent<'_>));
    /// A buffer of [`MAX_DATAGRAM`] bytes for the next outgoing packet.
    fn send_buf(&mut self) -> &mut [u8];
    /// Queues the first `len` bytes of the last `send_buf` to `dest` from `fd`.
    fn commit_send(&mut self, fd: RawFd, dest: SocketAddr, len: usize);
    /// Submits the queued sends (one batch).
    fn flush(&mut self);
    /// Counters so far.
    fn counters(&self) -> IoCounters;
}

#[cfg(test)]
mod tests;
