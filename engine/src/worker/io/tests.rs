//! Both backends over real loopback sockets: receive, echo back, wake-up, release,
//! and (io_uring) recovery after the provided buffers run out.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::mmsg::MmsgIo;
use super::uring::UringIo;
use super::{IoEvent, PacketIo, ARRIVING_HEAD};
use crate::worker::wakeup::Wakeup;

/// Whether this host has an IPv6 loopback (a container may run with IPv6 off); the v6
/// round trips are skipped, with a note, where it has none.
fn ipv6_loopback() -> bool {
    let ok = UdpSocket::bind("[::1]:0").is_ok();
    if !ok {
        eprintln!("no IPv6 loopback here: IPv6 round trip skipped");
    }
    ok
}

/// A non-blocking server socket and a client socket on `ip` (a v4 or v6 loopback).
fn bound_pair_on(ip: &str) -> (UdpSocket, UdpSocket) {
    let any = |ip: &str| -> SocketAddr { SocketAddr::new(ip.parse().expect("ip"), 0) };
    let server = UdpSocket::bind(any(ip)).expect("bind server");
    server.set_nonblocking(true).expect("nonblocking");
    let client = UdpSocket::bind(any(ip)).expect("bind client");
    client
        .set_read_timeout(Some(Duration::from_millis(2)))
        .expect("timeout");
    (server, client)
}

/// Sends `count` datagrams over `ip`, echoes each back through the backend (to the
/// source address it reported), and checks the client gets every one back with its
/// payload intact; then deregisters, closes the socket and binds its port again (the
/// backend must not keep the socket open).
fn echo_round_trip<I: PacketIo>(io: &mut I, count: usize, ip: &str) {
    let (server, client) = bound_pair_on(ip);
    let server_addr = server.local_addr().expect("addr");
    io.register(6, server.as_raw_fd()).expect("register");
    let server_fd = server.as_raw_fd();
    let mut echoed = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0usize;
    let mut back = vec![0u8; 2048];
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        // Keep at most 32 in flight so the socket buffers never overflow.
        while sent < count && sent - got.len() < 32 {
            let payload = (sent as u32).to_be_bytes();
            client.send_to(&payload, server_addr).expect("send");
            sent += 1;
        }
        io.wait(Some(Instant::now() + Duration::from_millis(50)))
            .expect("wait");
        let mut batch: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        io.drain(&mut |ev| {
            if let IoEvent::Datagram { key, from, data } = ev {
                assert_eq!(key, 6);
                data.reverse();
                batch.push((from, data.to_vec()));
            }
        });
        for (from, data) in batch {
            let buf = io.send_buf();
            buf[..data.len()].copy_from_slice(&data);
            io.commit_send(server_fd, from, data.len());
            echoed += 1;
        }
        io.flush();
        // Submit (io_uring submits sends on the next enter).
        io.wait(Some(Instant::now())).expect("submit");
        while let Ok((n, _)) = client.recv_from(&mut back) {
            let mut v = back[..n].to_vec();
            v.reverse();
            got.push(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
            if got.len() == sent {
                break;
            }
        }
    }
    got.sort_unstable();
    assert_eq!(
        got.len(),
        count,
        "echoed {echoed}, backend {}, {:?}",
        io.name(),
        io.counters()
    );
    assert!(got.iter().enumerate().all(|(i, v)| *v as usize == i));
    assert!(io.counters().received >= count as u64);

    // Deregistering reports Released, and nothing more arrives for the key.
    io.deregister(6);
    client.send_to(b"late", server_addr).expect("send");
    let mut released = false;
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !released && Instant::now() < deadline {
        io.wait(Some(Instant::now() + Duration::from_millis(20)))
            .expect("wait");
        io.drain(&mut |ev| match ev {
            IoEvent::Released { key } => released = key == 6,
            IoEvent::Datagram { .. } => after += 1,
            IoEvent::Arriving { .. } | IoEvent::Wake => {}
        });
    }
    assert!(released, "{}: no Released after deregister", io.name());
    drop(server);
    UdpSocket::bind(server_addr).unwrap_or_else(|e| {
        panic!(
            "{}: port still held after release and close: {e}",
            io.name()
        )
    });
}

