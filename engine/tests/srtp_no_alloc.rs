//! Proves the SRTP packet path allocates nothing: a counting global allocator around
//! 10,000 protect/unprotect round trips per suite, RTP and RTCP, with MKI.
//!
//! The allocator is test scaffolding only (the engine itself forbids `unsafe`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use voxgate_engine::srtp::{SrtpContext, SrtpSuite};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the thread-local
// counter is a const-initialised Cell and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn protect_and_unprotect_do_not_allocate() {
    for suite in SrtpSuite::STRONGEST_FIRST {
        let key = [3u8; 32];
        let salt = [4u8; 14];
        let (k, s) = (&key[..suite.key_len()], &salt[..suite.salt_len()]);
        let mki = Some(&[1u8, 2][..]);
        let mut tx = SrtpContext::new(suite, k, s, mki).unwrap();
        let mut rx = SrtpContext::new(suite, k, s, mki).unwrap();
        let mut buf = [0u8; 256];
        let before = allocations();
        for i in 0..10_000u32 {
            buf[0] = 0x80;
            buf[1] = 0;
            buf[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            buf[12..172].fill(i as u8);
            let n = tx.protect_rtp(&mut buf, 172).unwrap();
            let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            assert_eq!(m, 172);
            buf[0] = 0x80;
            buf[1] = 200;
            let n = tx.protect_rtcp(&mut buf, 60).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]).unwrap(), 60);
        }
        // A forged packet takes the error path: no allocation there either.
        buf[1] = 0;
        buf[2..4].copy_from_slice(&10_000u16.to_be_bytes());
        let n = tx.protect_rtp(&mut buf, 172).unwrap();
        buf[20] ^= 1;
        assert!(rx.unprotect_rtp(&mut buf[..n]).is_err());
        assert_eq!(
            allocations() - before,
            0,
            "{suite}: allocations on the packet path"
        );
    }
    // The counter works: a Vec allocates.
    let before = allocations();
    let v = std::hint::black_box(vec![0u8; 10]);
    assert_eq!(allocations() - before, 1);
    drop(v);
}
