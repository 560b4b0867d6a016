//! The kernel's receive time of each datagram (`SO_TIMESTAMPNS`), as an [`Instant`].
//!
//! A core reads its datagrams in batches: up to the batch window (0.5 ms) after they
//! arrived, later after a long turn or a stall of its thread. Stamped with the time the
//! core read them, packets that arrived a few milliseconds apart look simultaneous: the
//! interarrival jitter (RFC 3550 A.8, reported in RTCP) and the jitter buffer's depth
//! measure the core's own scheduling rather than the network, and every session whose
//! first packet came in during one long turn starts its playout clock at the same
//! instant — sessions that stay in phase for the whole call and make every later turn
//! long (seen in the bench: 1,400 sessions in four clusters, turns of 4–5 ms). With
//! the kernel's receive time, each packet carries the instant it reached the socket.
//!
//! The kernel stamps with the realtime clock; [`RxClock`] converts with one reading of
//! both clocks per drain. An age outside `[0, MAX_AGE]` (the realtime clock was stepped
//! in between) is not trusted: the drain time stands in.

use std::time::{Duration, Instant};

/// Control-message room per received datagram: one `SCM_TIMESTAMPNS` (a 16-byte
/// cmsghdr + a 16-byte timespec) with room to spare for one more small message.
pub(crate) const CONTROL_LEN: usize = 64;

/// Oldest receive time trusted (a datagram queued longer is stamped with the drain time).
const MAX_AGE: Duration = Duration::from_secs(2);

/// Asks the kernel to stamp each datagram received on `fd` with its receive time.
pub(crate) fn enable(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int for the length passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Both clocks read together, to turn realtime receive stamps into [`Instant`]s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RxClock {
    now: Instant,
    real_ns: u64,
}

impl RxClock {
    /// Reads both clocks now.
    pub(crate) fn now() -> Self {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live timespec the call writes.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        Self {
            now: Instant::now(),
            real_ns: timespec_ns(ts.tv_sec, ts.tv_nsec),
        }
    }

    /// The receive time in a datagram's control messages, if it has one to trust.
    pub(crate) fn arrival(&self, control: &[u8]) -> Option<Instant> {
        let stamp = find_timestamp_ns(control)?;
        let age = Duration::from_nanos(self.real_ns.checked_sub(stamp)?);
        (age <= MAX_AGE).then(|| self.now.checked_sub(age))?
    }
}

fn timespec_ns(sec: i64, nsec: i64) -> u64 {
    u64::try_from(sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(nsec).unwrap_or(0))
}

/// Walks the control messages (`struct cmsghdr`: `size_t` length, `int` level, `int`
/// type, data aligned to `size_t`) for `SOL_SOCKET`/`SCM_TIMESTAMPNS`; returns its time
/// in ns. Malformed or truncated messages end the walk.
fn find_timestamp_ns(control: &[u8]) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    const HDR: usize = WORD + 8;
    let align = |n: usize| n.div_ceil(WORD) * WORD;
    let mut at = 0usize;
    while let Some(hdr) = control.get(at..at + HDR) {
        let len = usize::from_ne_bytes(hdr[..WORD].try_into().ok()?);
        let level = i32::from_ne_bytes(hdr[WORD..WORD + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(hdr[WORD + 4..WORD + 8].try_into().ok()?);
        if len < HDR {
            return None;
        }
        let data = control.get(at + align(HDR)..at + len)?;
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS && data.len() >= 16 {
            let sec = i64::from_ne_bytes(data[..8].try_into().ok()?);
            let nsec = i64::from_ne_bytes(data[8..16].try_into().ok()?);
            return Some(timespec_ns(sec, nsec));
        }
        at += align(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One control message as the kernel lays it out.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        const WORD: usize = std::mem::size_of::<usize>();
        let hdr = WORD + 8;
        let mut m = Vec::new();
        m.extend_from_slice(&(hdr + data.len()).to_ne_bytes());
        m.extend_from_slice(&level.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(data);
        while m.len() % WORD != 0 {
            m.push(0);
        }
        m
    }

    fn timespec(sec: i64, nsec: i64) -> Vec<u8> {
        [sec.to_ne_bytes(), nsec.to_ne_bytes()].concat()
    }

    #[test]
    fn a_receive_stamp_becomes_the_instant_it_was_taken() {
        let clock = RxClock {
            now: Instant::now(),
            real_ns: 1_700_000_000_500_000_000,
        };
        // Stamped 3.25 ms before the clocks were read, after another control message.
        let control = [
            cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes()),
            cmsg(
                libc::SOL_SOCKET,
                libc::SCM_TIMESTAMPNS,
                &timespec(1_700_000_000, 496_750_000),
            ),
        ]
        .concat();
        assert_eq!(
            clock.arrival(&control),
            Some(clock.now - Duration::from_micros(3_250))
        );
    }

    #[test]
    fn untrusted_or_malformed_stamps_give_none() {
        let clock = RxClock {
            now: Instant::now() + Duration::from_secs(10),
            real_ns: 1_700_000_000_000_000_000,
        };
        let stamp = |sec, nsec| {
            cmsg(
                libc::SOL_SOCKET,
                libc::SCM_TIMESTAMPNS,
                &timespec(sec, nsec),
            )
        };
        // From the future (the realtime clock stepped back), or older than MAX_AGE.
        assert_eq!(clock.arrival(&stamp(1_700_000_000, 1)), None);
        assert_eq!(clock.arrival(&stamp(1_699_999_997, 0)), None);
        // No stamp, a short message, a length that runs past the buffer, a zero length.
        assert_eq!(clock.arrival(&[]), None);
        assert_eq!(
            clock.arrival(&cmsg(libc::IPPROTO_IP, libc::IP_TTL, &[1, 0, 0, 0])),
            None
        );
        let mut short = stamp(1_699_999_999, 0);
        short.truncate(20);
        assert_eq!(clock.arrival(&short), None);
        let mut long = stamp(1_699_999_999, 0);
        long[..std::mem::size_of::<usize>()].copy_from_slice(&4096usize.to_ne_bytes());
        assert_eq!(clock.arrival(&long), None);
        let mut zero = stamp(1_699_999_999, 0);
        zero[..std::mem::size_of::<usize>()].copy_from_slice(&0usize.to_ne_bytes());
        assert_eq!(clock.arrival(&zero), None);
        // Within the window: trusted.
        assert_eq!(
            clock.arrival(&stamp(1_699_999_999, 0)),
            Some(clock.now - Duration::from_secs(1))
        );
    }
}
