//! The I/O floor of a media core, for benchmarks: the core's own backend echoing every
//! datagram back to its source at once, with no session, jitter buffer, codec or timer
//! behind it. What a media core costs above this, per packet, is the sessions' work;
//! what this costs is the kernel's UDP path plus the backend's ring handling, which any
//! design with a socket per session pays (`voxgate-load-floor`, bench/README.md).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::io::{self, IoEvent, PacketIo, MAX_DATAGRAM};
use super::wakeup::Wakeup;
use super::Backend;

/// How long a wait may last before the stop flag is looked at again.
const STOP_POLL: Duration = Duration::from_millis(5);

/// What [`echo_floor`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FloorCounters {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams handed back to the backend to send (its send errors are in `send_errors`).
    pub echoed: u64,
    /// Sends the backend counted as failed (socket buffer full, no free send slot).
    pub send_errors: u64,
}

/// Echoes every datagram that arrives on `sockets` back to its source, from the socket
/// it arrived on, through the media core's `backend` (`Auto` is io_uring where it
/// works), until `stop` is set. Runs on the calling thread; pinning and priority are
/// the caller's. Returns the backend's counters.
pub fn echo_floor(
    sockets: &[UdpSocket],
    backend: Backend,
    stop: &AtomicBool,
) -> std::io::Result<FloorCounters> {
    let wake = Wakeup::new()?;
    let fds: Vec<RawFd> = sockets.iter().map(AsRawFd::as_raw_fd).collect();
    // Sized as the engine sizes its session sockets (a request; the kernel clamps it).
    let buffer = super::EngineConfig::default().socket_buffer_bytes;
    for s in sockets {
        s.set_nonblocking(true)?;
        let s = socket2::SockRef::from(s);
        let _ = s.set_recv_buffer_size(buffer);
        let _ = s.set_send_buffer_size(buffer);
    }
    let uring = match backend {
        Backend::Mmsg => false,
        Backend::Uring => {
            io::uring::probe()?;
            true
        }
        Backend::Auto => io::uring::probe().is_ok(),
    };
    if uring {
        run(io::uring::UringIo::new(wake.raw())?, &fds, stop)
    } else {
        run(io::mmsg::MmsgIo::new(wake.raw())?, &fds, stop)
    }
}

/// One received datagram waiting to be sent back (the backend's receive buffer is
/// lent only for the duration of the callback).
struct Echo {
    key: u32,
    to: SocketAddr,
    at: usize,
    len: usize,
}

fn run<I: PacketIo>(mut io: I, fds: &[RawFd], stop: &AtomicBool) -> std::io::Result<FloorCounters> {
    for (key, fd) in fds.iter().enumerate() {
        io.register(key as u32, *fd)?;
    }
    let mut echoes: Vec<Echo> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut out = FloorCounters::default();
    while !stop.load(Ordering::Acquire) {
        io.wait(Some(Instant::now() + STOP_POLL))?;
        io.drain(&mut |ev| {
            if let IoEvent::Datagram { key, from, data } = ev {
                let len = data.len().min(MAX_DATAGRAM);
                echoes.push(Echo {
                    key,
                    to: from,
                    at: bytes.len(),
                    len,
                });
                bytes.extend_from_slice(&data[..len]);
            }
        });
        out.received += echoes.len() as u64;
        for e in echoes.drain(..) {
            let Some(&fd) = fds.get(e.key as usize) else {
                continue;
            };
            let Some(src) = bytes.get(e.at..e.at + e.len) else {
                continue;
            };
            let buf = io.send_buf();
            let n = e.len.min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            io.commit_send(fd, e.to, n);
            out.echoed += 1;
        }
        bytes.clear();
        io.flush();
    }
    // The last turn's sends go out with one more (non-blocking) submission.
    io.wait(Some(Instant::now()))?;
    out.send_errors = io.counters().send_errors;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Real loopback sockets: every datagram sent to any of the floor's sockets comes
    /// back to its sender, byte for byte and from the socket it was sent to, through
    /// each backend; the floor stops when told.
    #[test]
    fn the_floor_echoes_every_datagram_from_the_socket_it_arrived_on() {
        for backend in [Backend::Mmsg, Backend::Auto] {
            let sockets: Vec<UdpSocket> = (0..3)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind"))
                .collect();
            let addrs: Vec<SocketAddr> = sockets
                .iter()
                .map(|s| s.local_addr().expect("addr"))
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let floor = {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || echo_floor(&sockets, backend, &stop))
            };
            let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            for round in 0u8..20 {
                let to = addrs[usize::from(round) % addrs.len()];
                let payload = [round; 172];
                client
                    .send_to(&payload[..100 + usize::from(round)], to)
                    .expect("send");
                let mut buf = [0u8; 2048];
                let (n, from) = client.recv_from(&mut buf).expect("echo within 5 s");
                assert_eq!(
                    from, to,
                    "{backend:?}: echoed from the socket it was sent to"
                );
                assert_eq!(
                    &buf[..n],
                    &payload[..100 + usize::from(round)],
                    "{backend:?}"
                );
            }
            stop.store(true, Ordering::Release);
            let counters = floor.join().expect("floor thread").expect("floor ran");
            assert_eq!(counters.received, 20, "{backend:?}");
            assert_eq!(counters.echoed, 20, "{backend:?}");
            assert_eq!(counters.send_errors, 0, "{backend:?}");
        }
    }
}