fn wake_is_reported<I: PacketIo>(io: &mut I, wake: &Wakeup) {
    // A wait with no deadline returns once the eventfd is written from another thread.
    let fd = wake.raw();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live array to an eventfd that outlives the thread
        // (joined below).
        unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
    });
    let start = Instant::now();
    let mut woke = false;
    while !woke && start.elapsed() < Duration::from_secs(5) {
        io.wait(Some(Instant::now() + Duration::from_secs(5)))
            .expect("wait");
        io.drain(&mut |ev| woke |= matches!(ev, IoEvent::Wake));
    }
    t.join().expect("join");
    assert!(woke, "{}: wake-up not reported", io.name());
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{}: woke only at the deadline",
        io.name()
    );
}

fn deadline_is_honoured<I: PacketIo>(io: &mut I) {
    // Nothing else is pending: waits end at the deadline (a spurious early return is
    // allowed by the contract, but must be rare).
    let start = Instant::now();
    let deadline = start + Duration::from_millis(30);
    let mut turns = 0;
    while Instant::now() < deadline && turns < 100 {
        io.wait(Some(deadline)).expect("wait");
        io.drain(&mut |_| {});
        turns += 1;
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(30),
        "{}: gave up after {turns} turns",
        io.name()
    );
    assert!(
        turns <= 3,
        "{}: {turns} wake-ups for one deadline",
        io.name()
    );
    assert!(
        waited < Duration::from_secs(2),
        "{}: returned after {waited:?}",
        io.name()
    );
}

#[test]
fn mmsg_backend_echoes_wakes_and_times_out() {
    let wake = Wakeup::new().expect("eventfd");
    let mut io = MmsgIo::new(wake.raw()).expect("mmsg");
    echo_round_trip(&mut io, 2000, "127.0.0.1");
    if ipv6_loopback() {
        echo_round_trip(&mut io, 500, "::1");
    }
    wake_is_reported(&mut io, &wake);
    deadline_is_honoured(&mut io);
}

#[test]
fn uring_backend_echoes_wakes_and_times_out() {
    let wake = Wakeup::new().expect("eventfd");
    let mut io = UringIo::new(wake.raw()).expect("io_uring (see FACTS.md: available here)");
    echo_round_trip(&mut io, 2000, "127.0.0.1");
    if ipv6_loopback() {
        echo_round_trip(&mut io, 500, "::1");
    }
    wake_is_reported(&mut io, &wake);
    deadline_is_honoured(&mut io);
}

#[test]
fn uring_rearms_after_running_out_of_buffers() {
    let wake = Wakeup::new().expect("eventfd");
    let mut io = UringIo::with_recv_buffers(wake.raw(), 64).expect("io_uring");
    let server =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    // Many more datagrams than provided buffers (64) wait in the socket queue.
    let _ = server.set_recv_buffer_size(32 << 20);
    server.set_nonblocking(true).expect("nonblocking");
    server
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().expect("addr").into())
        .expect("bind");
    let addr = server
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    io.register(2, server.as_raw_fd()).expect("register");
    io.wait(Some(Instant::now())).expect("submit");
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    let total = 6000usize;
    for i in 0..total {
        client
            .send_to(&(i as u32).to_be_bytes(), addr)
            .expect("send");
    }
    let mut seen = vec![false; total];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut count = 0;
    while count < total && Instant::now() < deadline {
        io.wait(Some(Instant::now() + Duration::from_millis(20)))
            .expect("wait");
        io.drain(&mut |ev| {
            if let IoEvent::Datagram { data, .. } = ev {
                let i = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
                if let Some(s) = seen.get_mut(i) {
                    if !*s {
                        *s = true;
                        count += 1;
                    }
                }
            }
        });
    }
    let c = io.counters();
    assert_eq!(count, total, "received {count}/{total}, counters {c:?}");
    assert!(c.rearms >= 1, "expected an ENOBUFS re-arm, counters {c:?}");
}

/// `count` non-blocking loopback sockets, registered as keys 0.. in order.
fn registered_sockets<I: PacketIo>(io: &mut I, count: usize) -> Vec<UdpSocket> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    for (key, s) in sockets.iter().enumerate() {
        io.register(key as u32, s.as_raw_fd()).expect("register");
    }
    sockets
}

