//! Keys the gateway sends to the caller (RFC 4733), one after another, sans-IO.
//!
//! The media core sends one telephone-event at a time and refuses a key while the
//! previous one is still going out (its tone, then its repeated end packets). A
//! [`DtmfSequence`] hands the driver each key only once the previous one is done and the
//! gap the assistant asked for has passed. It never reads the clock: the driver passes
//! `now` and sleeps until [`DtmfSequence::poll_timeout`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Time the core may still be busy with a key after its nominal tone: the wait for the
/// first packet tick, the tone rounded up to whole packets, and the two repeats of the
/// end packet — within 120 ms for packet times up to 30 ms. A longer packet time needs
/// the assistant's interval to cover the rest.
pub const END_TAIL: Duration = Duration::from_millis(120);

/// One key to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfKey {
    /// '0'-'9', '*', '#', 'A'-'D'.
    pub digit: char,
    /// Tone length.
    pub duration: Duration,
}

/// Keys waiting to be sent, paced. See the module docs.
#[derive(Debug, Default)]
pub struct DtmfSequence {
    queue: VecDeque<(DtmfKey, Duration)>,
    /// When the next key may start (`None`: now).
    next_at: Option<Instant>,
}

impl DtmfSequence {
    /// Nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `digits` (after any still queued), each a tone of `duration` followed by
    /// `interval` of silence.
    pub fn push(&mut self, digits: &[char], duration: Duration, interval: Duration) {
        for &digit in digits {
            self.queue
                .push_back((DtmfKey { digit, duration }, interval));
        }
    }

    /// The key to send at `now`, if one is due; the next one becomes due after this
    /// one's tone, its end packets and the interval.
    pub fn poll_key(&mut self, now: Instant) -> Option<DtmfKey> {
        if self.next_at.is_some_and(|t| t > now) {
            return None;
        }
        let (key, interval) = self.queue.pop_front()?;
        self.next_at = Some(now + key.duration + interval.max(END_TAIL));
        Some(key)
    }

    /// When [`DtmfSequence::poll_key`] has a key again (`None`: nothing queued).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.queue.is_empty() {
            None
        } else {
            self.next_at
        }
    }

    /// Drops what is still queued (the call is ending).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TONE: Duration = Duration::from_millis(200);

    #[test]
    fn keys_go_out_one_at_a_time_after_tone_tail_and_interval() {
        let t0 = Instant::now();
        let mut s = DtmfSequence::new();
        s.push(&['1', '2', '3'], TONE, Duration::from_millis(300));
        assert_eq!(
            s.poll_key(t0),
            Some(DtmfKey {
                digit: '1',
                duration: TONE
            })
        );
        // The core refuses a key while the previous one is still being sent.
        assert_eq!(s.poll_key(t0), None);
        let due = s.poll_timeout().expect("more keys");
        assert_eq!(due - t0, TONE + Duration::from_millis(300));
        assert_eq!(s.poll_key(due - Duration::from_millis(1)), None);
        assert_eq!(s.poll_key(due).map(|k| k.digit), Some('2'));
        let due = s.poll_timeout().expect("one more");
        assert_eq!(s.poll_key(due).map(|k| k.digit), Some('3'));
        assert_eq!(s.poll_timeout(), None, "nothing left");
        assert_eq!(s.poll_key(due + Duration::from_secs(10)), None);
    }

    #[test]
    fn a_short_interval_still_waits_for_the_end_packets() {
        let t0 = Instant::now();
        let mut s = DtmfSequence::new();
        s.push(&['#', '5'], TONE, Duration::ZERO);
        assert!(s.poll_key(t0).is_some());
        assert_eq!(s.poll_timeout().map(|d| d - t0), Some(TONE + END_TAIL));
    }

    #[test]
    fn keys_pushed_while_sending_wait_their_turn() {
        let t0 = Instant::now();
        let mut s = DtmfSequence::new();
        s.push(&['1'], TONE, Duration::from_millis(100));
        assert!(s.poll_key(t0).is_some());
        s.push(&['9'], TONE, Duration::from_millis(100));
        assert_eq!(s.poll_key(t0 + Duration::from_millis(50)), None);
        let due = s.poll_timeout().expect("queued");
        assert_eq!(s.poll_key(due).map(|k| k.digit), Some('9'));
        s.clear();
        assert_eq!(s.poll_timeout(), None);
    }
}
