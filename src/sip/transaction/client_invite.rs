//! INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2): the re-INVITEs we send
//! (hold before a transfer, session refresh).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{backoff, earliest, Delivery, Reliability, Timers, TxAction};

/// Where an INVITE client transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent (Timers A, B).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A failure arrived and was ACKed; absorbing its retransmissions (Timer D).
    Completed,
    /// A 2xx arrived; absorbing its retransmissions (Timer M). The TU sends the ACK.
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientInvite {
    state: ClientInviteState,
    reliability: Reliability,
    timers: Timers,
    request: Bytes,
    ack: Option<Bytes>,
    timer_a: Option<Instant>,
    a_interval: Duration,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
}

impl ClientInvite {
    /// Starts the transaction; the caller sends `request` now.
    pub fn new(request: Bytes, reliability: Reliability, timers: Timers, now: Instant) -> Self {
        Self {
            state: ClientInviteState::Calling,
            reliability,
            timers,
            request,
            ack: None,
            timer_a: reliability.is_unreliable().then(|| now + timers.t1),
            a_interval: timers.t1,
            timer_b: Some(now + timers.sixty_four_t1()),
            timer_d: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// A response matched this transaction. For a 3xx–6xx, `ack` is the ACK the
    /// transaction sends (same branch, §17.1.1.3): it is returned in
    /// `Delivery::Absorb(Some(ack))` for retransmitted failures, and the first time the
    /// caller sends it itself after `Deliver`.
    pub fn on_response(
        &mut self,
        status: u16,
        ack: impl FnOnce() -> Bytes,
        now: Instant,
    ) -> Delivery {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.timer_a = None;
                match status {
                    100..=199 => self.state = ClientInviteState::Proceeding,
                    200..=299 => {
                        self.state = ClientInviteState::Accepted;
                        self.timer_b = None;
                        // Timer M (RFC 6026): absorb 2xx retransmissions for 64·T1.
                        self.timer_d = Some(now + self.timers.sixty_four_t1());
                    }
                    _ => {
                        self.state = ClientInviteState::Completed;
                        self.timer_b = None;
                        self.ack = Some(ack());
                        let wait = if self.reliability.is_unreliable() {
                            Duration::from_secs(32)
                        } else {
                            Duration::ZERO
                        };
                        self.timer_d = Some(now + wait);
                    }
                }
                Delivery::Deliver
            }
            ClientInviteState::Completed => Delivery::Absorb(self.ack.clone()),
            // 2xx retransmissions go to the TU, which re-sends its ACK.
            ClientInviteState::Accepted if (200..300).contains(&status) => Delivery::Deliver,
            _ => Delivery::Absorb(None),
        }
    }

    /// The ACK for a failure, once known.
    pub fn failure_ack(&self) -> Option<&Bytes> {
        self.ack.as_ref()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_a, self.timer_b, self.timer_d])
    }

    /// Fires the earliest due timer.
    pub fn handle_timeout(&mut self, now: Instant) -> TxAction {
        if self.timer_b.is_some_and(|b| b <= now) {
            self.timer_b = None;
            self.timer_a = None;
            self.state = ClientInviteState::Terminated;
            return TxAction::TimedOut;
        }
        if self.timer_d.is_some_and(|d| d <= now) {
            self.timer_d = None;
            self.state = ClientInviteState::Terminated;
            return TxAction::Terminated;
        }
        if let Some(a) = self.timer_a.filter(|a| *a <= now) {
            self.a_interval = backoff(self.a_interval, None);
            self.timer_a = Some(a + self.a_interval);
            return TxAction::Retransmit(self.request.clone());
        }
        TxAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_a_doubles_without_cap_until_timer_b() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(
            Bytes::from_static(b"INVITE"),
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        let mut times = Vec::new();
        let mut last = TxAction::None;
        for _ in 0..100 {
            let Some(t) = tx.poll_timeout() else { break };
            last = tx.handle_timeout(t);
            times.push((t - t0).as_millis());
        }
        assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500, 32000]);
        assert_eq!(last, TxAction::TimedOut);
    }

    #[test]
    fn failure_is_acked_and_retransmitted_failure_reacked() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(
            Bytes::from_static(b"INVITE"),
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        let d = tx.on_response(
            491,
            || Bytes::from_static(b"ACK"),
            t0 + Duration::from_millis(100),
        );
        assert_eq!(d, Delivery::Deliver);
        assert_eq!(tx.failure_ack(), Some(&Bytes::from_static(b"ACK")));
        assert_eq!(
            tx.on_response(491, Bytes::new, t0 + Duration::from_millis(200)),
            Delivery::Absorb(Some(Bytes::from_static(b"ACK")))
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(32100)));
    }

    #[test]
    fn lost_ack_for_2xx_gets_2xx_retransmissions_delivered() {
        let t0 = Instant::now();
        let mut tx = ClientInvite::new(
            Bytes::from_static(b"INVITE"),
            Reliability::Reliable,
            Timers::default(),
            t0,
        );
        assert_eq!(tx.on_response(200, Bytes::new, t0), Delivery::Deliver);
        assert_eq!(tx.state(), ClientInviteState::Accepted);
        // The peer did not get our ACK and resends the 200: the TU must ACK again.
        assert_eq!(tx.on_response(200, Bytes::new, t0), Delivery::Deliver);
        assert_eq!(tx.on_response(180, Bytes::new, t0), Delivery::Absorb(None));
    }
}
