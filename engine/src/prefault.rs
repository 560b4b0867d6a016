//! Buffers whose pages are written when they are made.
//!
//! A zeroed allocation (calloc, or fresh heap memory) is backed by no page until it is
//! first written, and the first write to each page faults. A session's jitter buffer and
//! play queue are made on the control thread (`Engine::open_session`) but first written
//! on its media core; writing one element per page here moves those faults to the
//! thread that opens the session.

const PAGE: usize = 4096;

/// `len` zeroed elements, every page of them written.
pub(crate) fn zeroed<T: Copy + Default>(len: usize) -> Vec<T> {
    let mut v = vec![T::default(); len];
    let per_page = (PAGE / std::mem::size_of::<T>().max(1)).max(1);
    for chunk in v.chunks_mut(per_page) {
        if let Some(first) = chunk.first_mut() {
            // black_box: the store must happen even though the value is already there.
            *first = std::hint::black_box(T::default());
        }
    }
    v
}

/// An empty vector with room for `capacity` elements, every page of that room written.
pub(crate) fn with_capacity<T: Copy + Default>(capacity: usize) -> Vec<T> {
    let mut v = zeroed(capacity);
    v.clear();
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_contents() {
        let v: Vec<u8> = super::zeroed(10_000);
        assert_eq!(v.len(), 10_000);
        assert!(v.iter().all(|&b| b == 0));
        let w: Vec<i16> = super::with_capacity(8_000);
        assert!(w.is_empty());
        assert!(w.capacity() >= 8_000);
        assert!(super::zeroed::<u64>(0).is_empty());
    }
}
