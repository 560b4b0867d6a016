//! Digest nonce state for the UAS (RFC 3261 §22.4, RFC 7616 §3.3, RFC 8760): nonces
//! that expire, and a nonce-count that must rise on every use so a captured request
//! cannot be replayed. Sans-IO: the caller passes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngCore;

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// We never issued it (or forgot it long ago): challenge again.
    #[error("unknown nonce")]
    Unknown,
    /// It expired: challenge again with `stale=true` (the credentials were good).
    #[error("stale nonce")]
    Stale,
    /// The nonce-count did not rise: a replayed or duplicated request.
    #[error("nonce-count {nc} not above {last}")]
    Replayed {
        /// The count presented.
        nc: u32,
        /// The highest count accepted so far.
        last: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct NonceEntry {
    issued: Instant,
    last_nc: u32,
}

/// The nonces this UAS has issued.
#[derive(Debug)]
pub struct NonceStore {
    lifetime: Duration,
    capacity: usize,
    entries: HashMap<String, NonceEntry>,
}

impl NonceStore {
    /// A store whose nonces live `lifetime` and which holds at most `capacity` of them
    /// (the oldest are forgotten first when full).
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        Self {
            lifetime,
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// Issues a fresh nonce (128 random bits, hex).
    pub fn issue(&mut self, now: Instant) -> String {
        if self.entries.len() >= self.capacity {
            self.purge(now);
        }
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.issued)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let nonce = hex::encode(raw);
        self.entries.insert(
            nonce.clone(),
            NonceEntry {
                issued: now,
                last_nc: 0,
            },
        );
        nonce
    }

    /// Accepts one use of `nonce` with nonce-count `nc`. Call it only after the digest
    /// response was verified, so a wrong password does not consume counts.
    pub fn accept(&mut self, nonce: &str, nc: u32, now: Instant) -> Result<(), NonceError> {
        let entry = self.entries.get_mut(nonce).ok_or(NonceError::Unknown)?;
        if now.saturating_duration_since(entry.issued) >= self.lifetime {
            return Err(NonceError::Stale);
        }
        if nc <= entry.last_nc {
            return Err(NonceError::Replayed {
                nc,
                last: entry.last_nc,
            });
        }
        entry.last_nc = nc;
        Ok(())
    }

    /// Forgets nonces older than twice the lifetime (expired ones are kept one more
    /// lifetime so they can be answered `stale=true`).
    pub fn purge(&mut self, now: Instant) {
        let keep = self.lifetime * 2;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.issued) < keep);
    }

    /// Number of nonces remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_count_must_rise_and_replay_is_refused() {
        let t0 = Instant::now();
        let mut s = NonceStore::new(Duration::from_secs(300), 10);
        let n = s.issue(t0);
        assert_eq!(n.len(), 32);
        assert_eq!(s.accept(&n, 1, t0), Ok(()));
        assert_eq!(
            s.accept(&n, 1, t0),
            Err(NonceError::Replayed { nc: 1, last: 1 })
        );
        assert_eq!(s.accept(&n, 3, t0), Ok(()));
        assert_eq!(
            s.accept(&n, 2, t0),
            Err(NonceError::Replayed { nc: 2, last: 3 })
        );
        assert_eq!(s.accept("00", 1, t0), Err(NonceError::Unknown));
    }

    #[test]
    fn nonces_expire_as_stale_then_are_forgotten() {
        let t0 = Instant::now();
        let mut s = NonceStore::new(Duration::from_secs(300), 10);
        let n = s.issue(t0);
        assert_eq!(s.accept(&n, 1, t0 + Duration::from_secs(299)), Ok(()));
        assert_eq!(
            s.accept(&n, 2, t0 + Duration::from_secs(300)),
            Err(NonceError::Stale)
        );
        s.purge(t0 + Duration::from_secs(600));
        assert_eq!(
            s.accept(&n, 3, t0 + Duration::from_secs(600)),
            Err(NonceError::Unknown)
        );
        assert!(s.is_empty());
    }

    #[test]
    fn capacity_bounds_memory_and_nonces_are_distinct() {
        let t0 = Instant::now();
        let mut s = NonceStore::new(Duration::from_secs(300), 3);
        let first = s.issue(t0);
        let mut all = vec![first.clone()];
        for i in 1..10u64 {
            all.push(s.issue(t0 + Duration::from_millis(i)));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.accept(&first, 1, t0), Err(NonceError::Unknown));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10);
    }
}
