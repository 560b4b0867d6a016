//! Non-INVITE client transaction (RFC 3261 §17.1.2): BYE, REFER, INFO, OPTIONS,
//! UPDATE and NOTIFY that we send.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{backoff, earliest, Delivery, Reliability, Timers, TxAction};

/// Where a non-INVITE client transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, no response yet (Timers E, F).
    Trying,
    /// A provisional response arrived (E continues at T2).
    Proceeding,
    /// A final response arrived; absorbing its retransmissions (Timer K).
    Completed,
    /// Done.
    Terminated,
}

/// A non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    reliability: Reliability,
    timers: Timers,
    request: Bytes,
    timer_e: Option<Instant>,
    e_interval: Duration,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    /// Starts the transaction; the caller sends `request` now.
    pub fn new(request: Bytes, reliability: Reliability, timers: Timers, now: Instant) -> Self {
        Self {
            state: ClientNonInviteState::Trying,
            reliability,
            timers,
            request,
            timer_e: reliability.is_unreliable().then(|| now + timers.t1),
            e_interval: timers.t1,
            timer_f: Some(now + timers.sixty_four_t1()),
            timer_k: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// A response matched this transaction.
    pub fn on_response(&mut self, status: u16, now: Instant) -> Delivery {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                if status < 200 {
                    self.state = ClientNonInviteState::Proceeding;
                } else {
                    self.state = ClientNonInviteState::Completed;
                    self.timer_e = None;
                    self.timer_f = None;
                    let wait = if self.reliability.is_unreliable() {
                        self.timers.t4
                    } else {
                        Duration::ZERO
                    };
                    self.timer_k = Some(now + wait);
                }
                Delivery::Deliver
            }
            _ => Delivery::Absorb(None),
        }
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.timer_e, self.timer_f, self.timer_k])
    }

    /// Fires the earliest due timer.
    pub fn handle_timeout(&mut self, now: Instant) -> TxAction {
        if self.timer_f.is_some_and(|f| f <= now) {
            self.timer_f = None;
            self.timer_e = None;
            self.state = ClientNonInviteState::Terminated;
            return TxAction::TimedOut;
        }
        if self.timer_k.is_some_and(|k| k <= now) {
            self.timer_k = None;
            self.state = ClientNonInviteState::Terminated;
            return TxAction::Terminated;
        }
        if let Some(e) = self.timer_e.filter(|e| *e <= now) {
            self.e_interval = if self.state == ClientNonInviteState::Proceeding {
                self.timers.t2
            } else {
                backoff(self.e_interval, Some(self.timers.t2))
            };
            self.timer_e = Some(e + self.e_interval);
            return TxAction::Retransmit(self.request.clone());
        }
        TxAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(tx: &mut ClientNonInvite, t0: Instant, until: Duration) -> Vec<(u128, TxAction)> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let Some(t) = tx.poll_timeout() else { break };
            if t > t0 + until {
                break;
            }
            out.push(((t - t0).as_millis(), tx.handle_timeout(t)));
        }
        out
    }

    #[test]
    fn timer_e_backs_off_to_t2_and_timer_f_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(
            Bytes::from_static(b"BYE"),
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        let acts = drive(&mut tx, t0, Duration::from_secs(40));
        let times: Vec<u128> = acts.iter().map(|(t, _)| *t).collect();
        assert_eq!(&times[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert_eq!(acts.last().unwrap(), &(32000, TxAction::TimedOut));
        assert_eq!(tx.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn provisional_moves_e_to_t2_and_final_starts_k() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(
            Bytes::from_static(b"REFER"),
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_millis(500)),
            TxAction::Retransmit(Bytes::from_static(b"REFER"))
        );
        assert_eq!(
            tx.on_response(100, t0 + Duration::from_millis(600)),
            Delivery::Deliver
        );
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_millis(1500)),
            TxAction::Retransmit(Bytes::from_static(b"REFER"))
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(5500)));
        assert_eq!(
            tx.on_response(202, t0 + Duration::from_secs(2)),
            Delivery::Deliver
        );
        assert_eq!(
            tx.on_response(202, t0 + Duration::from_secs(3)),
            Delivery::Absorb(None)
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(7)));
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_secs(7)),
            TxAction::Terminated
        );
    }

    #[test]
    fn reliable_transport_has_no_e_and_zero_k() {
        let t0 = Instant::now();
        let mut tx = ClientNonInvite::new(
            Bytes::from_static(b"BYE"),
            Reliability::Reliable,
            Timers::default(),
            t0,
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(tx.on_response(200, t0), Delivery::Deliver);
        assert_eq!(tx.poll_timeout(), Some(t0));
        assert_eq!(tx.handle_timeout(t0), TxAction::Terminated);
    }
}
