//! Adaptive jitter buffer for one RTP stream.
//!
//! Packets go in by extended sequence number ([`JitterBuffer::insert`]); the media
//! session takes one packet out per packet duration ([`JitterBuffer::pop`]). The buffer
//! reorders, drops late and duplicate packets, and keeps a target depth derived from the
//! measured interarrival jitter (RFC 3550 A.8 estimator, in ms): `ptime + 4·J`, at least
//! [`JitterConfig::min_delay_ms`], raised by one packet whenever a packet arrives too late,
//! and lowered again after a quiet period. A clean path starts at
//! [`JitterConfig::initial_delay_ms`] (40 ms). When the buffer stays deeper than the
//! target (sender clock faster than ours, or a burst has passed) it discards one packet;
//! when it runs dry it conceals and waits (sender clock slower), which adds one packet of
//! delay. A single missing packet with later packets present is concealed (decoder PLC);
//! a run of losses is concealed once and then played as silence.
//!
//! Storage is a ring of `capacity` slots over one flat byte buffer allocated in `new`;
//! nothing allocates afterwards.

use std::time::Instant;

/// Jitter buffer parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the stream.
    pub clock_rate: u32,
    /// Nominal packet duration in ms.
    pub ptime_ms: u16,
    /// Slots (packets) the ring holds; rounded up to a power of two.
    pub capacity: usize,
    /// Largest payload stored; larger payloads are refused.
    pub max_payload: usize,
    /// Smallest target delay.
    pub min_delay_ms: u32,
    /// Target delay before any jitter has been measured.
    pub initial_delay_ms: u32,
    /// Largest target delay.
    pub max_delay_ms: u32,
}

impl JitterConfig {
    /// Defaults for a stream: 40 ms initial/min delay, 400 ms max, 32 slots, 512-byte payloads.
    pub fn new(clock_rate: u32, ptime_ms: u16) -> Self {
        Self {
            clock_rate,
            ptime_ms: ptime_ms.max(1),
            capacity: 32,
            max_payload: 512,
            min_delay_ms: 40,
            initial_delay_ms: 40,
            max_delay_ms: 400,
        }
    }
}

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored for playout.
    Stored,
    /// Its playout time has passed; dropped.
    Late,
    /// Already stored or played; dropped.
    Duplicate,
    /// Payload larger than [`JitterConfig::max_payload`]; dropped.
    TooLarge,
    /// So far ahead that older packets were skipped to make room (stream jump).
    Resynced,
}

/// One playout step.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Nothing to play yet (prebuffering, or no stream).
    Empty,
    /// The next packet.
    Packet {
        /// Extended sequence number.
        seq: u64,
        /// RTP timestamp.
        timestamp: u32,
        /// Marker bit.
        marker: bool,
        /// Payload bytes.
        payload: &'a [u8],
    },
    /// A packet is missing (lost, or the buffer ran dry): conceal it with the decoder.
    Conceal,
    /// Within a run of losses after the first: play silence.
    Silence,
}

/// Counters kept by the jitter buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Packets stored.
    pub stored: u64,
    /// Packets played out.
    pub played: u64,
    /// Packets declared lost (later packets had arrived when their turn came).
    pub lost: u64,
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Duplicate packets.
    pub duplicate: u64,
    /// Concealment frames produced (losses and underruns).
    pub concealed: u64,
    /// Packets discarded to shrink the delay (drift or a burst that passed).
    pub discarded: u64,
    /// Pops that found the buffer dry while playing.
    pub underruns: u64,
    /// Oversized payloads refused.
    pub too_large: u64,
    /// Current target delay in ms.
    pub target_delay_ms: u32,
    /// Packets buffered now (holes included).
    pub depth: u32,
    /// Measured interarrival jitter in ms (A.8 estimator).
    pub jitter_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Empty,
    Stored,
    Played,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    seq: u64,
    timestamp: u32,
    len: u16,
    marker: bool,
    state: SlotState,
}

