//! SIP over UDP: one socket, a receive task that hands datagrams to the gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Inbound, TransportCounters};
use crate::sip::ua::{Flow, Transport};

/// Largest datagram accepted; larger ones are dropped and counted.
pub const MAX_DATAGRAM: usize = 65_507;

/// Receives datagrams until the channel closes.
pub async fn receive_loop(
    socket: Arc<UdpSocket>,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<TransportCounters>,
    max_message: usize,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable from an earlier send shows up here on Linux.
                tracing::debug!("udp recv: {e}");
                continue;
            }
        };
        if n > max_message {
            counters.oversize.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if buf[..n].iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            counters.keepalives.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let msg = Inbound::Message {
            flow: Flow {
                transport: Transport::Udp,
                remote: from,
                conn: None,
            },
            bytes: Bytes::copy_from_slice(&buf[..n]),
        };
        if tx.try_send(msg).is_err() {
            // The core is behind: drop rather than block the socket (UDP peers retransmit).
            counters.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends a datagram without waiting; failures are counted.
pub fn send(socket: &UdpSocket, to: SocketAddr, bytes: &[u8], errors: &AtomicU64) {
    if let Err(e) = socket.try_send_to(bytes, to) {
        errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("udp send to {to}: {e}");
    }
}
