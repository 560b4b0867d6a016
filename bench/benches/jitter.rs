//! Jitter buffer: one insert + one pop per packet, steady state.
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voxgate_engine::jitter::{JitterBuffer, JitterConfig, Playout};

fn jitter(c: &mut Criterion) {
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, 20));
    let t0 = Instant::now();
    let payload = [0xffu8; 160];
    let mut seq = 0u64;
    // Prime to the target depth.
    for _ in 0..3 {
        jb.insert(
            t0 + Duration::from_millis(seq * 20),
            seq,
            (seq * 160) as u32,
            false,
            &payload,
        );
        seq += 1;
    }
    c.bench_function("jitter_insert_pop", |b| {
        b.iter(|| {
            let now = t0 + Duration::from_millis(seq * 20);
            black_box(jb.insert(now, seq, (seq * 160) as u32, false, black_box(&payload)));
            let n = match jb.pop(now) {
                Playout::Packet { payload, .. } => payload.len(),
                _ => 0,
            };
            seq += 1;
            black_box(n)
        })
    });
}

criterion_group!(benches, jitter);
criterion_main!(benches);
