//! `MmsgIo`: the portable backend: epoll (level-triggered) over the sockets, a timerfd
//! for the core's next deadline and its wake-up eventfd; `recvmmsg` per ready socket and
//! `sendmmsg` per run of packets from the same socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::sockaddr;
use super::{IoCounters, IoEvent, PacketIo, MAX_DATAGRAM};

/// Datagrams per `recvmmsg` call.
const RECV_BATCH: usize = 32;
/// `recvmmsg` calls per ready socket per turn (fairness between sockets).
const RECV_ROUNDS: usize = 4;
/// Outgoing packets queued before a forced flush.
const SEND_BATCH: usize = 1024;
const MAX_EVENTS: usize = 512;
const TOKEN_WAKE: u64 = u64::MAX;
const TOKEN_TIMER: u64 = u64::MAX - 1;

fn epoll_add(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ev` is a live epoll_event; epoll and fd are open descriptors.
    check(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    Ok(())
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The recvmmsg/sendmmsg backend of one media core. Not `Send`: holds raw pointers.
pub(crate) struct MmsgIo {
    /// The sockets (polled without blocking after each wait).
    epoll: OwnedFd,
    /// The wake-up eventfd and the timerfd (the blocking wait).
    ctl_epoll: OwnedFd,
    timer: OwnedFd,
    wake_fd: RawFd,
    regs: Vec<Option<RawFd>>,
    events: Vec<libc::epoll_event>,
    ready: usize,
    wake_ready: bool,
    timer_ready: bool,
    released: Vec<u32>,
    timer_at: Option<Instant>,
    recv_bufs: Box<[[u8; MAX_DATAGRAM]]>,
    recv_iovs: Box<[libc::iovec]>,
    recv_addrs: Box<[libc::sockaddr_storage]>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    send_bufs: Box<[[u8; MAX_DATAGRAM]]>,
    send_iovs: Box<[libc::iovec]>,
    send_addrs: Box<[libc::sockaddr_storage]>,
    send_hdrs: Box<[libc::mmsghdr]>,
    send_fds: Box<[RawFd]>,
    queued: usize,
    counters: IoCounters,
}

impl std::fmt::Debug for MmsgIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgIo")
            .field("counters", &self.counters)
            .finish()
    }
}

fn zeroed_slice<T>(n: usize) -> Box<[T]> {
    // SAFETY: only used for C structs (iovec, sockaddr_storage, mmsghdr) for which
    // all-zero bytes are a valid value.
    (0..n).map(|_| unsafe { std::mem::zeroed::<T>() }).collect()
}

impl MmsgIo {
    /// Builds the epoll set with the core's wake-up eventfd and a timerfd.
    pub(crate) fn new(wake_fd: RawFd) -> io::Result<Self> {
        // SAFETY: plain syscalls without pointers; results checked.
        let epoll =
            unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let ctl_epoll =
            unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let timer = unsafe {
            OwnedFd::from_raw_fd(check(libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            ))?)
        };
        let me = Self {
            epoll,
            ctl_epoll,
            timer,
            wake_fd,
            regs: Vec::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            ready: 0,
            wake_ready: false,
            timer_ready: false,
            released: Vec::new(),
            timer_at: None,
            recv_bufs: vec![[0u8; MAX_DATAGRAM]; RECV_BATCH].into_boxed_slice(),
            recv_iovs: zeroed_slice(RECV_BATCH),
            recv_addrs: zeroed_slice(RECV_BATCH),
            recv_hdrs: zeroed_slice(RECV_BATCH),
            send_bufs: vec![[0u8; MAX_DATAGRAM]; SEND_BATCH].into_boxed_slice(),
            send_iovs: zeroed_slice(SEND_BATCH),
            send_addrs: zeroed_slice(SEND_BATCH),
            send_hdrs: zeroed_slice(SEND_BATCH),
            send_fds: vec![-1; SEND_BATCH].into_boxed_slice(),
            queued: 0,
            counters: IoCounters::default(),
        };
        let ctl = me.ctl_epoll.as_raw_fd();
        epoll_add(ctl, wake_fd, TOKEN_WAKE)?;
        epoll_add(ctl, me.timer.as_raw_fd(), TOKEN_TIMER)?;
        Ok(me)
    }

    fn arm_timer(&mut self, after: std::time::Duration) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                // A zero it_value disarms: never pass 0 for a due deadline.
                tv_nsec: (after.subsec_nanos().max(1)) as libc::c_long,
            },
        };
        // SAFETY: `spec` is a live itimerspec; old value not requested (null).
        unsafe { libc::timerfd_settime(self.timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    }

    /// Reads every datagram ready on one socket (bounded rounds).
    fn receive_from(&mut self, key: u32, fd: RawFd, on_event: &mut dyn FnMut(IoEvent<'_>)) {
        for _ in 0..RECV_ROUNDS {
            for i in 0..RECV_BATCH {
                self.recv_iovs[i] = libc::iovec {
                    iov_base: self.recv_bufs[i].as_mut_ptr().cast(),
                    iov_len: MAX_DATAGRAM,
                };
                let hdr = &mut self.recv_hdrs[i];
                hdr.msg_hdr.msg_name =
                    (&mut self.recv_addrs[i] as *mut libc::sockaddr_storage).cast();
                hdr.msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                hdr.msg_hdr.msg_iov = &mut self.recv_iovs[i];
                hdr.msg_hdr.msg_iovlen = 1;
                hdr.msg_hdr.msg_control = std::ptr::null_mut();
                hdr.msg_hdr.msg_controllen = 0;
                hdr.msg_hdr.msg_flags = 0;
                hdr.msg_len = 0;
            }
            // SAFETY: the headers point at this backend's own buffers, iovecs and
            // addresses, all RECV_BATCH long and alive for the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.recv_hdrs.as_mut_ptr(),
                    RECV_BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                if n < 0 {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::WouldBlock
                        && err.raw_os_error() != Some(libc::EINTR)
                    {
                        self.counters.recv_errors += 1;
                    }
                }
                return;
            }
            let n = n as usize;
            for i in 0..n {
                let hdr = &self.recv_hdrs[i];
                let len = hdr.msg_len as usize;
                let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                let namelen = (hdr.msg_hdr.msg_namelen as usize)
                    .min(std::mem::size_of::<libc::sockaddr_storage>());
                // SAFETY: recv_addrs[i] is a live sockaddr_storage at least namelen long.
                let name = unsafe {
                    std::slice::from_raw_parts(
                        (&self.recv_addrs[i] as *const libc::sockaddr_storage).cast::<u8>(),
                        namelen,
                    )
                };
                match (sockaddr::from_bytes(name), truncated) {
                    (Some(from), false) => {
                        self.counters.received += 1;
                        let data = &mut self.recv_bufs[i][..len.min(MAX_DATAGRAM)];
                        on_event(IoEvent::Datagram { key, from, data });
                    }
                    _ => self.counters.truncated += 1,
                }
            }
            if n < RECV_BATCH {
                return;
            }
        }
    }
}

impl PacketIo for MmsgIo {
    fn name(&self) -> &'static str {
        "mmsg"
    }

    fn register(&mut self, key: u32, fd: RawFd) -> io::Result<()> {
        let idx = key as usize;
        if self.regs.len() <= idx {
            self.regs.resize(idx + 1, None);
        }
        epoll_add(self.epoll.as_raw_fd(), fd, u64::from(key))?;
        if let Some(slot) = self.regs.get_mut(idx) {
            *slot = Some(fd);
        }
        Ok(())
    }

    fn deregister(&mut self, key: u32) {
        if let Some(slot) = self.regs.get_mut(key as usize) {
            if let Some(fd) = slot.take() {
                // SAFETY: removing a registered fd; the event pointer may be null for DEL.
                unsafe {
                    libc::epoll_ctl(
                        self.epoll.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        fd,
                        std::ptr::null_mut(),
                    )
                };
            }
        }
        self.released.push(key);
    }

    fn wait(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        // Block on the wake-up eventfd and the timer only (not on the sockets), until
        // the deadline or at most BATCH_WINDOW while sockets are registered; then take
        // whatever sockets are ready without blocking. One wake-up serves a batch.
        let now = Instant::now();
        let receiving = self.regs.iter().any(Option::is_some);
        let cap = receiving.then(|| now + super::BATCH_WINDOW);
        let until = match (deadline, cap) {
            (Some(d), Some(c)) => Some(d.min(c)),
            (d, c) => d.or(c),
        };
        let mut block = self.released.is_empty();
        if let Some(at) = until {
            if at <= now {
                block = false;
            } else if block && self.timer_at.is_none_or(|armed| at < armed) {
                self.arm_timer(at - now);
                self.timer_at = Some(at);
            }
        }
        if block {
            let mut ctl = [libc::epoll_event { events: 0, u64: 0 }; 2];
            // SAFETY: `ctl` is a live buffer of 2 entries.
            let n =
                unsafe { libc::epoll_wait(self.ctl_epoll.as_raw_fd(), ctl.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
            }
            for ev in ctl.iter().take(n.max(0) as usize) {
                match ev.u64 {
                    TOKEN_WAKE => self.wake_ready = true,
                    TOKEN_TIMER => self.timer_ready = true,
                    _ => {}
                }
            }
        }
        // SAFETY: `events` is a live buffer of MAX_EVENTS entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                MAX_EVENTS as libc::c_int,
                0,
            )
        };
        let n = if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
            0
        } else {
            n as usize
        };
        self.ready = n;
        Ok(())
    }

    fn drain(&mut self, on_event: &mut dyn FnMut(IoEvent<'_>)) {
        for key in std::mem::take(&mut self.released) {
            on_event(IoEvent::Released { key });
        }
        if std::mem::take(&mut self.wake_ready) {
            let mut value: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from the (non-blocking) eventfd.
            unsafe { libc::read(self.wake_fd, (&mut value as *mut u64).cast(), 8) };
            on_event(IoEvent::Wake);
        }
        if std::mem::take(&mut self.timer_ready) {
            let mut value: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from the non-blocking timerfd.
            unsafe { libc::read(self.timer.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
            self.timer_at = None;
        }
        let ready = std::mem::take(&mut self.ready);
        for i in 0..ready {
            let token = self.events[i].u64;
            match token {
                TOKEN_WAKE => {
                    let mut value: u64 = 0;
                    // SAFETY: reads 8 bytes into a live u64 from the (non-blocking) eventfd.
                    unsafe { libc::read(self.wake_fd, (&mut value as *mut u64).cast(), 8) };
                    on_event(IoEvent::Wake);
                }
                TOKEN_TIMER => {
                    let mut value: u64 = 0;
                    // SAFETY: reads 8 bytes into a live u64 from the non-blocking timerfd.
                    unsafe {
                        libc::read(self.timer.as_raw_fd(), (&mut value as *mut u64).cast(), 8)
                    };
                    self.timer_at = None;
                }
                key => {
                    let key = key as u32;
                    if let Some(Some(fd)) = self.regs.get(key as usize) {
                        let fd = *fd;
                        self.receive_from(key, fd, on_event);
                    }
                }
            }
        }
    }

    fn send_buf(&mut self) -> &mut [u8] {
        if self.queued >= SEND_BATCH {
            self.flush();
        }
        let i = self.queued.min(SEND_BATCH - 1);
        &mut self.send_bufs[i][..]
    }

    fn commit_send(&mut self, fd: RawFd, dest: SocketAddr, len: usize) {
        if self.queued >= SEND_BATCH {
            self.flush();
        }
        let i = self.queued;
        let namelen = sockaddr::to_storage(dest, &mut self.send_addrs[i]);
        self.send_iovs[i] = libc::iovec {
            iov_base: self.send_bufs[i].as_mut_ptr().cast(),
            iov_len: len.min(MAX_DATAGRAM),
        };
        let hdr = &mut self.send_hdrs[i];
        hdr.msg_hdr.msg_name = (&mut self.send_addrs[i] as *mut libc::sockaddr_storage).cast();
        hdr.msg_hdr.msg_namelen = namelen;
        hdr.msg_hdr.msg_iov = &mut self.send_iovs[i];
        hdr.msg_hdr.msg_iovlen = 1;
        hdr.msg_hdr.msg_control = std::ptr::null_mut();
        hdr.msg_hdr.msg_controllen = 0;
        hdr.msg_hdr.msg_flags = 0;
        self.send_fds[i] = fd;
        self.queued += 1;
    }

    fn flush(&mut self) {
        let total = std::mem::take(&mut self.queued);
        let mut start = 0;
        while start < total {
            let fd = self.send_fds[start];
            let mut end = start + 1;
            while end < total && self.send_fds[end] == fd {
                end += 1;
            }
            let mut at = start;
            while at < end {
                // SAFETY: headers [at, end) were filled by commit_send and point at this
                // backend's own buffers/addresses, which live for the call.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        self.send_hdrs[at..end].as_mut_ptr(),
                        (end - at) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    // EAGAIN (socket buffer full) or an error: count the first packet
                    // as failed and go on with the rest.
                    self.counters.send_errors += 1;
                    at += 1;
                } else {
                    self.counters.sent += n as u64;
                    at += n as usize;
                }
            }
            start = end;
        }
    }

    fn counters(&self) -> IoCounters {
        self.counters
    }
}
