//! INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{backoff, earliest, Delivery, Reliability, Timers, TxAction};

/// Where an INVITE server transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// Provisional responses only so far.
    Proceeding,
    /// A 3xx–6xx was sent; waiting for the ACK (Timers G, H).
    Completed,
    /// The ACK for the failure arrived; absorbing stray ACKs (Timer I).
    Confirmed,
    /// A 2xx was sent; retransmitting it until the dialog's ACK arrives (Timer G
    /// schedule), giving up after 64·T1 (Timer L / H).
    Accepted,
    /// Done.
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliability: Reliability,
    timers: Timers,
    last_response: Option<Bytes>,
    final_status: Option<u16>,
    acked: bool,
    /// Next retransmission of the final response (Timer G).
    timer_g: Option<Instant>,
    g_interval: Duration,
    /// Give up waiting for the ACK (Timer H for failures, Timer L for 2xx).
    timer_h: Option<Instant>,
    /// Leave Confirmed (Timer I).
    timer_i: Option<Instant>,
}

impl ServerInvite {
    /// A transaction for an INVITE that has just arrived.
    pub fn new(reliability: Reliability, timers: Timers) -> Self {
        Self {
            state: ServerInviteState::Proceeding,
            reliability,
            timers,
            last_response: None,
            final_status: None,
            acked: false,
            timer_g: None,
            g_interval: timers.t1,
            timer_h: None,
            timer_i: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The final status sent, if any.
    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// True once a 2xx was acknowledged (or a failure's ACK arrived).
    pub fn acked(&self) -> bool {
        self.acked
    }

    /// The TU sends a response. Returns the bytes to transmit now, or `None` when the
    /// response is not allowed in this state (a second final response).
    #[must_use]
    pub fn send_response(&mut self, status: u16, bytes: Bytes, now: Instant) -> Option<Bytes> {
        if self.state != ServerInviteState::Proceeding {
            return None;
        }
        self.last_response = Some(bytes.clone());
        match status {
            100..=199 => {}
            200..=299 => {
                self.state = ServerInviteState::Accepted;
                self.final_status = Some(status);
                self.g_interval = self.timers.t1;
                // 2xx retransmission is end to end (§13.3.1.4): only needed over UDP.
                self.timer_g = self
                    .reliability
                    .is_unreliable()
                    .then(|| now + self.g_interval);
                self.timer_h = Some(now + self.timers.sixty_four_t1());
            }
            _ => {
                self.state = ServerInviteState::Completed;
                self.final_status = Some(status);
                self.g_interval = self.timers.t1;
                self.timer_g = self
                    .reliability
                    .is_unreliable()
                    .then(|| now + self.g_interval);
                self.timer_h = Some(now + self.timers.sixty_four_t1());
            }
        }
        Some(bytes)
    }

    /// The INVITE arrived again (same branch). It is never passed up; the last
    /// response is resent, except after the 2xx was acknowledged.
    pub fn on_retransmitted_invite(&mut self) -> Delivery {
        match self.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => {
                Delivery::Absorb(self.last_response.clone())
            }
            ServerInviteState::Accepted if !self.acked => {
                Delivery::Absorb(self.last_response.clone())
            }
            _ => Delivery::Absorb(None),
        }
    }

    /// An ACK matched this transaction: for a failure, the ACK with the same branch; for
    /// a 2xx, the dialog's ACK (matched by the dialog layer on Call-ID, tags and CSeq).
    /// Returns `Deliver` the first time an ACK for a 2xx arrives (the dialog is
    /// confirmed), `Absorb(None)` otherwise.
    pub fn on_ack(&mut self, now: Instant) -> Delivery {
        match self.state {
            ServerInviteState::Completed => {
                self.state = ServerInviteState::Confirmed;
                self.acked = true;
                self.timer_g = None;
                self.timer_h = None;
                let wait = if self.reliability.is_unreliable() {
                    self.timers.t4
                } else {
                    Duration::ZERO
                };
                self.timer_i = Some(now + wait);
                Delivery::Absorb(None)
            }
            ServerInviteState::Accepted if !self.acked => {
                self.acked = true;
                self.timer_g = None;
                // Stay in Accepted until Timer L to absorb retransmitted INVITEs.
                Delivery::Deliver
            }
            _ => Delivery::Absorb(None),
        }
    }

    /// The TU gives up on the INVITE before a final response (e.g. transport error).
    pub fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.timer_g = None;
        self.timer_h = None;
        self.timer_i = None;
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_g, self.timer_h, self.timer_i])
    }

    /// Fires the earliest due timer, if it is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> TxAction {
        if let Some(h) = self.timer_h.filter(|h| *h <= now) {
            let _ = h;
            self.timer_h = None;
            self.timer_g = None;
            let was_acked = self.acked;
            self.state = ServerInviteState::Terminated;
            return if was_acked {
                TxAction::Terminated
            } else {
                TxAction::TimedOut
            };
        }
        if let Some(i) = self.timer_i.filter(|i| *i <= now) {
            let _ = i;
            self.timer_i = None;
            self.state = ServerInviteState::Terminated;
            return TxAction::Terminated;
        }
        if let Some(g) = self.timer_g.filter(|g| *g <= now) {
            self.g_interval = backoff(self.g_interval, Some(self.timers.t2));
            self.timer_g = Some(g + self.g_interval);
            return match &self.last_response {
                Some(b) => TxAction::Retransmit(b.clone()),
                None => TxAction::None,
            };
        }
        TxAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives timers up to `until`, collecting (offset ms, action).
    fn run(tx: &mut ServerInvite, t0: Instant, until: Duration) -> Vec<(u128, TxAction)> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let Some(t) = tx.poll_timeout() else { break };
            if t > t0 + until {
                break;
            }
            let a = tx.handle_timeout(t);
            out.push(((t - t0).as_millis(), a));
        }
        out
    }

    #[test]
    fn failure_is_retransmitted_on_timer_g_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(Reliability::Unreliable, Timers::default());
        let _ = tx.send_response(100, Bytes::from_static(b"100"), t0);
        assert!(tx
            .send_response(486, Bytes::from_static(b"486"), t0)
            .is_some());
        assert_eq!(tx.state(), ServerInviteState::Completed);
        let acts = run(&mut tx, t0, Duration::from_secs(60));
        let times: Vec<u128> = acts
            .iter()
            .filter(|(_, a)| matches!(a, TxAction::Retransmit(_)))
            .map(|(t, _)| *t)
            .collect();
        // G: 0.5, 1.5, 3.5, 7.5, 11.5, ... every 4 s until H at 32 s.
        assert_eq!(&times[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(*times.last().unwrap(), 31500);
        assert_eq!(acts.last().unwrap(), &(32000, TxAction::TimedOut));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn ack_for_failure_stops_g_and_timer_i_terminates() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(Reliability::Unreliable, Timers::default());
        let _ = tx.send_response(487, Bytes::from_static(b"487"), t0);
        assert_eq!(tx.on_ack(t0 + ms(700)), Delivery::Absorb(None));
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        let acts = run(&mut tx, t0, Duration::from_secs(60));
        assert_eq!(acts, vec![(5700, TxAction::Terminated)]);
    }

    #[test]
    fn reliable_transport_never_retransmits_and_timer_i_is_zero() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(Reliability::Reliable, Timers::default());
        let _ = tx.send_response(603, Bytes::from_static(b"603"), t0);
        let _ = tx.on_ack(t0 + ms(10));
        let acts = run(&mut tx, t0, Duration::from_secs(60));
        assert_eq!(acts, vec![(10, TxAction::Terminated)]);
    }

    #[test]
    fn lost_ack_for_2xx_retransmits_then_times_out() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(Reliability::Unreliable, Timers::default());
        let _ = tx.send_response(200, Bytes::from_static(b"200"), t0);
        assert_eq!(tx.state(), ServerInviteState::Accepted);
        let acts = run(&mut tx, t0, Duration::from_secs(60));
        let n = acts
            .iter()
            .filter(|(_, a)| matches!(a, TxAction::Retransmit(_)))
            .count();
        assert_eq!(n, 10, "0.5,1.5,3.5,7.5,11.5,...,31.5");
        assert_eq!(acts.last().unwrap(), &(32000, TxAction::TimedOut));
    }

    #[test]
    fn ack_for_2xx_confirms_once_and_stays_to_absorb() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(Reliability::Unreliable, Timers::default());
        let _ = tx.send_response(200, Bytes::from_static(b"200"), t0);
        // The 200 is lost: the INVITE is retransmitted and the 200 resent.
        assert_eq!(
            tx.on_retransmitted_invite(),
            Delivery::Absorb(Some(Bytes::from_static(b"200")))
        );
        assert_eq!(tx.on_ack(t0 + ms(600)), Delivery::Deliver);
        assert_eq!(tx.on_ack(t0 + ms(700)), Delivery::Absorb(None));
        assert_eq!(tx.on_retransmitted_invite(), Delivery::Absorb(None));
        let acts = run(&mut tx, t0, Duration::from_secs(60));
        assert_eq!(acts, vec![(32000, TxAction::Terminated)]);
    }

    #[test]
    fn retransmitted_invite_in_proceeding_resends_provisional() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(Reliability::Unreliable, Timers::default());
        assert_eq!(tx.on_retransmitted_invite(), Delivery::Absorb(None));
        let _ = tx.send_response(180, Bytes::from_static(b"180"), t0);
        assert_eq!(
            tx.on_retransmitted_invite(),
            Delivery::Absorb(Some(Bytes::from_static(b"180")))
        );
        assert_eq!(tx.poll_timeout(), None, "no timers while proceeding");
        assert!(tx
            .send_response(200, Bytes::from_static(b"200"), t0)
            .is_some());
        assert!(tx
            .send_response(500, Bytes::from_static(b"500"), t0)
            .is_none());
    }
}
