//! `TimerWheel`: each session slot's next deadline, bucketed by timer tick.
//!
//! One entry per slot at most (setting a slot's deadline moves its entry), so there are
//! no stale entries to skip, and setting, cancelling and expiring an entry are O(1):
//! entries sit in intrusive doubly-linked lists, one per bucket, with a bitmap of the
//! buckets in use to skip empty ones. Bucket `t % BUCKETS` holds the entries whose tick
//! `t` (time since the wheel's origin in `tick`s, rounded down) lies in
//! `[cursor, cursor + BUCKETS)`; later deadlines wait in an unordered overflow list and
//! move into the wheel as the cursor approaches them. Each entry keeps its exact
//! deadline: [`TimerWheel::expire`] fires an entry only once `now` has reached it, and
//! [`TimerWheel::next_deadline`] is the exact earliest deadline, so the wheel only
//! replaces the ordering structure; when timers run is the core's decision.

use std::time::{Duration, Instant};

/// Buckets in the wheel (a power of two, a multiple of 64): 1,024 × 0.25 ms = 256 ms,
/// more than any packet time, so in practice every session's next deadline is in the
/// wheel and the overflow list is empty.
const BUCKETS: usize = 1024;
const WORDS: usize = BUCKETS / 64;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    tick: u64,
    prev: u32,
    next: u32,
    place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Unset,
    Wheel,
    Overflow,
}

/// Deadlines of slots `0..n`; see the module docs.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    origin: Instant,
    tick_ns: u64,
    /// Every entry in the wheel has `tick >= cursor` and `tick < cursor + BUCKETS`
    /// (deadlines already past when set are put in the cursor's bucket).
    cursor: u64,
    heads: Vec<u32>,
    occupied: [u64; WORDS],
    in_wheel: usize,
    overflow: u32,
    /// Earliest deadline in the overflow list.
    overflow_min: Option<(Instant, u64)>,
    entries: Vec<Entry>,
}

