//! Replay window and rollover-counter estimation (RFC 3711 §3.3.1, §3.3.2).

use super::error::{ReplayKind, SrtpError};

/// Size of the SRTP and SRTCP replay windows, in packets.
pub const REPLAY_WINDOW: u64 = 128;

/// A sliding replay window over packet indices (48-bit SRTP index or 31-bit SRTCP
/// index). The highest accepted index also carries the ROC and `s_l` of RFC 3711.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplayWindow {
    /// Highest index accepted so far (valid once `started`).
    top: u64,
    /// Bit k set: index `top - k` was accepted.
    bits: u128,
    started: bool,
}

impl ReplayWindow {
    /// The highest accepted index, if any.
    pub(crate) fn highest(&self) -> Option<u64> {
        self.started.then_some(self.top)
    }

    /// Estimates the 48-bit SRTP index of a packet with sequence number `seq`
    /// (RFC 3711 Appendix A). Before the first packet the ROC is 0.
    pub(crate) fn estimate_rtp_index(&self, seq: u16) -> Result<u64, SrtpError> {
        if !self.started {
            return Ok(u64::from(seq));
        }
        let roc = (self.top >> 16) as i64;
        let s_l = i64::from(self.top as u16);
        let s = i64::from(seq);
        let v = if s_l < 32768 {
            if s - s_l > 32768 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 32768 > s {
            roc + 1
        } else {
            roc
        };
        if v < 0 {
            return Err(SrtpError::Replay {
                index: u64::from(seq),
                kind: ReplayKind::TooOld,
            });
        }
        if v > i64::from(u32::MAX) {
            return Err(SrtpError::KeyLifetimeExhausted);
        }
        Ok(((v as u64) << 16) | u64::from(seq))
    }

    /// Checks `index` against the window without changing it.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if !self.started || index > self.top {
            return Ok(());
        }
        let delta = self.top - index;
        let kind = if delta >= REPLAY_WINDOW {
            ReplayKind::TooOld
        } else if (self.bits >> delta) & 1 == 1 {
            ReplayKind::Duplicate
        } else {
            return Ok(());
        };
        Err(SrtpError::Replay { index, kind })
    }

    /// Records `index` as accepted (call only after `check` passed and the packet
    /// authenticated).
    pub(crate) fn commit(&mut self, index: u64) {
        if !self.started {
            self.started = true;
            self.top = index;
            self.bits = 1;
        } else if index > self.top {
            let shift = index - self.top;
            self.bits = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.top = index;
        } else {
            let delta = self.top - index;
            if delta < REPLAY_WINDOW {
                self.bits |= 1u128 << delta;
            }
        }
    }

    /// Starts the window at a known index (e.g. a ROC signalled out of band).
    pub(crate) fn start_at(&mut self, index: u64) {
        self.started = true;
        self.top = index;
        self.bits = 0;
    }
}
