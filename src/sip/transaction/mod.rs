//! SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" state), sans-IO.
//!
//! Each transaction is a small state machine. The owner feeds it what arrived (a
//! retransmitted request, an ACK, a response) and the responses it wants sent, and asks
//! it when its next timer is due (`poll_timeout`). When that instant passes the owner
//! calls `handle_timeout(now)`, which returns one [`TxAction`]: bytes to retransmit, a
//! timeout to report to the transaction user, or termination. No clock is read here and
//! no socket is touched, so every timer is testable in virtual time.
//!
//! Messages are carried as [`Bytes`] already serialised by the caller: a transaction
//! only needs to resend them verbatim.

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;
mod table;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use table::{MergeKey, TransactionKey, TransactionTable, MAGIC_COOKIE};

use std::time::{Duration, Instant};

use bytes::Bytes;

/// The RFC 3261 timer base values (§17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J and L.
    pub fn sixty_four_t1(&self) -> Duration {
        self.t1 * 64
    }
}

/// Whether the transport retransmits for us (TCP, TLS) or not (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP: the transaction retransmits.
    Unreliable,
    /// TCP/TLS: no retransmission, and the wait timers (I, J, K, D) are zero.
    Reliable,
}

impl Reliability {
    /// True for UDP.
    pub fn is_unreliable(self) -> bool {
        matches!(self, Reliability::Unreliable)
    }
}

/// What a fired timer asks the owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a retransmission or a timeout must be acted on"]
pub enum TxAction {
    /// Nothing to do (a timer that is no longer relevant).
    None,
    /// Send these bytes again to the transaction's peer.
    Retransmit(Bytes),
    /// The transaction gave up: no response (Timer B/F) or no ACK (Timer H / L for a
    /// 2xx). The transaction is terminated after this.
    TimedOut,
    /// The transaction ended normally and can be removed.
    Terminated,
}

/// Whether a message that reached a transaction goes up to the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Delivery {
    /// Pass the message up.
    Deliver,
    /// Absorbed as a retransmission; optionally resend this.
    Absorb(Option<Bytes>),
}

/// Doubles `d`, capped at `cap` (the T2 rule).
fn backoff(d: Duration, cap: Option<Duration>) -> Duration {
    let next = d * 2;
    match cap {
        Some(c) if next > c => c,
        _ => next,
    }
}

/// The earliest of a set of optional instants.
fn earliest(items: &[Option<Instant>]) -> Option<Instant> {
    items.iter().flatten().min().copied()
}