/// Pops in a row the buffer must be too deep before it discards a packet.
const SHRINK_AFTER_POPS: u32 = 25;
/// Pops without a late packet before the late-arrival boost decays by one packet.
const BOOST_DECAY_POPS: u32 = 250;
/// Late packets within this many pops of the previous one belong to the same event.
const LATE_EVENT_POPS: u32 = 10;
/// Consecutive underrun pops after which the buffer re-prebuffers.
const REBUFFER_AFTER: u32 = 5;

const EMPTY_SLOT: Slot = Slot {
    seq: 0,
    timestamp: 0,
    len: 0,
    marker: false,
    state: SlotState::Empty,
};

/// Adaptive jitter buffer; see the module docs.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    mask: usize,
    slots: Vec<Slot>,
    data: Vec<u8>,
    /// Next sequence number to play; `None` before the first packet.
    next: Option<u64>,
    highest: u64,
    playing: bool,
    first_arrival: Option<Instant>,
    ever_played: bool,
    epoch: Option<Instant>,
    transit_ms: Option<f64>,
    jitter_ms: f64,
    boost: u32,
    pops_since_late: u32,
    too_deep_pops: u32,
    loss_run: u32,
    dry_run: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// Allocates the buffer, its pages written now (the first write to a page faults;
    /// better on the thread making the session than on its media core).
    pub fn new(cfg: JitterConfig) -> Self {
        let cap = cfg.capacity.max(4).next_power_of_two();
        let slots = vec![EMPTY_SLOT; cap];
        let data = crate::prefault::zeroed(cap * cfg.max_payload);
        Self::with_storage(
            JitterConfig {
                capacity: cap,
                ..cfg
            },
            slots,
            data,
        )
    }

    /// A buffer in its initial state over `slots` (all empty, a power of two) and their
    /// payload storage.
    fn with_storage(cfg: JitterConfig, slots: Vec<Slot>, data: Vec<u8>) -> Self {
        let cap = slots.len();
        let mut jb = Self {
            cfg,
            mask: cap - 1,
            slots,
            data,
            next: None,
            highest: 0,
            playing: false,
            first_arrival: None,
            ever_played: false,
            epoch: None,
            transit_ms: None,
            jitter_ms: 0.0,
            boost: 0,
            pops_since_late: LATE_EVENT_POPS,
            too_deep_pops: 0,
            loss_run: 0,
            dry_run: 0,
            stats: JitterStats::default(),
        };
        jb.stats.target_delay_ms = jb.target_frames() * u32::from(jb.cfg.ptime_ms);
        jb
    }

    /// The configuration (capacity rounded up).
    pub fn config(&self) -> &JitterConfig {
        &self.cfg
    }

    /// Forgets all packets and measurements (new SSRC or a sequence resync). Keeps its
    /// storage: a media core allocates nothing here.
    pub fn reset(&mut self) {
        let stats = self.stats;
        let mut slots = std::mem::take(&mut self.slots);
        slots.fill(EMPTY_SLOT);
        let data = std::mem::take(&mut self.data);
        *self = Self::with_storage(self.cfg, slots, data);
        self.stats = JitterStats { depth: 0, ..stats };
    }

    fn ptime(&self) -> u32 {
        u32::from(self.cfg.ptime_ms)
    }

    fn target_frames(&self) -> u32 {
        let p = f64::from(self.ptime());
        let measured = if self.transit_ms.is_some() {
            p + 4.0 * self.jitter_ms
        } else {
            f64::from(self.cfg.initial_delay_ms)
        };
        let ms = measured.max(f64::from(self.cfg.min_delay_ms));
        let frames = (ms / p).ceil() as u32 + self.boost;
        let max = (self.cfg.max_delay_ms / self.ptime()).clamp(1, self.cfg.capacity as u32 - 2);
        frames.clamp(1, max)
    }

    fn depth(&self) -> u32 {
        match self.next {
            Some(n) if self.highest >= n => (self.highest - n + 1).min(u64::from(u32::MAX)) as u32,
            _ => 0,
        }
    }

    /// Stores a packet. `seq` is the extended sequence number (see
    /// [`crate::rtp::ReceiveStats`]); `now` is the arrival time.
    pub fn insert(
        &mut self,
        now: Instant,
        seq: u64,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> InsertOutcome {
        if payload.len() > self.cfg.max_payload {
            self.stats.too_large += 1;
            return InsertOutcome::TooLarge;
        }
        let idx = (seq as usize) & self.mask;
        let slot = self.slots[idx];
        if slot.seq == seq && slot.state != SlotState::Empty {
            self.stats.duplicate += 1;
            return InsertOutcome::Duplicate;
        }
        let mut outcome = InsertOutcome::Stored;
        match self.next {
            None => {
                self.next = Some(seq);
                self.highest = seq;
            }
            Some(next) if seq < next => {
                if self.ever_played {
                    self.stats.late += 1;
                    // One boost per late event: a burst of late packets counts once.
                    if self.pops_since_late >= LATE_EVENT_POPS {
                        self.boost = (self.boost + 1).min(self.cfg.capacity as u32 / 2);
                    }
                    self.pops_since_late = 0;
                    return InsertOutcome::Late;
                }
                // Reordered ahead of the stream start: start earlier, if it still fits.
                if self.highest - seq >= self.cfg.capacity as u64 {
                    self.stats.late += 1;
                    return InsertOutcome::Late;
                }
                self.next = Some(seq);
            }
            Some(next) => {
                let cap = self.cfg.capacity as u64;
                if seq >= next + cap {
                    // Too far ahead: skip forward so that `seq` fits.
                    let new_next = seq + 1 - cap / 2;
                    for s in next..new_next.min(next + cap) {
                        let sl = &mut self.slots[(s as usize) & self.mask];
                        if sl.seq == s && sl.state == SlotState::Stored {
                            self.stats.discarded += 1;
                        } else {
                            self.stats.lost += 1;
                        }
                        sl.state = SlotState::Empty;
                    }
                    self.next = Some(new_next);
                    outcome = InsertOutcome::Resynced;
                }
                self.highest = self.highest.max(seq);
            }
        }
        if self.first_arrival.is_none() {
            self.first_arrival = Some(now);
        }
        self.measure_jitter(now, timestamp);
        let at = idx * self.cfg.max_payload;
        self.data[at..at + payload.len()].copy_from_slice(payload);
        self.slots[idx] = Slot {
            seq,
            timestamp,
            len: payload.len() as u16,
            marker,
            state: SlotState::Stored,
        };
        self.stats.stored += 1;
        outcome
    }

    fn measure_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival_ms = now.duration_since(epoch).as_secs_f64() * 1000.0;
        let ts_ms = f64::from(timestamp) * 1000.0 / f64::from(self.cfg.clock_rate.max(1));
        let transit = arrival_ms - ts_ms;
        if let Some(prev) = self.transit_ms {
            let mut d = (transit - prev).abs();
            // Timestamp wrap: ignore the one sample that straddles it.
            if d > 60_000.0 {
                d = self.jitter_ms;
            }
            self.jitter_ms += (d - self.jitter_ms) / 16.0;
        }
        self.transit_ms = Some(transit);
    }

    /// Takes the next playout step; call once per packet duration.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        let out = self.step(now);
        self.stats.depth = self.depth();
        self.stats.target_delay_ms = self.target_frames() * self.ptime();
        self.stats.jitter_ms = self.jitter_ms.round() as u32;
        match out {
            Some((idx, seq)) => {
                let s = self.slots[idx];
                let at = idx * self.cfg.max_payload;
                Playout::Packet {
                    seq,
                    timestamp: s.timestamp,
                    marker: s.marker,
                    payload: &self.data[at..at + usize::from(s.len)],
                }
            }
            None if self.loss_run > 1 || self.dry_run > 1 => Playout::Silence,
            None if self.loss_run == 1 || self.dry_run == 1 => Playout::Conceal,
            None => Playout::Empty,
        }
    }

    fn step(&mut self, now: Instant) -> Option<(usize, u64)> {
        let next = self.next?;
        let target = self.target_frames();
        self.pops_since_late = self.pops_since_late.saturating_add(1);
        if self.pops_since_late >= BOOST_DECAY_POPS && self.boost > 0 {
            self.boost -= 1;
            self.pops_since_late = 0;
        }
        if !self.playing {
            let waited = self
                .first_arrival
                .map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64);
            let depth = self.depth();
            if !(depth > 0 && (depth >= target || waited >= u64::from(target * self.ptime()))) {
                return None;
            }
            self.playing = true;
            self.ever_played = true;
            self.dry_run = 0;
        }
        // Too deep for a while: discard the oldest packet to shrink the delay.
        if self.depth() > target + 1 {
            self.too_deep_pops += 1;
            if self.too_deep_pops >= SHRINK_AFTER_POPS {
                self.too_deep_pops = 0;
                let idx = (next as usize) & self.mask;
                if self.slots[idx].seq == next && self.slots[idx].state == SlotState::Stored {
                    self.slots[idx].state = SlotState::Played;
                    self.stats.discarded += 1;
                } else {
                    self.stats.lost += 1;
                }
                self.next = Some(next + 1);
            }
        } else {
            self.too_deep_pops = 0;
        }
        let next = self.next.unwrap_or(next);
        let idx = (next as usize) & self.mask;
        let slot = self.slots[idx];
        if slot.seq == next && slot.state == SlotState::Stored {
            self.slots[idx].state = SlotState::Played;
            self.next = Some(next + 1);
            self.stats.played += 1;
            self.loss_run = 0;
            self.dry_run = 0;
            return Some((idx, next));
        }
        if self.highest > next {
            // Later packets are here: this one is lost.
            self.slots[idx].state = SlotState::Empty;
            self.next = Some(next + 1);
            self.stats.lost += 1;
            self.loss_run += 1;
            self.dry_run = 0;
            if self.loss_run == 1 {
                self.stats.concealed += 1;
            }
            return None;
        }
        // Dry: conceal and wait for the packet (adds one packet of delay).
        self.stats.underruns += 1;
        self.dry_run += 1;
        if self.dry_run == 1 {
            self.stats.concealed += 1;
        }
        if self.dry_run >= REBUFFER_AFTER {
            self.playing = false;
            self.first_arrival = None;
            self.loss_run = 0;
            self.dry_run = 0;
        }
        None
    }

    /// The payload of the packet that plays next, if it is already here. Right after a
    /// [`Playout::Conceal`] for a loss this is the packet after the lost one, whose Opus
    /// in-band FEC can rebuild it.
    pub fn peek_next(&self) -> Option<&[u8]> {
        let next = self.next?;
        let idx = (next as usize) & self.mask;
        let s = self.slots[idx];
        if s.seq != next || s.state != SlotState::Stored {
            return None;
        }
        let at = idx * self.cfg.max_payload;
        self.data.get(at..at + usize::from(s.len))
    }

    /// The storage of the next packet to play (whether or not it has arrived), at most
    /// its first 192 bytes: for a worker to prefetch before the playout reads it.
    pub fn next_storage(&self) -> &[u8] {
        let Some(next) = self.next else {
            return &[];
        };
        let at = ((next as usize) & self.mask) * self.cfg.max_payload;
        let len = self.cfg.max_payload.min(192);
        self.data.get(at..at + len).unwrap_or(&[])
    }

    /// Starts fetching what [`JitterBuffer::insert`] of the packet with (16-bit) sequence
    /// number `seq` will touch: this buffer's own fields, the packet's slot and where its
    /// payload goes (at most 192 bytes). Reads only this struct's fields.
    pub(crate) fn prefetch_insert(&self, seq: u16) {
        crate::prefetch::value(self);
        // The capacity is a power of two: up to 65,536 slots the extended number's slot
        // is the 16-bit one's (a larger buffer gets a wrong line, which is only a hint).
        let idx = usize::from(seq) & self.mask;
        if let Some(slot) = self.slots.get(idx..=idx) {
            crate::prefetch::lines(slot);
        }
        let at = idx * self.cfg.max_payload;
        let len = self.cfg.max_payload.min(192);
        if let Some(dest) = self.data.get(at..at + len) {
            crate::prefetch::lines(dest);
        }
    }

    /// Counters and current figures.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
