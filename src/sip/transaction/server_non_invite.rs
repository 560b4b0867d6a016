//! Non-INVITE server transaction (RFC 3261 §17.2.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{earliest, Delivery, Reliability, Timers, TxAction};

/// Where a non-INVITE server transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; absorbing retransmissions (Timer J).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliability: Reliability,
    timers: Timers,
    last_response: Option<Bytes>,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    /// A transaction for a request that has just arrived.
    pub fn new(reliability: Reliability, timers: Timers) -> Self {
        Self {
            state: ServerNonInviteState::Trying,
            reliability,
            timers,
            last_response: None,
            timer_j: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The TU sends a response; returns the bytes to transmit, or `None` after a final.
    #[must_use]
    pub fn send_response(&mut self, status: u16, bytes: Bytes, now: Instant) -> Option<Bytes> {
        match self.state {
            ServerNonInviteState::Trying | ServerNonInviteState::Proceeding => {}
            _ => return None,
        }
        self.last_response = Some(bytes.clone());
        if status < 200 {
            self.state = ServerNonInviteState::Proceeding;
        } else {
            self.state = ServerNonInviteState::Completed;
            let wait = if self.reliability.is_unreliable() {
                self.timers.sixty_four_t1()
            } else {
                Duration::ZERO
            };
            self.timer_j = Some(now + wait);
        }
        Some(bytes)
    }

    /// The request arrived again: absorbed, with the last response resent if any.
    pub fn on_retransmitted_request(&self) -> Delivery {
        match self.state {
            ServerNonInviteState::Trying | ServerNonInviteState::Terminated => {
                Delivery::Absorb(None)
            }
            _ => Delivery::Absorb(self.last_response.clone()),
        }
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_j])
    }

    /// Fires Timer J if due.
    pub fn handle_timeout(&mut self, now: Instant) -> TxAction {
        if self.timer_j.is_some_and(|j| j <= now) {
            self.timer_j = None;
            self.state = ServerNonInviteState::Terminated;
            return TxAction::Terminated;
        }
        TxAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_j_is_64_t1_over_udp_and_zero_over_tcp() {
        let t0 = Instant::now();
        let mut udp = ServerNonInvite::new(Reliability::Unreliable, Timers::default());
        assert_eq!(udp.on_retransmitted_request(), Delivery::Absorb(None));
        let _ = udp.send_response(200, Bytes::from_static(b"200"), t0);
        assert_eq!(
            udp.on_retransmitted_request(),
            Delivery::Absorb(Some(Bytes::from_static(b"200")))
        );
        assert_eq!(udp.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(
            udp.handle_timeout(t0 + Duration::from_secs(31)),
            TxAction::None
        );
        assert_eq!(
            udp.handle_timeout(t0 + Duration::from_secs(32)),
            TxAction::Terminated
        );
        assert_eq!(udp.state(), ServerNonInviteState::Terminated);

        let mut tcp = ServerNonInvite::new(Reliability::Reliable, Timers::default());
        let _ = tcp.send_response(100, Bytes::from_static(b"100"), t0);
        assert_eq!(tcp.state(), ServerNonInviteState::Proceeding);
        assert_eq!(tcp.poll_timeout(), None);
        let _ = tcp.send_response(481, Bytes::from_static(b"481"), t0);
        assert_eq!(tcp.poll_timeout(), Some(t0));
        assert!(tcp
            .send_response(200, Bytes::from_static(b"200"), t0)
            .is_none());
    }
}