impl TimerWheel {
    /// An empty wheel whose ticks count from `origin`.
    pub(crate) fn new(origin: Instant, tick: Duration) -> Self {
        Self {
            origin,
            tick_ns: (tick.as_nanos() as u64).max(1),
            cursor: 0,
            heads: vec![NONE; BUCKETS],
            occupied: [0; WORDS],
            in_wheel: 0,
            overflow: NONE,
            overflow_min: None,
            entries: Vec::new(),
        }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.origin).as_nanos();
        (ns / u128::from(self.tick_ns)).min(u128::from(u64::MAX / 2)) as u64
    }

    /// Sets (or moves) `slot`'s deadline.
    pub(crate) fn set(&mut self, slot: u32, at: Instant) {
        let i = slot as usize;
        if i >= self.entries.len() {
            self.entries.resize(
                i + 1,
                Entry {
                    at,
                    tick: 0,
                    prev: NONE,
                    next: NONE,
                    place: Place::Unset,
                },
            );
        }
        self.unlink(slot);
        if self.in_wheel == 0 && self.overflow == NONE {
            // Nothing pending: start the wheel at this deadline, so that a core idle for
            // long does not send it to the overflow list.
            self.cursor = self.cursor.max(self.tick_of(at));
        }
        self.insert(slot, at);
    }

    /// Removes `slot`'s deadline, if it has one.
    pub(crate) fn cancel(&mut self, slot: u32) {
        if (slot as usize) < self.entries.len() {
            self.unlink(slot);
        }
    }

    fn insert(&mut self, slot: u32, at: Instant) {
        let tick = self.tick_of(at).max(self.cursor);
        let far = tick - self.cursor >= BUCKETS as u64;
        let head = if far {
            self.overflow_min = match self.overflow_min {
                Some((m, t)) if m <= at => Some((m, t)),
                _ => Some((at, tick)),
            };
            std::mem::replace(&mut self.overflow, slot)
        } else {
            let b = (tick as usize) & (BUCKETS - 1);
            self.occupied[b / 64] |= 1 << (b % 64);
            self.in_wheel += 1;
            std::mem::replace(&mut self.heads[b], slot)
        };
        if head != NONE {
            self.entries[head as usize].prev = slot;
        }
        self.entries[slot as usize] = Entry {
            at,
            tick,
            prev: NONE,
            next: head,
            place: if far { Place::Overflow } else { Place::Wheel },
        };
    }

    fn unlink(&mut self, slot: u32) {
        let e = self.entries[slot as usize];
        if e.place == Place::Unset {
            return;
        }
        if e.next != NONE {
            self.entries[e.next as usize].prev = e.prev;
        }
        if e.prev != NONE {
            self.entries[e.prev as usize].next = e.next;
        } else if e.place == Place::Wheel {
            let b = (e.tick as usize) & (BUCKETS - 1);
            self.heads[b] = e.next;
            if e.next == NONE {
                self.occupied[b / 64] &= !(1 << (b % 64));
            }
        } else {
            self.overflow = e.next;
        }
        self.entries[slot as usize].place = Place::Unset;
        match e.place {
            Place::Wheel => self.in_wheel -= 1,
            Place::Overflow => {
                if self.overflow_min.is_some_and(|(m, _)| m == e.at) {
                    self.overflow_min = self.scan_overflow_min();
                }
            }
            Place::Unset => {}
        }
    }

    fn scan_overflow_min(&self) -> Option<(Instant, u64)> {
        let mut min: Option<(Instant, u64)> = None;
        let mut s = self.overflow;
        while s != NONE {
            let e = &self.entries[s as usize];
            if min.is_none_or(|(m, _)| e.at < m) {
                min = Some((e.at, e.tick));
            }
            s = e.next;
        }
        min
    }

    /// Moves overflow entries the wheel now covers into their buckets.
    fn pull_overflow(&mut self) {
        let horizon = self.cursor + BUCKETS as u64;
        if self.overflow_min.is_none_or(|(_, t)| t >= horizon) {
            return;
        }
        let mut s = std::mem::replace(&mut self.overflow, NONE);
        self.overflow_min = None;
        while s != NONE {
            let e = self.entries[s as usize];
            self.entries[s as usize].place = Place::Unset;
            self.insert(s, e.at);
            s = e.next;
        }
    }

    /// The first bucket in use at or after the cursor, as a tick.
    fn first_tick(&self) -> Option<u64> {
        if self.in_wheel == 0 {
            return None;
        }
        let start = (self.cursor as usize) & (BUCKETS - 1);
        let (w0, bit0) = (start / 64, start % 64);
        // The cursor's word from its bit on, the other words in order, then the
        // cursor's word below its bit (the wheel's far end).
        let first = self.occupied[w0] & (!0u64 << bit0);
        let found = if first != 0 {
            Some(w0 * 64 + first.trailing_zeros() as usize)
        } else {
            (1..WORDS)
                .map(|k| (w0 + k) % WORDS)
                .find(|&w| self.occupied[w] != 0)
                .map(|w| w * 64 + self.occupied[w].trailing_zeros() as usize)
                .or_else(|| {
                    let low = self.occupied[w0] & !(!0u64 << bit0);
                    (low != 0).then(|| w0 * 64 + low.trailing_zeros() as usize)
                })
        };
        found.map(|b| self.cursor + ((b + BUCKETS - start) & (BUCKETS - 1)) as u64)
    }

    /// The earliest deadline set, exactly.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let in_wheel = self.first_tick().map(|t| {
            let mut s = self.heads[(t as usize) & (BUCKETS - 1)];
            let mut min = self.entries[s as usize].at;
            while s != NONE {
                let e = &self.entries[s as usize];
                min = min.min(e.at);
                s = e.next;
            }
            min
        });
        match (in_wheel, self.overflow_min) {
            (Some(a), Some((b, _))) => Some(a.min(b)),
            (a, b) => a.or(b.map(|(m, _)| m)),
        }
    }

    /// Removes every deadline at or before `now` and appends its slot to `due`
    /// (in tick order; in no particular order within a tick).
    pub(crate) fn expire(&mut self, now: Instant, due: &mut Vec<u32>) {
        if self.overflow_min.is_some_and(|(m, _)| m <= now) {
            // Far deadlines a core slept through: they never entered the wheel.
            let mut s = self.overflow;
            while s != NONE {
                let e = self.entries[s as usize];
                if e.at <= now {
                    self.unlink(s);
                    due.push(s);
                }
                s = e.next;
            }
        }
        let now_tick = self.tick_of(now);
        while let Some(t) = self.first_tick() {
            // The cursor's bucket may hold deadlines from before its tick (set when
            // already past, or before a set moved the idle wheel's cursor on).
            if t > now_tick && t > self.cursor {
                break;
            }
            let b = (t as usize) & (BUCKETS - 1);
            let mut s = self.heads[b];
            while s != NONE {
                let e = self.entries[s as usize];
                if e.at <= now {
                    self.unlink(s);
                    due.push(s);
                }
                s = e.next;
            }
            if t >= now_tick || self.heads[b] != NONE {
                // Entries of the current tick not yet due stay (and so does the cursor).
                break;
            }
            self.cursor = t + 1;
        }
        if now_tick > self.cursor {
            // Everything before now's tick has fired (or the wheel is empty up to it).
            self.cursor = now_tick.min(self.first_tick().unwrap_or(now_tick));
        }
        // What is left in the overflow is after `now`, so never behind the cursor.
        self.pull_overflow();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_micros(250);

    /// xorshift64*: deterministic pseudo-random steps.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn sorted(mut v: Vec<u32>) -> Vec<u32> {
        v.sort_unstable();
        v
    }

    #[test]
    fn fires_exactly_at_the_deadline_not_at_its_tick() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, TICK);
        let at = t0 + Duration::from_micros(1_100); // tick 4, 0.1 ms into it
        w.set(3, at);
        assert_eq!(w.next_deadline(), Some(at));
        let mut due = Vec::new();
        w.expire(t0 + Duration::from_micros(1_050), &mut due);
        assert!(due.is_empty(), "same tick, before the deadline");
        assert_eq!(w.next_deadline(), Some(at));
        w.expire(at, &mut due);
        assert_eq!(due, [3]);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn moving_a_deadline_leaves_no_stale_entry() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, TICK);
        w.set(0, t0 + Duration::from_millis(5));
        w.set(0, t0 + Duration::from_millis(20));
        w.set(1, t0 + Duration::from_millis(10));
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_millis(10)));
        let mut due = Vec::new();
        w.expire(t0 + Duration::from_millis(15), &mut due);
        assert_eq!(due, [1], "slot 0's old 5 ms deadline is gone");
        w.cancel(0);
        assert_eq!(w.next_deadline(), None);
        w.expire(t0 + Duration::from_secs(1), &mut due);
        assert_eq!(due, [1]);
    }

    #[test]
    fn past_deadline_fires_at_once() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, TICK);
        let mut due = Vec::new();
        w.set(0, t0 + Duration::from_millis(100));
        w.expire(t0 + Duration::from_millis(100), &mut due);
        assert_eq!(due, [0]);
        due.clear();
        // Behind the cursor (and before the origin): due now.
        w.set(1, t0 + Duration::from_millis(50));
        w.set(2, t0);
        assert_eq!(w.next_deadline(), Some(t0));
        w.expire(t0 + Duration::from_millis(100), &mut due);
        assert_eq!(sorted(due), [1, 2]);
    }

    #[test]
    fn far_deadlines_wait_in_overflow_and_fire_on_time() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, TICK);
        let far = t0 + Duration::from_secs(5);
        let near = t0 + Duration::from_millis(20);
        w.set(0, far);
        w.set(1, near);
        assert_eq!(w.next_deadline(), Some(near));
        let mut due = Vec::new();
        w.expire(near, &mut due);
        assert_eq!(due, [1]);
        assert_eq!(w.next_deadline(), Some(far), "the overflow's deadline");
        // Walk time forward in 20 ms steps, as a loaded core would.
        let mut now = near;
        while now < far - Duration::from_millis(20) {
            now += Duration::from_millis(20);
            w.expire(now, &mut due);
            assert_eq!(due, [1]);
            assert_eq!(w.next_deadline(), Some(far));
        }
        w.expire(far, &mut due);
        assert_eq!(due, [1, 0]);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn idle_core_jumping_far_ahead_fires_overflow() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, TICK);
        w.set(0, t0 + Duration::from_millis(10));
        w.set(1, t0 + Duration::from_secs(30));
        let mut due = Vec::new();
        // One wake-up, long after both (the core slept through).
        w.expire(t0 + Duration::from_secs(31), &mut due);
        assert_eq!(sorted(due), [0, 1]);
        assert_eq!(w.next_deadline(), None);
    }

    /// Random sets, moves, cancels and expiries over a virtual minute (the wheel wraps
    /// around ~230 times), checked against a plain list of deadlines: the same slots fire
    /// at every step and the next deadline is always the exact minimum.
    #[test]
    fn matches_a_reference_model_through_wrap_around() {
        for seed in [1u64, 7, 0x9e37_79b9_7f4a_7c15] {
            let t0 = Instant::now();
            let mut rng = Rng(seed);
            let mut w = TimerWheel::new(t0, TICK);
            let mut model: Vec<Option<Instant>> = vec![None; 64];
            let mut now = t0;
            let mut due = Vec::new();
            let end = t0 + Duration::from_secs(60);
            while now < end {
                for _ in 0..rng.below(6) {
                    let slot = rng.below(64) as u32;
                    match rng.below(10) {
                        0 => {
                            w.cancel(slot);
                            model[slot as usize] = None;
                        }
                        k => {
                            // Mostly within a packet time or two; some far (RTCP, RTP
                            // timeout), some already past, some off the tick grid.
                            let us = match k {
                                1 => rng.below(10_000_000),
                                2 => rng.below(3_000),
                                _ => rng.below(60_000),
                            };
                            let at = if k == 2 {
                                now.checked_sub(Duration::from_micros(us)).unwrap_or(now)
                            } else {
                                now + Duration::from_micros(us)
                            };
                            w.set(slot, at);
                            model[slot as usize] = Some(at);
                        }
                    }
                }
                let expect_next = model.iter().flatten().min().copied();
                assert_eq!(w.next_deadline(), expect_next, "seed {seed}");
                // The core wakes at the next deadline or earlier (I/O), sometimes late.
                let step = match rng.below(8) {
                    0 => Duration::from_millis(rng.below(2_000)),
                    1 => Duration::ZERO,
                    _ => Duration::from_micros(rng.below(1_000)),
                };
                now = match (rng.below(2), expect_next) {
                    (0, Some(n)) if n > now => n,
                    _ => now + step,
                };
                due.clear();
                w.expire(now, &mut due);
                let mut expect: Vec<u32> = Vec::new();
                for (i, m) in model.iter_mut().enumerate() {
                    if m.is_some_and(|at| at <= now) {
                        *m = None;
                        expect.push(i as u32);
                    }
                }
                assert_eq!(sorted(due.clone()), expect, "seed {seed}");
            }
        }
    }
}
