//! SIP transports: UDP, TCP and TLS on tokio, with stream framing and response routing.
//!
//! Every transport hands what it receives to the gateway's core task as [`Inbound`]
//! over one bounded channel; the core task owns all SIP state, so no locks are taken.

pub mod framing;
pub mod stream;
pub mod tls;
pub mod udp;
pub mod x509;

use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::sip::ua::{ConnId, Flow};

/// What a transport hands to the core task.
#[derive(Debug)]
pub enum Inbound {
    /// A whole message (datagram or framed stream message).
    Message {
        /// Where it came from.
        flow: Flow,
        /// The bytes.
        bytes: Bytes,
    },
    /// A stream connection opened; send on it through `writer`.
    Opened {
        /// The connection.
        conn: ConnId,
        /// Its write queue.
        writer: mpsc::Sender<Bytes>,
    },
    /// A stream connection closed.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A stream message that could not be framed: answer `status` if the head reads as
    /// a request, then the connection closes.
    Unframeable {
        /// Where it came from.
        flow: Flow,
        /// What was buffered.
        head: Bytes,
        /// 400, 413 or 513.
        status: u16,
    },
}

/// Counters of faults and drops at the transport level.
#[derive(Debug, Default)]
pub struct TransportCounters {
    /// Datagrams or stream buffers over the size limit.
    pub oversize: AtomicU64,
    /// CRLF keep-alives received.
    pub keepalives: AtomicU64,
    /// Stream framing faults (connection closed).
    pub framing_errors: AtomicU64,
    /// Messages that did not parse (dropped).
    pub unparseable: AtomicU64,
    /// Requests answered statelessly by the parser-level checks (400, 416, 420, 505...).
    pub rejected: AtomicU64,
    /// Datagrams dropped because the core's queue was full.
    pub queue_full: AtomicU64,
    /// Send failures.
    pub send_errors: AtomicU64,
    /// Stream connections closed on accept because `MAX_CONNECTIONS` were open.
    pub connections_refused: AtomicU64,
    /// Responses dropped (did not parse or failed checks).
    pub dropped_responses: AtomicU64,
}
