//! G.711 encode/decode of one 20 ms frame (160 samples).
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voxgate_engine::codec::{AudioDecoder, AudioEncoder, CodecKind, Decoder, Encoder};

fn g711(c: &mut Criterion) {
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i as f32 * 0.3).sin() * 9000.0) as i16)
        .collect();
    for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
        let mut enc = Encoder::new(kind).unwrap();
        let mut dec = Decoder::new(kind).unwrap();
        let mut payload = [0u8; 160];
        let mut out = [0i16; 160];
        c.bench_function(&format!("g711_{}_encode_20ms", kind.encoding_name()), |b| {
            b.iter(|| black_box(enc.encode(black_box(&pcm), &mut payload).unwrap()))
        });
        c.bench_function(&format!("g711_{}_decode_20ms", kind.encoding_name()), |b| {
            b.iter(|| black_box(dec.decode(black_box(&payload), &mut out).unwrap()))
        });
    }
}

criterion_group!(benches, g711);
criterion_main!(benches);
