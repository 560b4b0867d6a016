//! The media path does not allocate: after a warm-up, a counting global allocator sees
//! no allocation while two sessions exchange audio, DTMF and RTCP.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use voxgate_engine::codec::CodecKind;
use voxgate_engine::session::{MediaSession, PacketKind, SessionConfig};

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn media_path_does_not_allocate() {
    let a_addr = SocketAddr::from(([127, 0, 0, 1], 4000));
    let b_addr = SocketAddr::from(([127, 0, 0, 1], 5000));
    let t0 = Instant::now();
    let mut ca = SessionConfig::new(1, CodecKind::Pcmu, 0);
    ca.remote_rtp = Some(b_addr);
    ca.telephone_event_pt = Some(101);
    ca.pcm_rate = 16000; // exercises both resamplers
    let mut cb = SessionConfig::new(2, CodecKind::Pcmu, 0);
    cb.echo = true;
    cb.telephone_event_pt = Some(101);
    let mut a = MediaSession::new(ca, t0).unwrap();
    let mut b = MediaSession::new(cb, t0).unwrap();
    let mut buf = [0u8; 1500];
    let tone: Vec<i16> = (0..320)
        .map(|i| ((i as f32 * 0.2).sin() * 6000.0) as i16)
        .collect();
    let mut received = 0u64;
    for ms in 0..20_000u64 {
        if ms == 2_000 {
            COUNTING.store(true, Ordering::Relaxed);
        }
        let now = t0 + Duration::from_millis(ms);
        if ms % 20 == 0 {
            a.play(&tone);
        }
        if ms % 3000 == 100 {
            a.send_dtmf('7', Duration::from_millis(100)).unwrap();
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            let from = if t.kind == PacketKind::Rtp {
                a_addr
            } else {
                SocketAddr::from(([127, 0, 0, 1], 4001))
            };
            match t.kind {
                PacketKind::Rtp => b.handle_rtp(now, from, &mut buf[..t.len]),
                PacketKind::Rtcp => b.handle_rtcp(now, from, &mut buf[..t.len]),
            }
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            match t.kind {
                PacketKind::Rtp => a.handle_rtp(now, b_addr, &mut buf[..t.len]),
                PacketKind::Rtcp => a.handle_rtcp(
                    now,
                    SocketAddr::from(([127, 0, 0, 1], 5001)),
                    &mut buf[..t.len],
                ),
            }
        }
        while a.poll_event().is_some() {
            received += 1;
        }
        while b.poll_event().is_some() {}
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let (sa, sb) = (a.stats(), b.stats());
    assert!(
        sb.packets_in > 900 && sa.packets_in > 900 && received > 900,
        "{sa:?} {sb:?}"
    );
    assert!(sa.rtcp_in >= 3 && sb.dtmf_in >= 6);
    assert_eq!(allocs, 0, "allocations on the media path");
}
