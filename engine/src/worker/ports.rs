//! `PortAllocator`: even RTP ports from a configured range, handed out least recently
//! released first so a port just closed is the last one reused.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

/// Even RTP ports (RTCP on port + 1) from a range. Pure bookkeeping: binding is the
/// caller's job; a port that fails to bind is put back at the end with [`Self::release`].
#[derive(Debug)]
pub struct PortAllocator {
    /// Free even ports, least recently released first.
    free: VecDeque<u16>,
    /// `in_use[i]` for port `first + 2 * i`.
    in_use: Vec<bool>,
    first: u16,
}

impl PortAllocator {
    /// Builds the pool of even ports `p` with `p` and `p + 1` both inside `range`.
    /// An empty pool is allowed (every `allocate` then returns `None`).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let start = *range.start();
        let end = *range.end();
        let first = start.saturating_add(start & 1);
        let mut free = VecDeque::new();
        let mut port = u32::from(first);
        while port < u32::from(end) && start <= end {
            free.push_back(port as u16);
            port += 2;
        }
        let in_use = vec![false; free.len()];
        Self {
            free,
            in_use,
            first,
        }
    }

    /// Number of pairs in the pool.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    /// Number of pairs free now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes the least recently released even port, or `None` if all are in use.
    pub fn allocate(&mut self) -> Option<u16> {
        let port = self.free.pop_front()?;
        if let Some(slot) = self.index(port).and_then(|i| self.in_use.get_mut(i)) {
            *slot = true;
        }
        Some(port)
    }

    /// Returns `port` to the end of the free list. Returns false (and does nothing) if
    /// it is not an allocated port of this pool, so a double release cannot hand the
    /// same port out twice.
    pub fn release(&mut self, port: u16) -> bool {
        match self.index(port).and_then(|i| self.in_use.get_mut(i)) {
            Some(slot) if *slot => {
                *slot = false;
                self.free.push_back(port);
                true
            }
            _ => false,
        }
    }

    fn index(&self, port: u16) -> Option<usize> {
        if port < self.first || (port - self.first) % 2 != 0 {
            return None;
        }
        let i = usize::from((port - self.first) / 2);
        (i < self.in_use.len()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::PortAllocator;

    #[test]
    fn only_even_pairs_inside_the_range() {
        let mut ports = PortAllocator::new(30001..=30010);
        assert_eq!(
            ports.capacity(),
            4,
            "30002,30004,30006,30008 (30010 has no +1)"
        );
        let mut got = Vec::new();
        while let Some(p) = ports.allocate() {
            got.push(p);
        }
        assert_eq!(got, vec![30002, 30004, 30006, 30008]);
        assert!(got.iter().all(|p| p % 2 == 0 && *p < 30010));
    }

    #[test]
    fn exhaustion_then_release_reuses_least_recently_released() {
        let mut ports = PortAllocator::new(40000..=40007);
        let a = ports.allocate();
        let b = ports.allocate();
        let c = ports.allocate();
        let d = ports.allocate();
        assert_eq!(ports.allocate(), None);
        assert!(ports.release(c.unwrap_or(0)));
        assert!(ports.release(a.unwrap_or(0)));
        assert_eq!(ports.allocate(), c);
        assert_eq!(ports.allocate(), a);
        assert_eq!(ports.allocate(), None);
        assert!(b.is_some() && d.is_some());
    }

    #[test]
    fn double_and_foreign_release_are_refused() {
        let mut ports = PortAllocator::new(50000..=50003);
        let p = ports.allocate();
        assert_eq!(p, Some(50000));
        assert!(ports.release(50000));
        assert!(!ports.release(50000), "double release");
        assert!(!ports.release(50001), "odd port");
        assert!(!ports.release(50004), "outside");
        assert!(!ports.release(49998), "below");
        assert_eq!(ports.available(), 2);
        assert_eq!(ports.allocate(), Some(50002));
        assert_eq!(ports.allocate(), Some(50000));
        assert_eq!(ports.allocate(), None);
    }

    #[test]
    fn degenerate_ranges_are_empty_not_panics() {
        assert_eq!(
            PortAllocator::new(std::ops::RangeInclusive::new(5, 4)).capacity(),
            0
        );
        assert_eq!(PortAllocator::new(7..=7).capacity(), 0);
        assert_eq!(PortAllocator::new(65534..=65535).capacity(), 1);
        assert_eq!(PortAllocator::new(65535..=65535).capacity(), 0);
        assert_eq!(PortAllocator::new(0..=1).capacity(), 1);
    }
}
