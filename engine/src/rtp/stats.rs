//! Receive statistics for one RTP source: RFC 3550 appendix A.1 (sequence number
//! validation and extension), A.3 (loss figures for reception reports) and A.8
//! (interarrival jitter).

const RTP_SEQ_MOD: u64 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;

/// What [`ReceiveStats::update_seq`] concluded about a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// Accepted; its extended (wrap-counted) sequence number.
    Valid {
        /// Sequence number with the wrap count in the upper bits.
        extended: u64,
    },
    /// The source is still on probation (not enough sequential packets yet).
    Probation,
    /// A large jump; accepted only if the next packet continues from it (A.1).
    Invalid,
    /// Accepted after a jump was confirmed: the sequence restarted, and extended
    /// numbers start again from this packet (anything keyed on them must be reset).
    Restarted {
        /// Sequence number with the (reset) wrap count in the upper bits.
        extended: u64,
    },
}

/// Figures for an RTCP reception report block (RFC 3550 6.4.1, A.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportCounts {
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (may be negative with duplicates), clamped to 24 bits.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
}

/// Per-source receive state (RFC 3550 A.1 `source` plus the A.8 jitter estimator).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    max_seq: u16,
    cycles: u64,
    base_seq: u64,
    bad_seq: u64,
    probation: u32,
    min_sequential: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: Option<u32>,
    jitter_q4: u32,
}

impl ReceiveStats {
    /// Starts tracking a source whose first packet carried `seq`. `min_sequential` is the
    /// number of in-order packets required before the source is valid (A.1 uses 2; 1
    /// accepts the first packet).
    pub fn new(seq: u16, min_sequential: u32) -> Self {
        let mut s = Self {
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: u64::from(seq),
            bad_seq: RTP_SEQ_MOD + 1,
            probation: min_sequential.max(1),
            min_sequential: min_sequential.max(1),
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
        };
        s.max_seq = seq.wrapping_sub(1);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u64::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Updates the sequence state with a received packet's sequence number (A.1).
    pub fn update_seq(&mut self, seq: u16) -> SeqOutcome {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqOutcome::Valid {
                        extended: self.extended(seq),
                    };
                }
            } else {
                self.probation = self.min_sequential - 1;
                self.max_seq = seq;
            }
            return SeqOutcome::Probation;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if u64::from(udelta) <= RTP_SEQ_MOD - u64::from(MAX_MISORDER) {
            if u64::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted its sequence.
                self.init_seq(seq);
                self.received += 1;
                return SeqOutcome::Restarted {
                    extended: self.extended(seq),
                };
            } else {
                self.bad_seq = (u64::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqOutcome::Invalid;
            }
        }
        // else: duplicate or reordered packet
        self.received += 1;
        SeqOutcome::Valid {
            extended: self.extended(seq),
        }
    }

    fn extended(&self, seq: u16) -> u64 {
        let max = self.cycles + u64::from(self.max_seq);
        let diff = i64::from(seq.wrapping_sub(self.max_seq) as i16);
        max.saturating_add_signed(diff)
    }

    /// Updates the interarrival jitter (A.8). `arrival` is the arrival time in RTP
    /// timestamp units (any fixed origin), `timestamp` the packet's RTP timestamp.
    pub fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = transit.wrapping_sub(prev) as i32;
            let d = d.unsigned_abs();
            // jitter += (|D| - jitter) / 16, kept scaled by 16 as in A.8.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Packets received (valid ones, duplicates included, as in A.1).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Extended highest sequence number received.
    pub fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    /// Packets expected since the base sequence number.
    pub fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(self.base_seq)
    }

    /// Cumulative lost packets (expected − received); negative with duplicates.
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Figures for the next reception report block; resets the interval counters (A.3).
    pub fn report(&mut self) -> ReportCounts {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportCounts {
            fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: self.extended_max() as u32,
            jitter: self.jitter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(o: SeqOutcome) -> u64 {
        match o {
            SeqOutcome::Valid { extended } => extended,
            other => panic!("not valid: {other:?}"),
        }
    }

    #[test]
    fn wraps_and_reorders() {
        let mut s = ReceiveStats::new(65534, 1);
        assert_eq!(ext(s.update_seq(65534)), 65534);
        assert_eq!(ext(s.update_seq(65535)), 65535);
        assert_eq!(ext(s.update_seq(1)), 65537); // 0 lost
        assert_eq!(ext(s.update_seq(0)), 65536); // late, across the wrap
        assert_eq!(ext(s.update_seq(2)), 65538);
        assert_eq!(s.expected(), 5);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.update_seq(40000), SeqOutcome::Invalid);
        // Resync after two sequential packets.
        assert_eq!(
            s.update_seq(40001),
            SeqOutcome::Restarted { extended: 40001 }
        );
        assert_eq!(ext(s.update_seq(40002)), 40002);
        assert_eq!(s.expected(), 2);
    }

    #[test]
    fn probation_of_two() {
        let mut s = ReceiveStats::new(100, 2);
        assert_eq!(s.update_seq(100), SeqOutcome::Probation);
        assert_eq!(ext(s.update_seq(101)), 101);
        assert_eq!(s.received(), 1);
    }

    #[test]
    fn loss_fraction() {
        let mut s = ReceiveStats::new(0, 1);
        for seq in 0..100u16 {
            if seq % 4 != 3 {
                s.update_seq(seq);
            }
        }
        let r = s.report();
        assert_eq!(r.cumulative_lost, 24); // 3,7,...,95 lost; 99 is the last and lost too but not yet expected
        assert_eq!(r.extended_highest_seq, 98);
        assert_eq!(r.fraction_lost, ((24u32 << 8) / 99) as u8);
        let r2 = s.report();
        assert_eq!(r2.fraction_lost, 0);
    }

    #[test]
    fn jitter_follows_a8() {
        let mut s = ReceiveStats::new(0, 1);
        // Packets every 160 ticks, arrivals alternate +0/+80 → |D| = 80 each time.
        let mut j = 0f64;
        for i in 0..200u32 {
            let arrival = i * 160 + if i % 2 == 1 { 80 } else { 0 };
            s.update_jitter(arrival, i * 160);
            if i > 0 {
                j += (80.0 - j) / 16.0;
            }
        }
        assert!(
            (f64::from(s.jitter()) - j).abs() <= 1.0,
            "{} vs {j}",
            s.jitter()
        );
        let mut clean = ReceiveStats::new(0, 1);
        for i in 0..50u32 {
            clean.update_jitter(1000 + i * 160, i * 160);
        }
        assert_eq!(clean.jitter(), 0);
    }
}
