//! Cache prefetch hints for the media core: a turn's due sessions, and the sessions a
//! batch of received datagrams is for, are cold; asking for their lines together lets
//! the misses overlap instead of stalling one by one.

/// Hints the CPU to bring every cache line of `data` into L1. No effect on other
/// architectures; never faults.
pub(crate) fn lines<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = data.as_ptr().cast::<i8>();
        // From the start of the first line to the end of the last (an unaligned slice
        // spans one line more than its length suggests).
        let end = (base as usize % 64) + std::mem::size_of_val(data);
        let first_line = base.wrapping_sub(base as usize % 64);
        let mut off = 0;
        while off < end {
            // SAFETY: a prefetch is a hint: it never faults and reads nothing into the
            // program, whatever the address. SSE is baseline on x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first_line.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// [`lines`] of one value (every line it spans; no load of the value itself).
pub(crate) fn value<T>(v: &T) {
    lines(std::slice::from_ref(v));
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_slice_is_fine_empty_unaligned_or_large() {
        let v = vec![7u8; 10_000];
        super::lines(&v[..0]);
        super::lines(&v[1..2]);
        super::lines(&v[3..4099]);
        super::lines(&v[..]);
        let w = [1i16; 3];
        super::lines(&w);
        super::value(&w);
        super::value(&());
        assert_eq!(v[9_999], 7);
    }
}