/// After a stall, datagrams for hundreds of sessions wait in the kernel (io_uring:
/// as deferred receives, of which the kernel runs only a chunk per enter). One wait and
/// one drain must hand over every one, before the core plays its due frames.
fn backlog_of_many_sockets_in_one_drain<I: PacketIo>(io: &mut I) {
    let sockets = registered_sockets(io, 400);
    io.wait(Some(Instant::now())).expect("submit");
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    for s in &sockets {
        client
            .send_to(b"frame", s.local_addr().expect("addr"))
            .expect("send");
    }
    io.wait(Some(Instant::now() + Duration::from_millis(200)))
        .expect("wait");
    let mut keys = std::collections::HashSet::new();
    io.drain(&mut |ev| {
        if let IoEvent::Datagram { key, .. } = ev {
            keys.insert(key);
        }
    });
    assert_eq!(
        keys.len(),
        sockets.len(),
        "{}: counters {:?}",
        io.name(),
        io.counters()
    );
}

#[test]
fn both_backends_hand_over_a_backlog_of_many_sockets_in_one_drain() {
    let wake = Wakeup::new().expect("eventfd");
    backlog_of_many_sockets_in_one_drain(&mut UringIo::new(wake.raw()).expect("io_uring"));
    backlog_of_many_sockets_in_one_drain(&mut MmsgIo::new(wake.raw()).expect("mmsg"));
}

/// io_uring reaps completions in batches and announces every datagram of a batch
/// (`IoEvent::Arriving`, with its first bytes) before delivering the first, so the core
/// can prefetch the sessions they are for. Every delivery has had its announcement, with
/// the same first bytes, and the announcements come as a run, not one per delivery.
#[test]
fn uring_announces_a_batch_of_datagrams_before_delivering_it() {
    let wake = Wakeup::new().expect("eventfd");
    let mut io = UringIo::new(wake.raw()).expect("io_uring");
    let sockets = registered_sockets(&mut io, 100);
    io.wait(Some(Instant::now())).expect("submit");
    let client = UdpSocket::bind("127.0.0.1:0").expect("client");
    for (key, s) in sockets.iter().enumerate() {
        // Longer than the head: the announcement carries only its first bytes.
        let payload = format!("datagram for socket {key:04} ...");
        client
            .send_to(payload.as_bytes(), s.local_addr().expect("addr"))
            .expect("send");
    }
    // (true, key, bytes): an announcement; (false, key, bytes): a delivery.
    let mut events: Vec<(bool, u32, Vec<u8>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while events.iter().filter(|e| !e.0).count() < sockets.len() && Instant::now() < deadline {
        io.wait(Some(Instant::now() + Duration::from_millis(50)))
            .expect("wait");
        io.drain(&mut |ev| match ev {
            IoEvent::Arriving { key, head } => events.push((true, key, head.to_vec())),
            IoEvent::Datagram { key, data, .. } => events.push((false, key, data.to_vec())),
            _ => {}
        });
    }
    let delivered: Vec<_> = events.iter().filter(|e| !e.0).collect();
    assert_eq!(delivered.len(), sockets.len(), "{:?}", io.counters());
    let announced = events.iter().filter(|e| e.0).count();
    assert_eq!(announced, delivered.len());
    let mut pending: std::collections::HashMap<u32, Vec<u8>> = Default::default();
    for (is_hint, key, bytes) in &events {
        if *is_hint {
            assert!(bytes.len() <= ARRIVING_HEAD);
            pending.insert(*key, bytes.clone());
        } else {
            let head = pending
                .remove(key)
                .unwrap_or_else(|| panic!("datagram for {key} delivered unannounced"));
            assert_eq!(head[..], bytes[..ARRIVING_HEAD], "key {key}");
        }
    }
    assert!(
        events.len() >= 2 && events[0].0 && events[1].0,
        "announcements interleaved with deliveries, not a batch first: {:?}",
        events
            .iter()
            .take(4)
            .map(|e| (e.0, e.1))
            .collect::<Vec<_>>()
    );
}
