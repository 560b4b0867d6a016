//! Opus encode/decode of one 20 ms frame (mono, VoIP) at the complexities considered,
//! at 8 kHz (the gateway's speech side) and 16 kHz.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voxgate_engine::codec::{AudioDecoder, AudioEncoder, OpusDecoder, OpusEncoder, OpusParams};

fn opus(c: &mut Criterion) {
    for rate in [8000u32, 16000] {
        let n = (rate / 50) as usize;
        let pcm: Vec<i16> = (0..n * 50)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let env = 0.55 + 0.45 * (t * 4.0 * std::f32::consts::TAU).sin();
                ((t * 220.0 * std::f32::consts::TAU).sin() * 0.7
                    + (t * 660.0 * std::f32::consts::TAU).sin() * 0.3)
                    * env
                    * 9000.0
            } as i16)
            .collect();
        for complexity in [0u8, 2, 5, 8, 10] {
            let mut enc = OpusEncoder::new(OpusParams {
                complexity,
                ..OpusParams::new(rate)
            })
            .unwrap();
            let mut payload = [0u8; 1275];
            let mut f = 0usize;
            c.bench_function(
                &format!("opus_{}k_c{complexity}_encode_20ms", rate / 1000),
                |b| {
                    b.iter(|| {
                        f = (f + 1) % 50;
                        black_box(
                            enc.encode(black_box(&pcm[f * n..(f + 1) * n]), &mut payload)
                                .unwrap(),
                        )
                    })
                },
            );
        }
        // Decode cost does not depend on the encoder's complexity.
        let mut enc = OpusEncoder::new(OpusParams::new(rate)).unwrap();
        let frames: Vec<Vec<u8>> = pcm
            .chunks(n)
            .map(|c| {
                let mut p = vec![0u8; 1275];
                let k = enc.encode(c, &mut p).unwrap();
                p.truncate(k);
                p
            })
            .collect();
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut out = vec![0i16; n];
        let mut f = 0usize;
        c.bench_function(&format!("opus_{}k_decode_20ms", rate / 1000), |b| {
            b.iter(|| {
                f = (f + 1) % 50;
                black_box(dec.decode(black_box(&frames[f]), &mut out).unwrap())
            })
        });
        c.bench_function(&format!("opus_{}k_plc_20ms", rate / 1000), |b| {
            b.iter(|| black_box(dec.conceal(&mut out).unwrap()))
        });
    }
}

criterion_group!(benches, opus);
criterion_main!(benches);
